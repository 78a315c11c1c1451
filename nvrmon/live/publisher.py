"""Stage 4, after commit: coalesce committed changes, render them once per open view, hand bytes to the broadcaster."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from nvrmon.live.broadcaster import Broadcaster
from nvrmon.live.sse import encode
from nvrmon.live.toasts import summarise, wire
from nvrmon.live.viewkey import EMBED
from nvrmon.live.views import Views
from nvrmon.models import Toast
from nvrmon.settings import Settings
from nvrmon.store.fleet import Changes

log = logging.getLogger("nvrmon.live.publisher")


class Publisher:
    """Latest wins, per row: changes committed while a flush is pending merge into one set of ids, and rows are
    rendered from the store's state at flush time, so a camera that flipped five times goes out once, as it is now.

    Timing: the first change after a quiet spell goes out at once (leading edge); later ones wait for the end of the
    coalescing window, which adapts between coalesce_min and coalesce_window: it widens while subscribers still have
    queued messages at a flush (fan-out can't keep up: bigger, fewer messages) and narrows when they keep up. Under
    overload the hub therefore coalesces harder instead of dropping. Statistics (KPIs, stats bars) are debounced
    (stats_debounce of quiet, at most stats_max_wait late) and sent at most once per stats_max_wait.
    """

    def __init__(self, views: Views, broadcaster: Broadcaster, settings: Settings) -> None:
        self._views = views
        self._broadcaster = broadcaster
        self._settings = settings
        self._pending = Changes()
        self._toasts: list[Toast] = []
        self._wake = asyncio.Event()
        self.window = settings.coalesce_min
        self._last_flush = 0.0
        self._stats_dirty_since = 0.0
        self._stats_last_change = 0.0
        self._stats_last_flush = 0.0
        self._first_pending = 0.0
        self._more = False
        self.flushes = 0

    @property
    def pending_rows(self) -> int:
        """Committed rows and events waiting for the next flush (its queue depth, for /metrics)."""
        pending = self._pending
        return len(pending.nvr_ids) + len(pending.camera_ids) + len(pending.event_ids)

    def submit(self, changes: Changes, toasts: list[Toast], more: bool = False) -> None:
        """Called by the hub right after a commit; never blocks the writer. `more`: the writer already has the next
        batch queued (a burst is arriving), so this flush may wait for it, up to coalesce_window."""
        pending = self._pending
        if not pending.seq:
            self._first_pending = time.monotonic()
        self._more = more
        pending.seq = max(pending.seq, changes.seq)
        pending.nvr_ids |= changes.nvr_ids
        pending.camera_ids |= changes.camera_ids
        pending.event_ids.extend(changes.event_ids)
        pending.incident_ids |= changes.incident_ids
        self._toasts.extend(toasts)
        if changes.nvr_ids or changes.camera_ids:
            now = time.monotonic()
            self._stats_dirty_since = self._stats_dirty_since or now
            self._stats_last_change = now
        self._wake.set()

    async def run(self) -> None:
        while True:
            timeout = self._next_deadline()
            if timeout is None:
                await self._wake.wait()
            elif timeout > 0:
                # Not wait_for: on 3.11 it can swallow a cancellation that arrives as the wait ends, and this task
                # then outlived shutdown (seen as a hung TestClient teardown in tests/test_embed.py).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._wake.wait()
            self._wake.clear()
            try:
                if self._pending.seq and not self._holding():
                    wait = self._last_flush + self.window - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)  # more changes may join this flush meanwhile
                    await self._flush_rows()
                due = self._stats_due_in()
                if due is not None and due <= 0:
                    await self._flush_stats()
            except Exception:
                # A rendering (or reading) failure must not stop live updates, nor lose the changes taken for this
                # flush: every subscriber converges from the store instead, from its own cursor.
                log.exception("publishing failed; every stream catches up from the store")
                self._broadcaster.resync_all()

    def _holding(self) -> bool:
        """A burst is still being committed: wait for its next commit, but never past coalesce_window."""
        return self._more and time.monotonic() < self._first_pending + self._settings.coalesce_window

    def _next_deadline(self) -> float | None:
        deadlines = []
        if self._pending.seq and self._more:
            deadlines.append(self._first_pending + self._settings.coalesce_window - time.monotonic())
        stats = self._stats_due_in()
        if stats is not None:
            deadlines.append(stats)
        return min(deadlines) if deadlines else None

    def _stats_due_in(self) -> float | None:
        if not self._stats_dirty_since:
            return None
        s = self._settings
        due = min(self._stats_last_change + s.stats_debounce, self._stats_dirty_since + s.stats_max_wait)
        due = max(due, self._stats_last_flush + s.stats_max_wait)
        return due - time.monotonic()

    async def _flush_rows(self) -> None:
        changes, toasts = self._pending, summarise(self._toasts)
        self._pending, self._toasts, self._more = Changes(), [], False
        self._last_flush = time.monotonic()
        keys = self._broadcaster.views()
        if not keys:
            return
        payload = [wire(t) for t in toasts]
        if payload:
            self._broadcaster.remember_toasts(changes.seq, payload)
        due = self._stats_due_in()
        with_stats = due is not None and due <= self.window
        if with_stats:
            # Statistics due before the next flush could come ride in this message (one write and one swap per
            # stream, not two); rendered from the store as it is now, like a flush of their own.
            self._stats_dirty_since, self._stats_last_flush = 0.0, time.monotonic()
        messages = await self._views.render_changes(changes, keys, stats=False, toasts=payload, all_stats=with_stats)
        backlog = self._broadcaster.publish(changes.seq, messages)
        self.flushes += 1
        s = self._settings
        if backlog > 1:
            self.window = min(s.coalesce_window, self.window * 2)
        elif backlog == 0:
            self.window = max(s.coalesce_min, self.window / 2)

    def storage_changed(self, health: object) -> None:
        """The hub's storage went degraded or recovered: the banner, on every open page at once. Sequence 0: it
        carries no rows, so it moves no cursor (a reconnecting page gets the banner afresh, see EventStream)."""
        data = encode(self._views.health_banner())
        self._broadcaster.publish(0, {key: data for key in self._broadcaster.views() if not key.startswith(EMBED)})

    async def _flush_stats(self) -> None:
        self._stats_dirty_since = 0.0
        self._stats_last_flush = time.monotonic()
        keys = self._broadcaster.views()
        if keys:
            self._broadcaster.publish(0, await self._views.render_stats(keys))
