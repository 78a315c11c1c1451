"""Stage 2, liveness: stale, offline, flapping and restart-grace transitions, and the sweeper that queues them."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

from nvrmon.ingest.batch import Effects
from nvrmon.ingest.health import StorageHealth
from nvrmon.ingest.session import AgentSession, Expired, Gone, Prune, SettleRestart, Stale, Steady, Work
from nvrmon.models import Status
from nvrmon.settings import Settings
from nvrmon.store.fleet import NewEvent, Transaction

Submit = Callable[[AgentSession, Work], Awaitable[None]]


class Liveness:
    """Decides when an NVR is stale, offline, unstable or steady again. Runs inside the writer's transactions."""

    def __init__(self, settings: Settings, sessions: dict[int, AgentSession]) -> None:
        self.settings = settings
        self.sessions = sessions  # the hub's map, nvr_id -> the connection that speaks for it now
        self.grace_until = 0.0
        self._flaps: dict[int, deque[float]] = {}
        self.unstable: set[int] = set()

    async def apply(
        self, tx: Transaction, session: AgentSession, nvr_id: int, work: Gone | Stale | Expired, out: Effects
    ) -> None:
        silence = tx.now - session.last_seen
        if isinstance(work, Gone):
            out.journal.keep_sessions()
            del self.sessions[nvr_id]
            reason = work.reason
        elif isinstance(work, Stale):
            # Re-checked here: a frame may have arrived while this waited in the queue.
            if session.status == "online" and silence > self.settings.stale_after:
                session.status = "stale"
                await out.flush_flips(tx)
                await tx.set_nvr_status(nvr_id, "stale", f"no heartbeat for {silence:.0f} s")
            return
        else:
            if session.status == "offline" or silence <= self.settings.heartbeat_timeout:
                return
            reason = f"no heartbeat for {silence:.0f} s"
            out.closes.append((session, (4001, "heartbeat timeout")))
        if session.status != "offline":
            session.status = "offline"
            await out.flush_flips(tx)
            if await tx.set_nvr_status(nvr_id, "offline", reason):
                await self.transition(tx, out, session, "offline", reason)

    async def transition(
        self, tx: Transaction, out: Effects, session: AgentSession, status: Status, reason: str
    ) -> None:
        """An online/offline change: one event and toast, unless the NVR is flapping (then one 'unstable' notice)."""
        assert session.nvr_id is not None
        nvr_id, now = session.nvr_id, tx.now
        saved = self._flaps.get(nvr_id)
        # A new deque per change: the saved one is what a rolled-back transaction puts back.
        flaps = self._flaps[nvr_id] = deque(saved or (), maxlen=self.settings.flap_threshold)
        out.journal.on_rollback(lambda: self._restore_flaps(nvr_id, saved))
        flaps.append(now)
        if nvr_id in self.unstable:
            return
        if len(flaps) == flaps.maxlen and now - flaps[0] <= self.settings.flap_window:
            self.unstable.add(nvr_id)
            out.journal.on_rollback(lambda: self.unstable.discard(nvr_id))
            await tx.set_unstable(nvr_id, True)
            minutes = max(1, round((now - flaps[0]) / 60))
            text = f"NVR {session.hostname} is unstable: {len(flaps)} status changes within {minutes} min"
            out.events.append(NewEvent("status", "warning", text, nvr_id))
            out.notify("warning", f"{session.hostname} unstable", f"{len(flaps)} changes, now {status}")
            return
        online = status == "online"
        text = f"NVR {session.hostname} is {status} ({reason})"
        out.events.append(NewEvent("status", "info" if online else "error", text, nvr_id))
        out.notify("success" if online else "error", f"{session.hostname} {status}", reason, session.hostname, "nvr")

    def _restore_flaps(self, nvr_id: int, saved: deque[float] | None) -> None:
        if saved is None:
            self._flaps.pop(nvr_id, None)
        else:
            self._flaps[nvr_id] = saved

    async def steady(self, tx: Transaction, nvr_id: int, out: Effects) -> None:
        if nvr_id in self.unstable and self.quiet_since(nvr_id, tx.now):
            self.unstable.discard(nvr_id)
            out.journal.on_rollback(lambda: self.unstable.add(nvr_id))
            await tx.set_unstable(nvr_id, False)
            out.events.append(NewEvent("status", "info", "NVR is stable again", nvr_id))

    def quiet_since(self, nvr_id: int, now: float) -> bool:
        flaps = self._flaps.get(nvr_id)
        return not flaps or now - flaps[-1] > self.settings.flap_window

    def settle_after(self, when: float) -> None:
        """NVRs turned unknown (a hub restart or a dead hub's): the ones still unknown at `when` go offline then."""
        self.grace_until = max(self.grace_until, when)

    async def settle_restart(self, tx: Transaction, out: Effects) -> None:
        # Only those unknown for the whole grace: another hub may have turned some unknown more recently.
        grace = self.settings.startup_grace or self.settings.heartbeat_timeout
        moved = await tx.set_all_status(
            ("unknown",), "offline", "did not reconnect after hub restart", changed_before=tx.now - grace + 0.5
        )
        if moved:
            names = ", ".join(name for _, name in moved[:5]) + (" …" if len(moved) > 5 else "")
            text = f"{len(moved)} NVRs did not reconnect after the hub restart: {names}"
            out.events.append(NewEvent("status", "error", text))
            out.notify("error", f"{len(moved)} NVRs offline", "did not reconnect after hub restart")

    def forgive_outage(self, now: float) -> None:
        """After the store refused writes, count from now: frames that waited (in the queue or unread on the socket)
        were not applied, and an NVR must not go offline because the hub could not store its heartbeats."""
        for session in self.sessions.values():
            session.last_seen = max(session.last_seen, now)

    async def sweep(self, submit: Submit, system: AgentSession, health: StorageHealth) -> None:
        """Queue liveness checks (stale, offline), end the restart grace period, clear steady NVRs, prune history."""
        settings = self.settings
        interval = max(0.1, min(settings.stale_after / 4, 1.0))
        last_prune = 0.0
        prune_every = prune_interval(settings.event_retention_days * 86400)
        while True:
            await asyncio.sleep(interval)
            if health.degraded:
                continue  # no frame is applied meanwhile, so silence says nothing about the NVRs
            now = time.time()
            for session in list(self.sessions.values()):
                silence = now - session.last_seen
                if session.status == "online" and silence > settings.stale_after:
                    await submit(session, Stale())
                elif session.status != "offline" and silence > settings.heartbeat_timeout:
                    await submit(session, Expired())
            if self.grace_until and now > self.grace_until:
                self.grace_until = 0.0
                await submit(system, SettleRestart())
            for nvr_id in list(self.unstable):
                if self.quiet_since(nvr_id, now):
                    await submit(system, Steady(nvr_id))
            if now - last_prune > prune_every:
                last_prune = now
                await submit(system, Prune(now - settings.event_retention_days * 86400, prune_every))


def prune_interval(retention: float) -> float:
    """How often history is pruned: a tenth of the retention, so nothing outlives it by more than 10 %, between the
    sweep's own pace and once an hour (pruning a 30-day history more often than hourly buys nothing)."""
    return min(3600.0, max(1.0, retention / 10))
