"""Stage 2, outside commits: seqs another process took on the hub's file (`nvrmon nvr remove`), found and published.

The CLI writes through the store in its own BEGIN IMMEDIATE transaction, which takes the next seq as the hub's writer
does. The hub knows every seq up to `known` is published; the store's seq moving past it without the writer (or a gap
before one of the writer's own seqs) means someone else committed. The writer then reads what they stamped, in a batch
of its own, and publishes it like any change, so open pages drop removed rows within about a second.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from nvrmon.ingest.registry import Hostnames
from nvrmon.ingest.session import AgentSession, Outside, Work
from nvrmon.store.fleet import Store, Transaction

log = logging.getLogger("nvrmon.ingest.outside")

POLL = 1.0  # seconds between looks at the store's seq


class OutsideCommits:
    """The writer's bookkeeping of published seqs; mutated only by the writer task (and `watch`'s one flag)."""

    def __init__(self, *, eager: bool = False) -> None:
        # eager: several hubs share the database, so nearly every batch has others' commits before its own seq; the
        # writer takes them at the start of each batch (a cursor must never pass a seq this hub did not publish).
        self.eager = eager
        self.known = 0  # every seq up to here is published
        self._pending: int | None = None  # the last outside seq a batch took, kept only if it commits
        self._queued = False

    def committed(self, seq: int) -> None:
        """After a writer COMMIT whose own seq is `seq` (0: it took none)."""
        if self._pending is not None:
            self.known, self._pending = max(self.known, self._pending), None
        # A gap before `seq` is someone else's commit: `known` stays before it, so `watch` sees the store ahead and
        # the range is published (this hub's own rows in it once more, which is harmless: fragments are keyed).
        if seq == self.known + 1:
            self.known = seq

    def rolled_back(self) -> None:
        self._pending = None

    async def take(self, tx: Transaction, hostnames: Hostnames | None = None) -> set[int]:
        """In the writer's transaction: add the outside rows to its changes; returns the NVRs removed outside. NVRs
        declared outside join `hostnames`, so a look-alike agent can't register beside them."""
        self._queued = False
        found, self._pending = await tx.take_outside(self.known)
        if hostnames is not None:
            for nvr_id, hostname in found.hostnames.items():
                hostnames.add(nvr_id, hostname)
        if found.removed_nvrs:
            log.info("publishing %d NVR removals made outside the hub", len(found.removed_nvrs))
        return found.removed_nvrs

    async def watch(
        self, store: Store, submit: Callable[[AgentSession, Work], Awaitable[None]], system: AgentSession
    ) -> None:
        while True:
            await store.wait_commit(POLL)  # PostgreSQL rings at every commit; SQLite looks again after POLL
            try:
                ahead = await store.current_seq() > self.known
            except Exception as exc:  # a locked or failing file: the writer's own health reports it
                log.debug("could not read the seq: %r", exc)
                continue
            if ahead and not self._queued:
                self._queued = True
                await submit(system, Outside())
