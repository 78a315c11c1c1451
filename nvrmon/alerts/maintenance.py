"""Alerts, maintenance windows: the hub's copy of the windows, which devices they cover now, and the timer that
starts and ends them (owned by the lifespan, not driven by page views)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from nvrmon.incidents import Window
from nvrmon.models import Camera, Nvr
from nvrmon.store import maintenance as sql
from nvrmon.store.database import Database
from nvrmon.store.transaction import Transaction

log = logging.getLogger("nvrmon.alerts.maintenance")

LONGEST_SLEEP = 60.0  # the timer looks again at least this often (clock steps, DST)


class Writer(Protocol):
    """The hub's single writer (nvrmon.ingest.hub.Hub.call): runs a function in its transaction, publishes after."""

    async def call(self, fn: Callable[[Transaction], Awaitable[int]]) -> int: ...


class Maintenance:
    """The windows as the store has them, kept by the writer: loaded at start, replaced inside each transaction that
    changes them. Templates ask it (the `maintenance` global) whether a row is in maintenance now."""

    def __init__(self) -> None:
        self.windows: tuple[Window, ...] = ()
        self._active: frozenset[int] = frozenset()  # the windows active at the timer's last look
        self._now: tuple[int, tuple[Window, ...], list[Window]] | None = None  # rendering's answer, per second
        self.changed = asyncio.Event()
        self.generation = ""  # the store's maintenance generation these windows were read at

    async def load(self, source: Database | Transaction) -> None:
        db = source.connection if isinstance(source, Transaction) else source
        self.generation = await sql.generation(db)
        self.windows = tuple(await sql.windows(db))
        self._now = None
        self.changed.set()

    async def refresh(self, tx: Transaction) -> None:
        """In the writer, when hubs share the database: read the windows again if another hub changed them."""
        if await sql.generation(tx.connection) != self.generation:
            await self.load(tx)

    def active(self, now: float | None = None) -> list[Window]:
        if now is not None:
            return [w for w in self.windows if w.active(now)]
        # Rendering asks once per row: the answer is kept for the current second (and these windows).
        second = int(time.time())
        cached = self._now
        if cached is None or cached[0] != second or cached[1] is not self.windows:
            cached = self._now = (second, self.windows, [w for w in self.windows if w.active(time.time())])
        return cached[2]

    def nvr_window(self, hostname: str, site: str, region: str, now: float | None = None) -> Window | None:
        return next((w for w in self.active(now) if w.match.covers_nvr(hostname, site, region)), None)

    def camera_window(
        self, camera_id: int, hostname: str, site: str, region: str, now: float | None = None
    ) -> Window | None:
        return next((w for w in self.active(now) if w.match.covers_camera(camera_id, hostname, site, region)), None)

    def covers(self, device: Nvr | Camera) -> Window | None:
        """The active window a row is in (for templates), or None."""
        if isinstance(device, Camera):
            return self.camera_window(device.id, device.nvr_hostname, device.site, device.region)
        return self.nvr_window(device.hostname, device.site, device.region)

    # -- the timer --------------------------------------------------------------------------------------------------

    def next_change(self, now: float) -> float:
        edges = [edge for w in self.windows if (edge := w.next_change(now)) is not None]
        return min([*edges, now + LONGEST_SLEEP])

    async def run(self, writer: Writer) -> None:
        """Sleep until the next window starts or ends (or the windows change), then let the writer re-render the
        devices of every window that started or ended; the incidents engine then sees them in the same transaction
        (a device still down when its window ends opens its incident then)."""
        while True:
            now = time.time()
            wait = max(0.0, self.next_change(now) - now) + 0.01
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self.changed.wait()
            self.changed.clear()
            if frozenset(w.id for w in self.active()) != self._active:
                try:
                    await writer.call(self.boundary)
                except Exception as exc:  # the store refuses writes now: look again after the next sleep
                    log.warning("could not apply a maintenance window's start or end: %r", exc)
                    await asyncio.sleep(1.0)
                    self.changed.set()

    async def boundary(self, tx: Transaction) -> int:
        """In the writer: stamp the devices of windows that started or ended since the last look."""
        self._now = None  # rows re-rendered for this change must see the windows as they are from now on
        now_active = {w.id: w for w in self.active(tx.now)}
        flipped = [w for w in self.windows if (w.id in now_active) != (w.id in self._active)]
        for window in flipped:
            await sql.stamp_covered(tx, window.match)
        self._active = frozenset(now_active)
        return len(flipped)

    # -- changes (in the writer) --------------------------------------------------------------------------------------

    async def create(self, tx: Transaction, window: Window) -> int:
        window_id = await sql.insert(tx, window)
        if window_id:
            await self.load(tx)
            await sql.stamp_covered(tx, window.match)
            if window_id in {w.id for w in self.active(tx.now)}:
                self._active |= {window_id}  # re-rendered here already: the timer needn't do it again
        return window_id

    async def delete(self, tx: Transaction, window_id: int) -> int:
        removed = await sql.delete(tx, window_id)
        if removed is None:
            return 0
        await self.load(tx)
        await sql.stamp_covered(tx, removed.match)
        self._active -= {window_id}
        return window_id
