"""Stage 2, several hubs on one database: this hub's lease, and taking over the NVRs of a hub that died."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from nvrmon.ingest.liveness import Liveness
from nvrmon.models import NvrStatus
from nvrmon.settings import Settings
from nvrmon.store import hubs, outbox
from nvrmon.store.database import Database
from nvrmon.store.fleet import NewEvent, Transaction

log = logging.getLogger("nvrmon.ingest.cluster")

Call = Callable[[Callable[[Transaction], Awaitable[int]]], Awaitable[int]]
UP: tuple[NvrStatus, ...] = ("online", "stale")


class Cluster:
    """The hub's membership. A hub renews its lease row every third of `hub_lease`; a hub whose lease ran out is
    dead, and the first live hub to notice takes its NVRs: they show "unknown" until their agents reconnect (through
    the load balancer, to any hub) and offline only if they have not within the restart grace (no alert storm)."""

    def __init__(self, settings: Settings, liveness: Liveness, shared: bool) -> None:
        self.node = settings.node
        self.address = f"{settings.host}:{settings.port}"
        self.lease = settings.hub_lease
        self.grace = settings.startup_grace or settings.heartbeat_timeout
        self.liveness = liveness
        self.shared = shared  # False on SQLite: one hub per file (HubLock), so every other lease row is stale

    async def join(self, tx: Transaction) -> list[tuple[int, str]]:
        """The hub's first transaction: its lease, and the NVRs that no live hub holds turn unknown (returned)."""
        db = tx.connection
        await hubs.renew(db, self.node, self.address, tx.now)
        if self.shared:
            others = await hubs.alive_others(db, tx.now - self.lease, self.node)
        else:
            await hubs.forget_others(db, self.node)
            others = []
        reason = "waiting for its agent after hub restart"
        return await tx.set_all_status(UP, "unknown", reason, other_than=others)

    async def run(self, call: Call, database: Database) -> None:
        """Renew the lease in a transaction of its own, so a writer queue full of agent frames can't let it lapse;
        then, through the writer, take over dead hubs, or win this hub's NVRs back if it was taken for dead."""
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                async with database.transaction() as db:
                    kept = await hubs.renew(db, self.node, self.address, time.time())
                if not kept:
                    await call(self.reclaim)
                await call(self.beat)
            except Exception as exc:  # the store refusing writes: the writer's health reports it; try next beat
                log.warning("could not renew the hub lease: %r", exc)

    async def beat(self, tx: Transaction) -> int:
        """Take over every dead hub's NVRs; returns how many NVRs were taken over."""
        db = tx.connection
        taken = 0
        for dead in await hubs.take_dead(db, tx.now - self.lease, self.node):
            # Notifications it was sending may or may not have gone out: unknown, never sent twice.
            await outbox.release_claims(db, dead, tx.now)
            reason = f"its hub {dead} stopped; waiting for its agent to reconnect"
            moved = await tx.set_all_status(UP, "unknown", reason, hubs=[dead])
            log.warning("hub %s stopped renewing its lease; %d of its NVRs are unknown for now", dead, len(moved))
            if moved:
                taken += len(moved)
                text = f"hub {dead} stopped: {len(moved)} NVRs are unknown until their agents reconnect"
                await tx.add_events([NewEvent("status", "warning", text)])
                self.liveness.settle_after(tx.now + self.grace)
        return taken

    async def reclaim(self, tx: Transaction) -> int:
        """This hub's lease lapsed (a long stall) and another hub took its NVRs over while their agents were still
        connected here: each NVR this hub holds gets back the status its session knows, before the grace ends."""
        back = 0
        for nvr_id, session in list(self.liveness.sessions.items()):
            if session.status in UP and await tx.set_nvr_status(nvr_id, session.status, ""):
                back += 1
        log.error("this hub's lease had lapsed and its NVRs were taken over; %d of them are back", back)
        return back

    async def leave(self, tx: Transaction) -> int:
        """Stopping on purpose: end the lease now, so another hub takes over the NVRs at its next beat."""
        await hubs.expire(tx.connection, self.node)
        return 0
