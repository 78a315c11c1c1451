"""Alerts, the availability recorder: inside each writer transaction, the state intervals its change implies.

It is chained after the incidents engine on the hub's Derive hook (`chain`), so an interval closes and the next
opens at the commit of the transition itself (`tx.now`, the time the fleet tables stamp as status_changed). It is
level-triggered like the engine: for each device the transaction touched, the state it should have open now against
the one it has, so a replayed change writes nothing.

A hub restart loses no time and counts none twice: the hub leaves an alive mark every `history_mark_interval`
seconds (a tick of its own gives it a transaction to do so; a graceful stop writes a last one),
and the first transaction of a new run closes every open interval at the later of that mark and the last transition,
records the gap as "hub_down" up to now (nobody watched: reported apart, left out of availability), then settles each
device's real state. After a kill -9 the gap starts at most one mark interval early.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable

from nvrmon.alerts.maintenance import Maintenance, Writer
from nvrmon.availability import camera_state, nvr_state
from nvrmon.store import history as sql
from nvrmon.store.errors import is_storage_failure
from nvrmon.store.history import Facts, Wanted
from nvrmon.store.transaction import Transaction

log = logging.getLogger("nvrmon.alerts.history")

Hook = Callable[[Transaction], Awaitable[None]]
RUN = "history_run"  # meta: the recorder run that last settled every device
ALIVE = "history_alive"  # meta: when a hub was last known to run


def chain(*hooks: Hook) -> Hook:
    """One Derive hook that runs `hooks` in order, in the same transaction."""

    async def run(tx: Transaction) -> None:
        for hook in hooks:
            await hook(tx)

    return run


class History:
    def __init__(self, maintenance: Maintenance, mark_every: float) -> None:
        self.maintenance = maintenance
        self.mark_every = mark_every
        self.run_id = secrets.token_hex(8)
        self._resumed = False  # True once a committed transaction shows this run's resume
        self._marked = 0.0

    async def record(self, tx: Transaction) -> None:
        """The hook: resume once per run, then the devices this transaction touched, then the alive mark."""
        db, changes = tx.connection, tx.changes
        mark = tx.now - self._marked >= self.mark_every
        if self._resumed and not (mark or changes.nvr_ids or changes.camera_ids):
            return  # most batches are heartbeats: nothing to write, not even a savepoint
        try:
            async with sql.savepoint(db):
                if not self._resumed and await self._resume(tx):
                    return
                if changes.nvr_ids or changes.camera_ids:
                    await self._settle(tx, await sql.facts(db, changes.nvr_ids, changes.camera_ids))
                if mark:
                    await sql.set_meta(db, ALIVE, repr(tx.now))
                    self._marked = tx.now
        except Exception as exc:
            if is_storage_failure(exc):
                raise
            # A defect here must not cost the agents' frames; the next change to these devices settles them again.
            log.exception("availability history could not be recorded")

    async def _resume(self, tx: Transaction) -> bool:
        db = tx.connection
        if await sql.meta(db, RUN) == self.run_id:
            self._resumed = True  # committed: a rolled-back resume would still show the previous run here
            return False
        alive = await sql.meta(db, ALIVE)
        gap = await sql.resume(db, float(alive) if alive else tx.now, tx.now)
        await sql.set_meta(db, RUN, self.run_id)
        await sql.set_meta(db, ALIVE, repr(tx.now))
        self._marked = tx.now
        await self._settle(tx, await sql.all_facts(db))
        if gap < tx.now:
            log.info("no hub ran for %.1f s: recorded as hub-down for every device", tx.now - gap)
        return True

    async def _settle(self, tx: Transaction, found: list[Facts]) -> None:
        wanted: dict[str, tuple[Facts, Wanted | None]] = {}
        window = self.maintenance
        for f in found:
            if f.removed:
                wanted[f.key] = (f, None)
            elif f.camera_id is None:
                covered = window.nvr_window(f.hostname, f.site, f.region, tx.now) is not None
                wanted[f.key] = (f, Wanted(nvr_state(f.status), covered, f.region, f.site))
            else:
                covered = window.camera_window(f.camera_id, f.hostname, f.site, f.region, tx.now) is not None
                wanted[f.key] = (f, Wanted(camera_state(f.nvr_status, f.status), covered, f.region, f.site))
        await sql.settle(tx.connection, tx.now, wanted)

    # -- the mark's clock (owned by the lifespan) -------------------------------------------------------------------

    async def _tick(self, tx: Transaction) -> int:
        self._marked = 0.0  # runs before the hook in the same transaction: the hook leaves a mark in it
        return 0

    async def run(self, writer: Writer) -> None:
        """Give the writer a marked transaction every mark interval, so marks are never further apart than that."""
        while True:
            await asyncio.sleep(self.mark_every)
            try:
                await writer.call(self._tick)
            except Exception as exc:  # the store refuses writes now: the next tick tries again
                log.debug("alive mark not written: %r", exc)

    async def stop(self, writer: Writer) -> None:
        """At a graceful stop: a last alive mark, so the next start counts the gap from here."""
        try:
            async with asyncio.timeout(2.0):
                await writer.call(self._tick)
        except Exception as exc:
            log.warning("no last alive mark at shutdown: %r", exc)
