"""Stage 2, the hub: agent messages → one SQLite transaction per batch → (after commit) fragments to browsers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from nvrmon import protocol
from nvrmon.models import Status
from nvrmon.protocol import Alert, Cameras, CameraStatus, Heartbeat, Hello, Message
from nvrmon.settings import Settings
from nvrmon.store import CameraRef, Changes, NewEvent, Store, Transaction

log = logging.getLogger("nvrmon.hub")

# Sent to the agent's outbox to make its connection close: (code, reason).
Close = tuple[int, str]


@dataclass(eq=False)
class AgentSession:
    """One agent connection as the hub sees it. Only the hub's writer task mutates it after hello."""

    conn_id: int
    remote: str
    outbox: asyncio.Queue[str | Close] = field(default_factory=lambda: asyncio.Queue(64))
    nvr_id: int | None = None
    hostname: str = ""
    cameras: dict[str, CameraRef] = field(default_factory=dict)
    last_seen: float = field(default_factory=time.time)
    online: bool = False

    def post(self, frame: str | Close) -> None:
        """Queue a frame for the agent without waiting; an agent that stops reading loses error frames, not the hub."""
        with contextlib.suppress(asyncio.QueueFull):
            self.outbox.put_nowait(frame)


@dataclass(frozen=True, slots=True)
class Gone:
    reason: str


@dataclass(frozen=True, slots=True)
class Expired:
    """The sweeper saw no heartbeat for too long."""


Work = Message | Gone | Expired


@dataclass(eq=False)
class Item:
    session: AgentSession
    work: Work
    done: asyncio.Future[int] | None = None


@dataclass
class Toast:
    level: str  # success | error | warning | info
    title: str
    body: str = ""


@dataclass
class _Batch:
    """Side effects gathered while applying a batch; they leave the transaction only after it commits."""

    events: list[NewEvent] = field(default_factory=list)
    toasts: list[Toast] = field(default_factory=list)
    flips: dict[int, Status] = field(default_factory=dict)
    flip_nvrs: set[int] = field(default_factory=set)
    beats: dict[int, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    closes: list[tuple[AgentSession, Close]] = field(default_factory=list)


Publisher = Callable[[Changes, list[Toast]], Awaitable[None]]


class Hub:
    def __init__(self, store: Store, settings: Settings, publish: Publisher) -> None:
        self.store = store
        self.settings = settings
        self._publish = publish
        self._queue: asyncio.Queue[Item] = asyncio.Queue(settings.ingest_queue)
        self.sessions: dict[int, AgentSession] = {}  # nvr_id -> the connection that speaks for it now
        self.started = time.time()
        self.last_event = 0.0
        self._next_conn = 0

    def new_session(self, remote: str) -> AgentSession:
        self._next_conn += 1
        return AgentSession(conn_id=self._next_conn, remote=remote)

    @property
    def agents_connected(self) -> int:
        return len(self.sessions)

    async def submit(self, session: AgentSession, work: Work) -> None:
        """Queue work for the writer; a full queue makes agents wait (backpressure) rather than dropping changes."""
        await self._queue.put(Item(session, work))

    async def hello(self, session: AgentSession, hello: Hello) -> int:
        """Register the NVR; returns its id once the registration is committed."""
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        await self._queue.put(Item(session, hello, done))
        return await done

    # -- writer -----------------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """The single writer: take what is queued (the first item at once, then all that waits), commit, publish."""
        while True:
            batch = [await self._queue.get()]
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
        for item, value in results:
            if item.done is not None and not item.done.done():
                item.done.set_result(value)
        for session, close in out.closes:
            session.post(close)
        if tx.changes:
            self.last_event = now
            await self._publish(tx.changes, _summarise(out.toasts))

    async def _apply(self, tx: Transaction, item: Item, out: _Batch) -> int:
        session, work = item.session, item.work
        if isinstance(work, Hello):
            await self._flush_flips(tx, out)
            nvr_id, was_online = await tx.register_nvr(work.nvr)
            previous = self.sessions.get(nvr_id)
            if previous is not None and previous is not session:
                previous.post(protocol.error_frame("replaced", "another connection now speaks for this NVR"))
                out.closes.append((previous, (4000, "replaced by a newer connection")))
            self.sessions[nvr_id] = session
            session.nvr_id, session.hostname, session.online, session.last_seen = (
                nvr_id,
                work.nvr.hostname,
                True,
                tx.now,
            )
            session.cameras, flips = await tx.replace_cameras(nvr_id, work.cameras)
            if not was_online:
                self._nvr_event(out, session, "online", "connected")
            self._flip_events(out, session, flips)
            return nvr_id
        owner = session.nvr_id
        if owner is None or self.sessions.get(owner) is not session:
            return 0  # a connection that was replaced or never said hello speaks for nobody
        if isinstance(work, Gone | Expired):
            if isinstance(work, Gone):
                del self.sessions[owner]
            if session.online:
                session.online = False
                await self._flush_flips(tx, out)
                reason = work.reason if isinstance(work, Gone) else "heartbeat timeout"
                if await tx.set_nvr_status(owner, "offline", reason):
                    self._nvr_event(out, session, "offline", reason)
            return owner
        session.last_seen = tx.now
        out.beats[owner] = (tx.now, work.stats if isinstance(work, Heartbeat) else {})
        if not session.online:
            # A late heartbeat (or any frame) after a timeout brings the NVR back.
            session.online = True
            await self._flush_flips(tx, out)
            if await tx.set_nvr_status(owner, "online", ""):
                self._nvr_event(out, session, "online", "heartbeat resumed")
        if isinstance(work, CameraStatus):
            ref = session.cameras.get(work.camera_id)
            if ref is None:
                session.post(protocol.error_frame("unknown_camera", f"camera {work.camera_id!r} is not in the list"))
            elif ref.status != work.status:
                ref.status = work.status
                out.flips[ref.id] = work.status
                out.flip_nvrs.add(owner)
                self._flip_events(out, session, [(ref.id, work.camera_id, work.status)])
        elif isinstance(work, Cameras):
            await self._flush_flips(tx, out)
            session.cameras, flips = await tx.replace_cameras(owner, work.cameras)
            self._flip_events(out, session, flips)
        elif isinstance(work, Alert):
            ref = session.cameras.get(work.camera_id) if work.camera_id else None
            text = work.message if ref or not work.camera_id else f"[camera {work.camera_id}] {work.message}"
            out.events.append(NewEvent("alert", work.severity, text, owner, ref.id if ref else None))
            if work.severity != "info":
                out.toasts.append(
                    Toast(
                        "error" if work.severity in ("error", "critical") else "warning",
                        f"{session.hostname}: {work.severity}",
                        text,
                    )
                )
        return owner

    async def _flush_flips(self, tx: Transaction, out: _Batch) -> None:
        """Write buffered camera status flips; done before anything that must observe them, keeping frame order."""
        if out.flips:
            await tx.set_camera_statuses(out.flips.items())
            for nvr_id in out.flip_nvrs:
                await tx.touch_nvr(nvr_id)
            out.flips, out.flip_nvrs = {}, set()

    def _nvr_event(self, out: _Batch, session: AgentSession, status: Status, reason: str) -> None:
        online = status == "online"
        out.events.append(
            NewEvent(
                "status",
                "info" if online else "error",
                f"NVR {session.hostname} is {status} ({reason})",
                session.nvr_id,
            )
        )
        out.toasts.append(Toast("success" if online else "error", f"{session.hostname} {status}", reason))

    def _flip_events(self, out: _Batch, session: AgentSession, flips: list[tuple[int, str, Status]]) -> None:
        for camera_id, name, status in flips:
            online = status == "online"
            out.events.append(
                NewEvent(
                    "status",
                    "info" if online else "warning",
                    f"Camera {name} on {session.hostname} is {status}",
                    session.nvr_id,
                    camera_id,
                )
            )
            out.toasts.append(Toast("success" if online else "error", f"Camera {name} {status}", session.hostname))

    # -- liveness and retention -------------------------------------------------------------------------------------

    async def sweep(self) -> None:
        """Mark NVRs whose heartbeats stopped offline, settle NVRs orphaned by a hub restart, and prune history."""
        interval = max(0.2, min(self.settings.heartbeat_timeout / 4, 5.0))
        orphans_settled = False
        last_prune = 0.0
        while True:
            await asyncio.sleep(interval)
            now = time.time()
            for session in list(self.sessions.values()):
                if session.online and now - session.last_seen > self.settings.heartbeat_timeout:
                    await self.submit(session, Expired())
            if not orphans_settled and now - self.started > self.settings.heartbeat_timeout:
                orphans_settled = True
                await self._settle_orphans()
            if now - last_prune > 3600:
                last_prune = now
                await self.store.prune(now - self.settings.event_retention_days * 86400)

    async def _settle_orphans(self) -> None:
        # NVRs that were online before a restart and have not reconnected within one timeout are offline.
        for nvr in await self.store.nvrs():
            if nvr.status == "online" and nvr.id not in self.sessions:
                ghost = AgentSession(conn_id=0, remote="restart", nvr_id=nvr.id, hostname=nvr.hostname, online=True)
                self.sessions.setdefault(nvr.id, ghost)
                if self.sessions[nvr.id] is ghost:
                    await self.submit(ghost, Gone("no connection since hub restart"))


def _summarise(toasts: list[Toast], limit: int = 4) -> list[Toast]:
    """A burst (an NVR with 64 cameras going down) becomes one toast, not 65."""
    if len(toasts) <= limit:
        return toasts
    down = sum(t.level == "error" for t in toasts)
    up = sum(t.level == "success" for t in toasts)
    other = len(toasts) - down - up
    parts = [
        f"{down} went offline" if down else "",
        f"{up} came online" if up else "",
        f"{other} alerts" if other else "",
    ]
    return [
        Toast(
            "error" if down else "warning" if other else "success",
            f"{len(toasts)} changes",
            ", ".join(p for p in parts if p),
        )
    ]
