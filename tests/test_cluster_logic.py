"""Several hubs on one database, below the processes: leases, takeover, owned liveness, outside commits, claims."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest

from nvrmon.application import agent_token
from nvrmon.ingest.batch import Effects
from nvrmon.ingest.cluster import Cluster
from nvrmon.ingest.liveness import Liveness
from nvrmon.ingest.session import AgentSession, Journal
from nvrmon.protocol import CameraInfo, NvrInfo
from nvrmon.settings import Settings
from nvrmon.store import hubs, outbox
from nvrmon.store.fleet import Store
from nvrmon.store.outbox import Outbox

pytestmark = pytest.mark.anyio

LEASE = 10.0
T0 = 1_800_000_000.0


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    store = await Store.open(database_url)
    yield store
    await store.close()


def cluster(node: str) -> Cluster:
    settings = Settings(node_id=node, hub_lease=LEASE, heartbeat_timeout=30.0)
    return Cluster(settings, Liveness(settings, {}), shared=True)


async def renew(store: Store, member: Cluster, now: float) -> bool:
    async with store.database.transaction() as db:
        return await hubs.renew(db, member.node, "", now)


async def register(store: Store, node: str, hostname: str, now: float) -> int:
    store.node = node
    async with store.transaction(now) as tx:
        nvr_id = (await tx.register_nvr(NvrInfo(hostname, site="Depot"))).nvr_id
        await tx.replace_cameras(nvr_id, [CameraInfo("cam1", "Gate", "10.0.0.1", "online")])
    return nvr_id


async def status(store: Store, nvr_id: int) -> str:
    nvr = await store.nvr(nvr_id)
    assert nvr is not None
    return nvr.status


async def test_cluster_dead_hub_nvrs_turn_unknown_exactly_once(store: Store) -> None:
    a, b, c = cluster("hub-a"), cluster("hub-b"), cluster("hub-c")
    for member in (a, b, c):
        assert not await renew(store, member, T0)  # a new lease row
    held_by_a = await register(store, "hub-a", "nvr-a", T0)
    held_by_b = await register(store, "hub-b", "nvr-b", T0)
    for member in (b, c):  # b and c renew; a has died (no more renewals)
        assert await renew(store, member, T0 + LEASE / 2)
    await renew(store, b, T0 + LEASE + 1)
    async with store.transaction(T0 + LEASE + 1) as tx:
        taken = await b.beat(tx)
    await renew(store, c, T0 + LEASE + 2)
    async with store.transaction(T0 + LEASE + 2) as tx:
        taken_again = await c.beat(tx)
    assert (taken, taken_again) == (1, 0)
    assert await status(store, held_by_a) == "unknown" and await status(store, held_by_b) == "online"
    assert [lease.node for lease in await hubs.leases(store.database)] == ["hub-c", "hub-b"]
    notes = [e.message for e in await store.events(limit=10) if "stopped" in e.message]
    assert notes == ["hub hub-a stopped: 1 NVRs are unknown until their agents reconnect"]
    assert b.liveness.grace_until == T0 + LEASE + 1 + 30.0  # offline only if still unknown after the grace


async def test_cluster_nvr_that_reconnected_elsewhere_is_not_taken_over(store: Store) -> None:
    a, b = cluster("hub-a"), cluster("hub-b")
    for member in (a, b):
        await renew(store, member, T0)
    nvr_id = await register(store, "hub-a", "nvr-1", T0)
    await register(store, "hub-b", "nvr-1", T0 + 2)  # its agent came back through the balancer, to hub b
    await renew(store, b, T0 + LEASE + 1)
    async with store.transaction(T0 + LEASE + 1) as tx:
        assert await b.beat(tx) == 0
    assert await status(store, nvr_id) == "online"


async def test_cluster_hub_taken_for_dead_while_alive_wins_its_nvrs_back(store: Store) -> None:
    a, b = cluster("hub-a"), cluster("hub-b")
    for member in (a, b):
        await renew(store, member, T0)
    nvr_id = await register(store, "hub-a", "nvr-1", T0)
    session = AgentSession(conn_id=1, remote="agent")
    session.nvr_id, session.status = nvr_id, "online"
    a.liveness.sessions[nvr_id] = session  # its agent is still connected to hub a
    await renew(store, b, T0 + LEASE + 1)
    async with store.transaction(T0 + LEASE + 1) as tx:  # hub a stalled past its lease: b takes it for dead
        assert await b.beat(tx) == 1
    assert await status(store, nvr_id) == "unknown"
    assert not await renew(store, a, T0 + LEASE + 2)  # a wakes up: its lease row is gone
    async with store.transaction(T0 + LEASE + 2) as tx:
        assert await a.reclaim(tx) == 1
    assert await status(store, nvr_id) == "online"  # back before the grace could turn it offline


async def test_cluster_liveness_of_an_nvr_belongs_to_the_hub_holding_it(store: Store) -> None:
    nvr_id = await register(store, "hub-a", "nvr-1", T0)
    await register(store, "hub-b", "nvr-1", T0 + 1)
    store.node = "hub-a"  # hub a's old socket times out after the agent moved to hub b
    async with store.transaction(T0 + 40) as tx:
        assert not await tx.set_nvr_status(nvr_id, "offline", "no heartbeat for 40 s")
    store.node = "hub-b"
    async with store.transaction(T0 + 41) as tx:
        assert await tx.set_nvr_status(nvr_id, "stale", "no heartbeat for 16 s")
    assert await status(store, nvr_id) == "stale"


async def test_cluster_joining_hub_leaves_nvrs_of_live_hubs_alone(store: Store) -> None:
    b = cluster("hub-b")
    await renew(store, b, T0)
    of_b = await register(store, "hub-b", "nvr-b", T0)
    of_old_run = await register(store, "hub-a-old", "nvr-a", T0)  # a hub that is gone, its lease long expired
    async with store.transaction(T0 + 1) as tx:
        moved = await cluster("hub-a").join(tx)
    assert [nvr_id for nvr_id, _ in moved] == [of_old_run]
    assert await status(store, of_b) == "online" and await status(store, of_old_run) == "unknown"


async def test_cluster_settle_only_moves_nvrs_unknown_for_the_whole_grace(store: Store) -> None:
    settings = Settings(heartbeat_timeout=30.0)
    early = await register(store, "hub-a", "nvr-early", T0)
    late = await register(store, "hub-a", "nvr-late", T0)
    async with store.transaction(T0) as tx:
        await tx.set_all_status(("online",), "unknown", "hub restart", hubs=["hub-a"])
    async with store.transaction(T0 + 20) as tx:
        await tx.set_nvr_status(late, "online", "")
        await tx.set_nvr_status(late, "unknown", "its hub stopped")
    async with store.transaction(T0 + 31) as tx:
        await Liveness(settings, {}).settle_restart(tx, Effects(Journal({})))
    assert await status(store, early) == "offline" and await status(store, late) == "unknown"


async def test_transaction_publishing_outside_commits_takes_no_seq_of_its_own(store: Store) -> None:
    nvr_id = await register(store, "hub-b", "nvr-1", T0)  # hub b's commit, seq 1
    assert await store.current_seq() == 1
    async with store.transaction(T0 + 1) as tx:  # hub a publishes it
        found, upto = await tx.take_outside(0)
    assert (upto, tx.changes.seq, found.nvr_ids) == (1, 1, {nvr_id})
    assert await store.current_seq() == 1  # no write: otherwise every hub would answer every other, for ever
    async with store.transaction(T0 + 2) as tx:
        await tx.take_outside(0)
        await tx.touch_nvr(nvr_id)  # anything stamped after that takes a new seq
    assert tx.changes.seq == 2 == await store.current_seq()


async def test_outbox_recover_leaves_rows_a_live_hub_is_sending(store: Store) -> None:
    database = store.database
    async with database.transaction() as db:
        await hubs.renew(db, "hub-b", "", T0)
        cursor = await db.execute(
            "INSERT INTO channels (name, kind, target, shown, created) VALUES ('ops', 'apprise', 'json://x', 'x', 0) "
            "RETURNING id"
        )
        row = await cursor.fetchone()
        assert row is not None
        channel = int(row[0])
        for node in ("hub-b", "hub-dead", "hub-a"):
            await db.execute(
                "INSERT INTO outbox (channel_id, group_key, kind, state, created, due_at, next_at, claimed_by) "
                "VALUES (?, 'g', 'group', 'sending', 0, 0, 0, ?)",
                (channel, node),
            )
    assert await Outbox(database, "hub-a", LEASE).recover(T0 + 1) == 2  # its own previous run's, and the dead hub's
    async with database.transaction() as db:
        assert await outbox.release_claims(db, "hub-b", T0 + 30) == 1  # hub b died later: taken over
    rows = await database.fetch_all("SELECT claimed_by, state FROM outbox ORDER BY id")
    assert [tuple(r) for r in rows] == [("hub-b", "unknown"), ("hub-dead", "unknown"), ("hub-a", "unknown")]


async def test_outbox_feed_from_a_moved_cursor_writes_nothing(store: Store) -> None:
    box = Outbox(store.database, "hub-a")
    assert await box.feed(0, 5, [], 30.0, 300.0) == 0
    assert await box.feed(0, 7, [], 30.0, 300.0) is None  # another hub fed entries 1..5 first
    assert await box.cursor() == 5


async def test_claim_is_taken_once_per_interval_among_hubs(store: Store) -> None:
    async with store.database.transaction() as db:
        first = await hubs.claim(db, "prune", T0, 60.0)
        second = await hubs.claim(db, "prune", T0 + 1, 60.0)
        later = await hubs.claim(db, "prune", T0 + 61, 60.0)
    assert (first, second, later) == (True, False, True)


def test_settings_node_defaults_to_host_and_process() -> None:
    assert Settings(node_id="hub-7").node == "hub-7"
    assert Settings().node.endswith(f"-{os.getpid()}")


async def test_hubs_starting_together_share_one_generated_agent_token(database_url: str) -> None:
    stores = [await Store.open(database_url) for _ in range(3)]
    try:
        tokens = await asyncio.gather(*(agent_token(store, Settings()) for store in stores))
    finally:
        for store in stores:
            await store.close()
    assert len(set(tokens)) == 1 and tokens[0]  # an agent configured from any hub's log is let in by all of them
