"""Stage 2, the hub: agent messages → one SQLite transaction per batch → (after commit) fragments to browsers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from nvrmon import protocol
from nvrmon.ingest import degraded, hello, inventory
from nvrmon.ingest.batch import Effects
from nvrmon.ingest.cluster import Cluster
from nvrmon.ingest.health import RETRY_FIRST, RETRY_MAX, StorageHealth, StorageUnavailable
from nvrmon.ingest.liveness import Liveness
from nvrmon.ingest.outside import OutsideCommits
from nvrmon.ingest.registry import Hostnames
from nvrmon.ingest.session import (
    AgentSession,
    Call,
    Expired,
    Gone,
    InventoryWork,
    Item,
    Journal,
    Outside,
    Prune,
    Remove,
    SettleRestart,
    Stale,
    Steady,
    Work,
)
from nvrmon.inventory import Edit, Outcome
from nvrmon.models import Toast
from nvrmon.protocol import Alert, Cameras, CameraStatus, Health, Heartbeat, Hello
from nvrmon.settings import Settings
from nvrmon.store import hubs
from nvrmon.store.errors import is_storage_failure
from nvrmon.store.fleet import Changes, NewEvent, Store, Transaction
from nvrmon.store.transaction import detail_json

log = logging.getLogger("nvrmon.ingest.hub")

REMOVED_CLOSE = (4004, "NVR removed from the hub")


# Called with each committed transaction's changes, and whether more work is already queued (a burst in progress);
# must not block: the publisher merges and flushes on its own task.
Publish = Callable[[Changes, list[Toast], bool], None]
# Told of each committed batch: how many items it held and how long its transaction took (seconds); /metrics
# observes it (nvrmon/web/metrics.py), so ingest itself knows nothing of Prometheus.
CommitObserver = Callable[[int, float], None]
# Called last in every writer transaction with what it changed (the incidents engine, given by the application): what
# it derives commits, or rolls back, with the change it follows, under the same seq.
Derive = Callable[[Transaction], Awaitable[None]]


class Hub:
    def __init__(self, store: Store, settings: Settings, publish: Publish, derive: Derive | None = None) -> None:
        self.store = store
        self.settings = settings
        self._publish = publish
        self._derive = derive
        self._queue: asyncio.Queue[Item] = asyncio.Queue(settings.ingest_queue)
        self._busy = False
        self.sessions: dict[int, AgentSession] = {}  # nvr_id -> the connection that speaks for it now
        self.hostnames = Hostnames()  # filled from the store by start()
        self.liveness = Liveness(settings, self.sessions)
        self.health = StorageHealth()
        self.started = time.time()
        self.last_event = 0.0
        self._next_conn = 0
        self._system = AgentSession(conn_id=0, remote="hub")
        self._timers: set[asyncio.TimerHandle] = set()
        # Commits of other processes: `nvrmon nvr remove` on the same file, or other hubs on a shared database.
        shared = store.database.backend != "sqlite"
        self.outside = OutsideCommits(eager=shared)
        self.cluster = Cluster(settings, self.liveness, shared)
        store.node = self.cluster.node
        self.on_commit: CommitObserver | None = None

    def new_session(self, remote: str) -> AgentSession:
        self._next_conn += 1
        return AgentSession(conn_id=self._next_conn, remote=remote)

    @property
    def node(self) -> str:
        return self.cluster.node

    @property
    def agents_connected(self) -> int:
        return len(self.sessions)

    @property
    def queue_depth(self) -> int:
        """Work items waiting for the writer (at most settings.ingest_queue; full means agents wait)."""
        return self._queue.qsize()

    async def start(self) -> None:
        """Before agents connect: NVRs that were up when the hub stopped are 'unknown' until they reconnect."""
        self.hostnames = Hostnames((nvr.id, nvr.hostname) for nvr in await self.store.fleet())
        async with self.store.transaction(time.time()) as tx:
            moved = await self.cluster.join(tx)
        if moved:
            self.liveness.settle_after(time.time() + self.cluster.grace)
            log.info("%d NVRs are unknown until their agents reconnect", len(moved))
        self.outside.known = await self.store.current_seq()  # pages load from here on: nothing older to publish

    async def remove_nvr(self, hostname: str, actor: str) -> bool:
        """Remove an NVR through the writer (models.FleetAdmin); False when there is no such NVR."""
        return await self._through_writer(self._system, Remove(hostname, actor)) > 0

    async def edit_inventory(self, edit: Edit, actor: str, address: str = "") -> Outcome:
        """Apply a fleet inventory edit through the writer (models.FleetAdmin); raises its InventoryError."""
        work = InventoryWork(edit, actor, address)
        await self._through_writer(self._system, work)
        if work.error is not None:
            raise work.error
        assert work.outcome is not None
        return work.outcome

    async def call(self, fn: Callable[[Transaction], Awaitable[int]]) -> int:
        """Run `fn` in a writer transaction (its changes published after commit); returns its result."""
        return await self._through_writer(self._system, Call(fn))

    async def submit(self, session: AgentSession, work: Work) -> None:
        """Queue work for the writer; a full queue makes agents wait (backpressure) rather than dropping changes."""
        await self._queue.put(Item(session, work))

    async def hello(self, session: AgentSession, hello: Hello) -> int:
        """Register the NVR; returns its id once the registration is committed (StorageUnavailable if it can't be)."""
        return await self._through_writer(session, hello)

    async def _through_writer(self, session: AgentSession, work: Work) -> int:
        """Queue work and wait for its commit; refused at once (StorageUnavailable) while the store refuses writes."""
        if self.health.degraded:
            raise StorageUnavailable(self.health.last_error)
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        await self._queue.put(Item(session, work, done))
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

    async def sweep(self) -> None:
        await asyncio.gather(
            self.liveness.sweep(self.submit, self._system, self.health),
            self.outside.watch(self.store, self.submit, self._system),
            self.cluster.run(self.call, self.store.database),
        )

    async def leave(self) -> None:
        """At shutdown, after drain: end this hub's lease so another takes its NVRs over at once."""
        await self.call(self.cluster.leave)

    # -- writer -----------------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """The single writer: take what is queued (the first item at once, then all that waits), commit, publish."""
        while True:
            batch = [await self._queue.get()]
            self._busy = True
            while len(batch) < self.settings.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            finally:
                self._busy = False

    async def _write(self, items: list[Item]) -> None:
        """Commit `items`, in order. A store that refuses writes is retried with backoff until it takes them (the
        queue fills meanwhile and agents are no longer read); only an item that itself breaks a rule is dropped."""
        delay = RETRY_FIRST
        while items:
            try:
                await self._commit(items)
            except Exception as exc:
                if not is_storage_failure(exc):
                    await self._bad_batch(items, exc)
                    return
                items = self._refused(items, exc)
                if items:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX)
            else:
                if self.health.committed():
                    self.liveness.forgive_outage(time.time())
                return

    async def _bad_batch(self, items: list[Item], exc: Exception) -> None:
        if len(items) == 1:
            self._drop(items[0], exc)
            return
        log.warning("batch of %d failed on work the store refused (%r); retrying item by item", len(items), exc)
        for item in items:
            await self._write([item])

    def _refused(self, items: list[Item], exc: Exception) -> list[Item]:
        """The store refused the batch for a reason outside it: agents hear it once per outage; hellos wait no more."""
        if self.health.failed(exc):
            frame = protocol.error_frame("storage_unavailable", "the hub cannot store frames now; keep them and wait")
            told = set()
            for session in [*self.sessions.values(), *(item.session for item in items if item.done is None)]:
                if session.nvr_id is not None and session not in told:
                    told.add(session)
                    session.post(frame)
        waiting = []
        for item in items:
            if item.done is None:
                waiting.append(item)
            elif not item.done.done():
                item.done.set_exception(StorageUnavailable(str(exc)))
        return waiting

    def _drop(self, item: Item, exc: Exception) -> None:
        log.error("dropping work from %s that the store refused: %r", item.session.remote, exc, exc_info=exc)
        if item.done is not None and not item.done.done():
            item.done.set_exception(exc)
        elif item.session.nvr_id is not None and not isinstance(item.work, Gone | Stale | Expired):
            item.session.post(protocol.error_frame("invalid_message", "the hub could not store this frame"))

    async def _commit(self, items: list[Item]) -> None:
        now = time.time()
        out = Effects(Journal(self.sessions))
        results: list[tuple[Item, int]] = []
        began = time.perf_counter()
        try:
            async with self.store.transaction(now) as tx:
                if self.outside.eager:  # others' commits before ours are published first, in seq order
                    await self._take_outside(tx, out)
                for item in items:
                    results.append((item, await self._apply(tx, item, out)))
                await out.write(tx)
                if self._derive is not None:
                    await self._derive(tx)
        except BaseException:
            out.journal.rollback()
            self.outside.rolled_back()
            raise
        self.outside.committed(tx.changes.seq)
        if self.on_commit is not None:
            self.on_commit(len(items), time.perf_counter() - began)
        # Committed: only now may anything leave the hub.
        for item, value in results:
            if item.done is not None and not item.done.done():
                item.done.set_result(value)
        for session, frame in out.frames:
            session.post(frame)
        for session, seq in out.acks.items():
            session.post(protocol.ack_frame(seq))
        for session, close in out.closes:
            session.post(close)
        if tx.changes:
            self.last_event = now
            self._publish(tx.changes, out.toasts, not self._queue.empty())

    async def _take_outside(self, tx: Transaction, out: Effects) -> None:
        await out.flush_flips(tx)
        for gone in await self.outside.take(tx, self.hostnames):
            self._close_removed(gone, out)

    def _close_removed(self, nvr_id: int, out: Effects) -> None:
        self.hostnames.forget(nvr_id)
        session = self.sessions.get(nvr_id)
        if session is not None:
            out.journal.keep_sessions()
            del self.sessions[nvr_id]  # its later frames (and its Gone) speak for nobody
            out.closes.append((session, REMOVED_CLOSE))

    async def _apply(self, tx: Transaction, item: Item, out: Effects) -> int:
        session, work = item.session, item.work
        if isinstance(work, Hello):
            return await hello.register(tx, session, work, out, self.hostnames, self.sessions, self.liveness)
        if isinstance(work, Outside):
            await self._take_outside(tx, out)
            return 0
        if isinstance(work, Remove):
            await out.flush_flips(tx)
            removed = await tx.remove_nvr(work.hostname, work.actor)
            if removed is None:
                return 0
            self._close_removed(removed.nvr_id, out)
            out.notify("info", f"{removed.hostname} removed", f"by {work.actor}", removed.hostname, "nvr")
            log.info("NVR %s removed by %s", removed.hostname, work.actor)
            return removed.nvr_id
        if isinstance(work, InventoryWork):
            await out.flush_flips(tx)
            max_cameras = self.settings.max_cameras_per_nvr
            return await inventory.apply(tx, work, out, self.hostnames, self.sessions, max_cameras)
        if isinstance(work, Call):
            await out.flush_flips(tx)
            return await work.fn(tx)
        if isinstance(work, SettleRestart):
            await self.liveness.settle_restart(tx, out)
            return 0
        if isinstance(work, Prune):
            # Through the writer (the store has one write connection); claimed once per interval among hubs.
            if not self.outside.eager or await hubs.claim(tx.connection, "prune", tx.now, work.every * 0.9):
                await tx.prune(work.before)
            return 0
        if isinstance(work, Steady):
            await self.liveness.steady(tx, work.nvr_id, out)
            return 0
        nvr_id = session.nvr_id
        if nvr_id is None or self.sessions.get(nvr_id) is not session:
            return 0  # a connection that was replaced or never said hello speaks for nobody
        out.journal.keep(session)
        if isinstance(work, Gone | Stale | Expired):
            await self.liveness.apply(tx, session, nvr_id, work, out)
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
            await out.flush_flips(tx)
            # Back from stale is quiet (it never went down); back from a timeout is news.
            if await tx.set_nvr_status(nvr_id, "online", "") and was == "offline":
                await self.liveness.transition(tx, out, session, "online", "heartbeat resumed")
        if isinstance(work, CameraStatus):
            ref = session.cameras.get(work.camera_id)
            if ref is None:
                text = f"camera {work.camera_id!r} is not in the list"
                out.frames.append((session, protocol.error_frame("unknown_camera", text)))
            else:
                if (ref.status, ref.reason) != (work.status, work.reason):
                    # A new reason while still offline is shown at once, but only a status change is an event.
                    if ref.status != work.status:
                        out.flip_events(session, [(ref.id, work.camera_id, work.status, work.reason)])
                    out.journal.set_camera(ref, work.status, work.reason)
                    out.flips[ref.id] = (work.status, work.reason)
                    out.flip_nvrs.add(nvr_id)
                detail = detail_json(work.detail)
                if detail is not None:
                    out.details[ref.id] = detail
        elif isinstance(work, Cameras):
            await out.flush_flips(tx)
            session.cameras, flips = await tx.replace_cameras(nvr_id, work.cameras)
            out.flip_events(session, flips)
        elif isinstance(work, Health):
            await degraded.apply_health(tx, session, nvr_id, work, self.settings, out)
        elif isinstance(work, Alert):
            ref = session.cameras.get(work.camera_id) if work.camera_id else None
            text = work.message if ref or not work.camera_id else f"[camera {work.camera_id}] {work.message}"
            out.events.append(NewEvent("alert", work.severity, text, nvr_id, ref.id if ref else None))
            if work.severity != "info":
                level = "error" if work.severity in ("error", "critical") else "warning"
                out.notify(level, f"{session.hostname}: {work.severity}", text)
        return nvr_id
