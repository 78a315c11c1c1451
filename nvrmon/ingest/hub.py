"""Stage 2, the hub: agent messages → one SQLite transaction per batch → (after commit) fragments to browsers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nvrmon import protocol
from nvrmon.models import NvrStatus, Status, Toast
from nvrmon.protocol import Alert, Cameras, CameraStatus, Heartbeat, Hello, Message
from nvrmon.settings import Settings
from nvrmon.store.fleet import CameraRef, Changes, NewEvent, Store, Transaction

log = logging.getLogger("nvrmon.ingest.hub")

# Sent to the agent's outbox to make its connection close: (code, reason).
Close = tuple[int, str]


@dataclass(eq=False)
class AgentSession:
    """One agent connection as the hub sees it. Only the hub's writer task mutates it after hello."""

    conn_id: int
    remote: str
    outbox: asyncio.Queue[str | Close] = field(default_factory=lambda: asyncio.Queue(256))
    nvr_id: int | None = None
    hostname: str = ""
    cameras: dict[str, CameraRef] = field(default_factory=dict)
    last_seen: float = field(default_factory=time.time)
    status: NvrStatus = "offline"
    agent_session: str = ""
    last_seq: int = 0  # highest numbered frame committed for agent_session (earlier ones are duplicates)

    def post(self, frame: str | Close) -> None:
        """Queue a frame for the agent without waiting; an agent that stops reading loses frames, not the hub."""
        with contextlib.suppress(asyncio.QueueFull):
            self.outbox.put_nowait(frame)


@dataclass(frozen=True, slots=True)
class Gone:
    reason: str


@dataclass(frozen=True, slots=True)
class Stale:
    """The sweeper saw an NVR miss its heartbeat grace period."""


@dataclass(frozen=True, slots=True)
class Expired:
    """The sweeper saw no frame for heartbeat_timeout seconds."""


@dataclass(frozen=True, slots=True)
class SettleRestart:
    """The start-up grace period is over: NVRs still unknown are offline."""


@dataclass(frozen=True, slots=True)
class Steady:
    nvr_id: int


@dataclass(frozen=True, slots=True)
class Prune:
    before: float


Work = Message | Gone | Stale | Expired | SettleRestart | Steady | Prune


@dataclass(eq=False)
class Item:
    session: AgentSession
    work: Work
    done: asyncio.Future[int] | None = None


@dataclass
class _Batch:
    """Side effects gathered while applying a batch; they leave the transaction only after it commits."""

    events: list[NewEvent] = field(default_factory=list)
    toasts: list[Toast] = field(default_factory=list)
    flips: dict[int, Status] = field(default_factory=dict)
    flip_nvrs: set[int] = field(default_factory=set)
    beats: dict[int, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    closes: list[tuple[AgentSession, Close]] = field(default_factory=list)
    acks: dict[AgentSession, int] = field(default_factory=dict)
    agent_seqs: dict[int, tuple[str, int]] = field(default_factory=dict)


# Called with each committed transaction's changes, and whether more work is already queued (a burst in progress);
# must not block: the publisher merges and flushes on its own task.
Publish = Callable[[Changes, list[Toast], bool], None]


class Hub:
    def __init__(self, store: Store, settings: Settings, publish: Publish) -> None:
        self.store = store
        self.settings = settings
        self._publish = publish
        self._queue: asyncio.Queue[Item] = asyncio.Queue(settings.ingest_queue)
        self._busy = False
        self.sessions: dict[int, AgentSession] = {}  # nvr_id -> the connection that speaks for it now
        self.started = time.time()
        self.grace_until = 0.0
        self.last_event = 0.0
        self._next_conn = 0
        self._system = AgentSession(conn_id=0, remote="hub")
        self._flaps: dict[int, deque[float]] = {}
        self._unstable: set[int] = set()
        self._timers: set[asyncio.TimerHandle] = set()

    def new_session(self, remote: str) -> AgentSession:
        self._next_conn += 1
        return AgentSession(conn_id=self._next_conn, remote=remote)

    @property
    def agents_connected(self) -> int:
        return len(self.sessions)

    async def start(self) -> None:
        """Before agents connect: NVRs that were up when the hub stopped are 'unknown' until they reconnect."""
        async with self.store.transaction(time.time()) as tx:
            moved = await tx.set_all_status(("online", "stale"), "unknown", "waiting for its agent after hub restart")
        if moved:
            self.grace_until = time.time() + (self.settings.startup_grace or self.settings.heartbeat_timeout)
            log.info("%d NVRs are unknown until their agents reconnect", len(moved))

    async def submit(self, session: AgentSession, work: Work) -> None:
        """Queue work for the writer; a full queue makes agents wait (backpressure) rather than dropping changes."""
        await self._queue.put(Item(session, work))

    async def hello(self, session: AgentSession, hello: Hello) -> int:
        """Register the NVR; returns its id once the registration is committed."""
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        await self._queue.put(Item(session, hello, done))
        return await done

    def defer(self, session: AgentSession, work: Work, delay: float) -> None:
        """Queue work after `delay` seconds, unless the hub shuts down first (see close)."""

        def fire() -> None:
            self._timers.discard(handle)
            try:
                self._queue.put_nowait(Item(session, work))
            except asyncio.QueueFull:
                self.defer(session, work, 0.1)

        handle = asyncio.get_running_loop().call_later(delay, fire)
        self._timers.add(handle)

    def close(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()

    async def drain(self, timeout: float) -> None:
        """Wait until everything queued is committed (graceful shutdown), at most `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while (self._busy or not self._queue.empty()) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    # -- writer -----------------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """The single writer: take what is queued (the first item at once, then all that waits), commit, publish."""
        while True:
            batch = [await self._queue.get()]
            self._busy = True
            while len(batch) < self.settings.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit(batch)
            except Exception:
                log.exception("batch of %d failed; retrying item by item", len(batch))
                for item in batch:
                    try:
                        await self._commit([item])
                    except Exception as exc:
                        log.exception("dropping work from %s that the store refused", item.session.remote)
                        if item.done is not None and not item.done.done():
                            item.done.set_exception(exc)
            finally:
                self._busy = False

    async def _commit(self, items: list[Item]) -> None:
        now = time.time()
        out = _Batch()
        results: list[tuple[Item, int]] = []
        async with self.store.transaction(now) as tx:
            for item in items:
                results.append((item, await self._apply(tx, item, out)))
            await self._flush_flips(tx, out)
            await tx.add_events(out.events)
            await tx.record_heartbeats((nvr_id, ts, stats) for nvr_id, (ts, stats) in out.beats.items())
            await tx.record_agent_seqs((nvr_id, name, seq) for nvr_id, (name, seq) in out.agent_seqs.items())
        # Committed: only now may anything leave the hub.
        for item, value in results:
            if item.done is not None and not item.done.done():
                item.done.set_result(value)
        for session, seq in out.acks.items():
            session.post(protocol.ack_frame(seq))
        for session, close in out.closes:
            session.post(close)
        if tx.changes:
            self.last_event = now
            self._publish(tx.changes, out.toasts, not self._queue.empty())

    async def _apply(self, tx: Transaction, item: Item, out: _Batch) -> int:
        session, work = item.session, item.work
        if isinstance(work, Hello):
            return await self._hello(tx, session, work, out)
        if isinstance(work, SettleRestart):
            await self._settle_restart(tx, out)
            return 0
        if isinstance(work, Prune):
            await tx.prune(work.before)  # through the writer: the store has one write connection
            return 0
        if isinstance(work, Steady):
            if work.nvr_id in self._unstable and self._quiet_since(work.nvr_id, tx.now):
                self._unstable.discard(work.nvr_id)
                await tx.set_unstable(work.nvr_id, False)
                out.events.append(NewEvent("status", "info", "NVR is stable again", work.nvr_id))
            return 0
        nvr_id = session.nvr_id
        if nvr_id is None or self.sessions.get(nvr_id) is not session:
            return 0  # a connection that was replaced or never said hello speaks for nobody
        if isinstance(work, Gone | Stale | Expired):
            await self._liveness(tx, session, nvr_id, work, out)
            return nvr_id
        seq = work.seq
        if seq:
            if seq <= session.last_seq:
                out.acks[session] = session.last_seq  # a replayed frame we already committed: confirm, don't apply
                return nvr_id
            session.last_seq = out.acks[session] = seq
            out.agent_seqs[nvr_id] = (session.agent_session, seq)
        session.last_seen = tx.now
        out.beats[nvr_id] = (tx.now, work.stats if isinstance(work, Heartbeat) else {})
        if session.status != "online":
            was, session.status = session.status, "online"
            await self._flush_flips(tx, out)
            # Back from stale is quiet (it never went down); back from a timeout is news.
            if await tx.set_nvr_status(nvr_id, "online", "") and was == "offline":
                await self._transition(tx, out, session, "online", "heartbeat resumed")
        if isinstance(work, CameraStatus):
            ref = session.cameras.get(work.camera_id)
            if ref is None:
                session.post(protocol.error_frame("unknown_camera", f"camera {work.camera_id!r} is not in the list"))
            elif ref.status != work.status:
                ref.status = work.status
                out.flips[ref.id] = work.status
                out.flip_nvrs.add(nvr_id)
                self._flip_events(out, session, [(ref.id, work.camera_id, work.status)])
        elif isinstance(work, Cameras):
            await self._flush_flips(tx, out)
            session.cameras, flips = await tx.replace_cameras(nvr_id, work.cameras)
            self._flip_events(out, session, flips)
        elif isinstance(work, Alert):
            ref = session.cameras.get(work.camera_id) if work.camera_id else None
            text = work.message if ref or not work.camera_id else f"[camera {work.camera_id}] {work.message}"
            out.events.append(NewEvent("alert", work.severity, text, nvr_id, ref.id if ref else None))
            if work.severity != "info":
                level = "error" if work.severity in ("error", "critical") else "warning"
                out.toasts.append(Toast(level, f"{session.hostname}: {work.severity}", text))
        return nvr_id

    async def _hello(self, tx: Transaction, session: AgentSession, work: Hello, out: _Batch) -> int:
        await self._flush_flips(tx, out)
        reg = await tx.register_nvr(work.nvr)
        nvr_id = reg.nvr_id
        previous = self.sessions.get(nvr_id)
        if previous is not None and previous is not session:
            previous.post(protocol.error_frame("replaced", "another connection now speaks for this NVR"))
            out.closes.append((previous, (4000, "replaced by a newer connection")))
        self.sessions[nvr_id] = session
        session.nvr_id, session.hostname, session.status, session.last_seen = (
            nvr_id,
            work.nvr.hostname,
            "online",
            tx.now,
        )
        session.agent_session = work.session
        same_run = bool(work.session) and work.session == reg.agent_session
        session.last_seq = reg.agent_seq if same_run else 0
        session.cameras, flips = await tx.replace_cameras(nvr_id, work.cameras)
        if reg.previous is None:
            out.events.append(NewEvent("status", "info", f"NVR {work.nvr.hostname} registered", nvr_id))
            out.toasts.append(Toast("success", f"{work.nvr.hostname} registered", work.nvr.site))
        elif reg.previous == "offline":
            await self._transition(tx, out, session, "online", "connected")
        # previous "unknown" (back after a hub restart) or "online"/"stale" (a replaced connection): nothing to announce
        self._flip_events(out, session, flips)
        return nvr_id

    async def _liveness(
        self, tx: Transaction, session: AgentSession, nvr_id: int, work: Gone | Stale | Expired, out: _Batch
    ) -> None:
        silence = tx.now - session.last_seen
        if isinstance(work, Gone):
            del self.sessions[nvr_id]
            reason = work.reason
        elif isinstance(work, Stale):
            # Re-checked here: a frame may have arrived while this waited in the queue.
            if session.status == "online" and silence > self.settings.stale_after:
                session.status = "stale"
                await self._flush_flips(tx, out)
                await tx.set_nvr_status(nvr_id, "stale", f"no heartbeat for {silence:.0f} s")
            return
        else:
            if session.status == "offline" or silence <= self.settings.heartbeat_timeout:
                return
            reason = f"no heartbeat for {silence:.0f} s"
            out.closes.append((session, (4001, "heartbeat timeout")))
        if session.status != "offline":
            session.status = "offline"
            await self._flush_flips(tx, out)
            if await tx.set_nvr_status(nvr_id, "offline", reason):
                await self._transition(tx, out, session, "offline", reason)

    async def _transition(
        self, tx: Transaction, out: _Batch, session: AgentSession, status: Status, reason: str
    ) -> None:
        """An online/offline change: one event and toast, unless the NVR is flapping (then one 'unstable' notice)."""
        assert session.nvr_id is not None
        nvr_id, now = session.nvr_id, tx.now
        flaps = self._flaps.setdefault(nvr_id, deque(maxlen=self.settings.flap_threshold))
        flaps.append(now)
        if nvr_id in self._unstable:
            return
        if len(flaps) == flaps.maxlen and now - flaps[0] <= self.settings.flap_window:
            self._unstable.add(nvr_id)
            await tx.set_unstable(nvr_id, True)
            minutes = max(1, round((now - flaps[0]) / 60))
            text = f"NVR {session.hostname} is unstable: {len(flaps)} status changes within {minutes} min"
            out.events.append(NewEvent("status", "warning", text, nvr_id))
            out.toasts.append(Toast("warning", f"{session.hostname} unstable", f"{len(flaps)} changes, now {status}"))
            return
        online = status == "online"
        out.events.append(
            NewEvent("status", "info" if online else "error", f"NVR {session.hostname} is {status} ({reason})", nvr_id)
        )
        out.toasts.append(
            Toast("success" if online else "error", f"{session.hostname} {status}", reason, session.hostname, "nvr")
        )

    def _quiet_since(self, nvr_id: int, now: float) -> bool:
        flaps = self._flaps.get(nvr_id)
        return not flaps or now - flaps[-1] > self.settings.flap_window

    async def _settle_restart(self, tx: Transaction, out: _Batch) -> None:
        moved = await tx.set_all_status(("unknown",), "offline", "did not reconnect after hub restart")
        if moved:
            names = ", ".join(name for _, name in moved[:5]) + (" …" if len(moved) > 5 else "")
            text = f"{len(moved)} NVRs did not reconnect after the hub restart: {names}"
            out.events.append(NewEvent("status", "error", text))
            out.toasts.append(Toast("error", f"{len(moved)} NVRs offline", "did not reconnect after hub restart"))

    async def _flush_flips(self, tx: Transaction, out: _Batch) -> None:
        """Write buffered camera status flips; done before anything that must observe them, keeping frame order."""
        if out.flips:
            await tx.set_camera_statuses(out.flips.items())
            for nvr_id in out.flip_nvrs:
                await tx.touch_nvr(nvr_id)
            out.flips, out.flip_nvrs = {}, set()

    def _flip_events(self, out: _Batch, session: AgentSession, flips: list[tuple[int, str, Status]]) -> None:
        for camera_id, name, status in flips:
            online = status == "online"
            text = f"Camera {name} on {session.hostname} is {status}"
            out.events.append(NewEvent("status", "info" if online else "warning", text, session.nvr_id, camera_id))
            out.toasts.append(
                Toast("success" if online else "error", f"Camera {name} {status}", session.hostname, name, "camera")
            )

    # -- liveness and retention -------------------------------------------------------------------------------------

    async def sweep(self) -> None:
        """Queue liveness checks (stale, offline), end the restart grace period, clear steady NVRs, prune history."""
        settings = self.settings
        interval = max(0.1, min(settings.stale_after / 4, 1.0))
        last_prune = 0.0
        while True:
            await asyncio.sleep(interval)
            now = time.time()
            for session in list(self.sessions.values()):
                silence = now - session.last_seen
                if session.status == "online" and silence > settings.stale_after:
                    await self.submit(session, Stale())
                elif session.status != "offline" and silence > settings.heartbeat_timeout:
                    await self.submit(session, Expired())
            if self.grace_until and now > self.grace_until:
                self.grace_until = 0.0
                await self.submit(self._system, SettleRestart())
            for nvr_id in list(self._unstable):
                if self._quiet_since(nvr_id, now):
                    await self.submit(self._system, Steady(nvr_id))
            if now - last_prune > 3600:
                last_prune = now
                await self.submit(self._system, Prune(now - settings.event_retention_days * 86400))
