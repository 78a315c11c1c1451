from __future__ import annotations

import time

import pytest

from nvrmon.inventory import DecommissionCamera
from nvrmon.protocol import CameraInfo, NvrInfo
from nvrmon.store import inventory
from nvrmon.store.fleet import NewEvent, Store

pytestmark = pytest.mark.anyio


def cams(*statuses: str) -> list[CameraInfo]:
    return [CameraInfo(f"cam{i}", f"Cam {i}", f"10.0.0.{i}", s) for i, s in enumerate(statuses, 1)]  # type: ignore[arg-type]


@pytest.fixture
async def store(database_url: str):  # type: ignore[no-untyped-def]
    store = await Store.open(database_url)
    yield store
    await store.close()


async def register(store: Store, hostname: str = "nvr-1", *statuses: str) -> int:
    async with store.transaction(time.time()) as tx:
        nvr_id = (await tx.register_nvr(NvrInfo(hostname, region="North"))).nvr_id
        await tx.replace_cameras(nvr_id, cams(*(statuses or ("online", "online"))))
    return nvr_id


async def test_store_uses_wal_and_creates_an_epoch(store: Store) -> None:
    if store.database.reader is not None:  # SQLite
        cursor = await store.database.reader.execute("PRAGMA journal_mode")
        assert (await cursor.fetchone())[0] == "wal"  # type: ignore[index]
    assert len(store.epoch) == 8
    assert await store.current_seq() == 0


async def test_transaction_stamps_every_changed_row_with_one_new_seq(store: Store) -> None:
    async with store.transaction(time.time()) as tx:
        reg = await tx.register_nvr(NvrInfo("nvr-1"))
        nvr_id = reg.nvr_id
        await tx.replace_cameras(nvr_id, cams("online", "offline"))
    assert reg.previous is None
    assert tx.changes.seq == 1 == await store.current_seq()
    nvr = await store.nvr(nvr_id)
    cameras = await store.cameras(nvr_id=nvr_id)
    assert nvr is not None and nvr.updated_seq == 1 and nvr.cameras_total == 2 and nvr.cameras_online == 1
    assert {c.updated_seq for c in cameras} == {1}
    assert tx.changes.camera_ids == {c.id for c in cameras}


async def test_transaction_without_changes_allocates_no_seq(store: Store) -> None:
    async with store.transaction(time.time()) as tx:
        await tx.set_camera_statuses([])
        await tx.add_events([])
    assert tx.changes.seq == 0 and not tx.changes
    assert await store.current_seq() == 0


async def test_failed_transaction_rolls_back_and_keeps_seq(store: Store) -> None:
    await register(store)
    with pytest.raises(RuntimeError):
        async with store.transaction(time.time()) as tx:
            await tx.register_nvr(NvrInfo("nvr-2"))
            raise RuntimeError("boom")
    assert [n.hostname for n in await store.nvrs()] == ["nvr-1"]
    assert await store.current_seq() == 1


async def test_hello_again_updates_identity_by_hostname(store: Store) -> None:
    first = await register(store, "nvr-1")
    async with store.transaction(time.time()) as tx:
        again = await tx.register_nvr(NvrInfo("nvr-1", firmware="5.0"))
    assert again.nvr_id == first and again.previous == "online"
    nvr = await store.nvr(first)
    assert nvr is not None and nvr.firmware == "5.0"


async def test_replace_cameras_marks_vanished_missing_and_reports_flips(store: Store) -> None:
    nvr_id = await register(store, "nvr-1", "online", "online")
    before = {c.ext_id: c.id for c in await store.cameras(nvr_id=nvr_id)}
    async with store.transaction(time.time()) as tx:
        mirror, flips = await tx.replace_cameras(nvr_id, [
            CameraInfo("cam1", "Cam 1", "10.0.0.1", "offline", reason="connection refused"),
            CameraInfo("cam3", "Cam 3", "", "online"),
        ])  # fmt: skip
    assert set(mirror) == {"cam1", "cam3"}  # a missing camera is not in the hub's mirror: its frames are refused
    assert flips == [
        (before["cam1"], "Cam 1", "offline", "connection refused"),
        (before["cam2"], "Cam 2", "missing", ""),
    ]
    assert mirror["cam1"].reason == "connection refused"
    # A camera that vanished from its NVR's list stays, shown "missing" (a wiped recorder looks like that).
    gone = await store.camera(before["cam2"])
    assert gone is not None and not gone.removed and gone.display == "missing" and gone.updated_seq == tx.changes.seq
    assert [c.ext_id for c in await store.cameras(nvr_id=nvr_id)] == ["cam1", "cam2", "cam3"]
    assert [c.ext_id for c in await store.cameras(nvr_id=nvr_id, status="missing")] == ["cam2"]
    nvr = await store.nvr(nvr_id)
    assert nvr is not None and (nvr.cameras_total, nvr.cameras_missing, nvr.cameras_online) == (3, 1, 1)
    assert (await store.summary()).cameras_missing == 1
    assert before["cam2"] in tx.changes.camera_ids and mirror["cam3"].id in tx.changes.camera_ids
    async with store.transaction(time.time()) as tx:  # listed again: back, and said so
        _, flips = await tx.replace_cameras(nvr_id, [CameraInfo("cam2", "Cam 2", "", "online")])
    assert (before["cam2"], "Cam 2", "online", "") in flips
    back = await store.camera(before["cam2"])
    assert back is not None and back.display == "online"


async def test_nvr_offline_stamps_its_cameras_and_shows_them_unreachable(store: Store) -> None:
    nvr_id = await register(store)
    async with store.transaction(time.time()) as tx:
        assert await tx.set_nvr_status(nvr_id, "offline", "agent disconnected")
        assert not await tx.set_nvr_status(nvr_id, "offline", "again")
    cameras = await store.cameras(nvr_id=nvr_id)
    assert {c.display for c in cameras} == {"nvr_offline"}
    assert {c.updated_seq for c in cameras} == {tx.changes.seq}
    summary = await store.summary()
    assert (summary.nvrs_online, summary.cameras_online, summary.cameras_nvr_offline) == (0, 0, 2)


async def test_changed_since_returns_rows_after_cursor_or_none_past_limit(store: Store) -> None:
    first = await register(store, "nvr-1")
    cursor = await store.current_seq()
    second = await register(store, "nvr-2")
    changed = await store.changed_since(cursor, limit=100)
    assert changed is not None
    assert changed[0] == [second] and first not in changed[0] and len(changed[1]) == 2
    assert await store.changed_since(0, limit=3) is None


async def test_camera_filters_by_display_status_and_region(store: Store) -> None:
    a = await register(store, "nvr-a", "online", "offline")
    b = await register(store, "nvr-b", "online")
    async with store.transaction(time.time()) as tx:
        await tx.set_nvr_status(b, "offline", "gone")
    assert [c.ext_id for c in await store.cameras(status="offline")] == ["cam2"]
    assert [c.nvr_id for c in await store.cameras(status="nvr_offline")] == [b]
    assert {c.nvr_id for c in await store.cameras(status="online")} == {a}
    assert await store.cameras(region="South") == []


async def test_events_are_stamped_and_listed_newest_first(store: Store) -> None:
    nvr_id = await register(store)
    async with store.transaction(time.time()) as tx:
        await tx.add_events(
            [NewEvent("alert", "warning", "disk 91%", nvr_id), NewEvent("status", "info", "ok", nvr_id)]
        )
    events = await store.events(limit=10)
    assert [e.message for e in events] == ["ok", "disk 91%"]
    assert {e.seq for e in events} == {tx.changes.seq} and events[0].nvr_hostname == "nvr-1"
    assert [e.id for e in await store.events(after_seq=tx.changes.seq)] == []


async def test_heartbeats_update_last_seen_without_a_new_seq(store: Store) -> None:
    nvr_id = await register(store)
    seq = await store.current_seq()
    async with store.transaction(1e10) as tx:
        await tx.record_heartbeats([(nvr_id, 1e10, {"disk_free_pct": 40})])
    nvr = await store.nvr(nvr_id)
    assert nvr is not None and nvr.last_seen == 1e10 and nvr.stats == {"disk_free_pct": 40}
    assert await store.current_seq() == seq


async def test_prune_drops_old_events_and_raises_horizon_past_old_tombstones(store: Store) -> None:
    nvr_id = await register(store, "nvr-1", "online", "online")
    cam2 = [c.id for c in await store.cameras(nvr_id=nvr_id) if c.ext_id == "cam2"][0]
    async with store.transaction(time.time()) as tx:
        await tx.replace_cameras(nvr_id, cams("online"))  # cam2 is missing now: kept, not a tombstone
        # decommissioned: a tombstone (its own event is dropped first, so nothing names it)
        await inventory.apply(tx, DecommissionCamera(cam2), "test", max_cameras=10)
        await tx.add_events([NewEvent("alert", "info", "old", nvr_id)])
    await _drop_camera_events(store)
    tombstone_seq = tx.changes.seq
    async with store.transaction(time.time()) as tx:
        await tx.prune(before=time.time() + 10)
    assert await store.events() == []
    assert await store.horizon() == tombstone_seq
    assert [c.ext_id for c in await store.cameras(include_removed=True)] == ["cam1"]


async def _drop_camera_events(store: Store) -> None:
    async with store.database.transaction() as db:
        await db.execute("DELETE FROM events WHERE camera_id IS NOT NULL")


async def test_state_survives_reopen(database_url: str) -> None:
    store = await Store.open(database_url)
    async with store.transaction(time.time()) as tx:
        nvr_id = (await tx.register_nvr(NvrInfo("nvr-1"))).nvr_id
    epoch = store.epoch
    await store.close()
    reopened = await Store.open(database_url)
    try:
        assert reopened.epoch == epoch and await reopened.current_seq() == 1
        assert (await reopened.nvr(nvr_id)) is not None
    finally:
        await reopened.close()


async def test_summary_carries_the_seq_and_counts_cameras_as_they_show(store: Store) -> None:
    late = await register(store, "nvr-late", "online", "offline")
    down = await register(store, "nvr-down", "online", "online", "offline")
    async with store.transaction(time.time()) as tx:
        await tx.set_nvr_status(late, "stale", "late")
        await tx.set_nvr_status(down, "offline", "gone")
    summary = await store.summary()
    assert summary.seq == await store.current_seq()
    assert (summary.nvrs_total, summary.nvrs_stale, summary.nvrs_offline) == (2, 1, 1)
    assert (summary.cameras_online, summary.cameras_offline, summary.cameras_nvr_offline) == (1, 1, 3)
