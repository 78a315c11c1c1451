from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from nvrmon.ingest.health import StorageUnavailable
from nvrmon.ingest.hub import Hub
from nvrmon.ingest.session import AgentSession, Expired, Gone, Item
from nvrmon.models import Toast
from nvrmon.protocol import Alert, CameraInfo, Cameras, CameraStatus, Heartbeat, Hello, NvrInfo
from nvrmon.settings import Settings
from nvrmon.store.errors import is_storage_failure
from nvrmon.store.fleet import Changes, Store
from tests.disk import fill, small_disk

pytestmark = pytest.mark.anyio


class Published(list[tuple[Changes, list[Toast]]]):
    def __call__(self, changes: Changes, toasts: list[Toast], more: bool = False) -> None:
        self.append((changes, toasts))


@pytest.fixture
async def hub(database_url: str):  # type: ignore[no-untyped-def]
    settings = Settings(database_url=database_url, heartbeat_timeout=0.4)
    store = await Store.open(settings.database)
    hub = Hub(store, settings, Published())
    runner = asyncio.create_task(hub.run())
    yield hub
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    await store.close()


def published(hub: Hub) -> Published:
    return hub._publish  # type: ignore[return-value]


def hello(hostname: str, *statuses: str) -> Hello:
    cams = tuple(CameraInfo(f"cam{i}", f"Cam {i}", "", s) for i, s in enumerate(statuses or ("online",), 1))  # type: ignore[arg-type]
    return Hello(NvrInfo(hostname), cams)


async def settle(hub: Hub) -> None:
    """Wait until the writer has applied everything queued."""
    for _ in range(500):
        # Both: an empty queue alone may mean the writer took the batch and is still applying it (item by item after
        # a bad frame, which takes a while on a loaded machine).
        if hub._queue.empty() and not hub._busy:
            await asyncio.sleep(0.02)
            if hub._queue.empty() and not hub._busy:
                return
        await asyncio.sleep(0.01)


async def test_hello_commits_then_publishes_the_nvr(hub: Hub) -> None:
    session = hub.new_session("test")
    nvr_id = await hub.hello(session, hello("nvr-1", "online", "offline"))
    nvr = await hub.store.nvr(nvr_id)
    assert nvr is not None and nvr.status == "online" and nvr.cameras_total == 2
    changes, toasts = published(hub)[-1]
    assert nvr_id in changes.nvr_ids and changes.seq == await hub.store.current_seq()
    assert toasts[0].level == "success" and "nvr-1" in toasts[0].title
    assert hub.sessions[nvr_id] is session and set(session.cameras) == {"cam1", "cam2"}


async def test_camera_flip_updates_row_and_nvr_counts(hub: Hub) -> None:
    session = hub.new_session("test")
    nvr_id = await hub.hello(session, hello("nvr-1", "online", "online"))
    await hub.submit(session, CameraStatus("cam2", "offline"))
    await settle(hub)
    changes, _ = published(hub)[-1]
    cam_id = session.cameras["cam2"].id
    assert changes.camera_ids == {cam_id} and changes.nvr_ids == {nvr_id}
    nvr = await hub.store.nvr(nvr_id)
    assert nvr is not None and nvr.cameras_online == 1
    events = await hub.store.events(limit=1)
    assert events[0].camera_id == cam_id and "offline" in events[0].message


async def test_repeated_status_publishes_nothing(hub: Hub) -> None:
    session = hub.new_session("test")
    await hub.hello(session, hello("nvr-1", "online"))
    count = len(published(hub))
    await hub.submit(session, CameraStatus("cam1", "online"))
    await hub.submit(session, Heartbeat())
    await settle(hub)
    assert len(published(hub)) == count


async def test_unknown_camera_gets_an_error_frame_and_changes_nothing(hub: Hub) -> None:
    session = hub.new_session("test")
    await hub.hello(session, hello("nvr-1"))
    seq = await hub.store.current_seq()
    await hub.submit(session, CameraStatus("ghost", "offline"))
    await settle(hub)
    frame = session.outbox.get_nowait()
    assert isinstance(frame, str) and json.loads(frame)["code"] == "unknown_camera"
    assert await hub.store.current_seq() == seq


async def test_disconnect_sets_offline_once_with_toast(hub: Hub) -> None:
    session = hub.new_session("test")
    nvr_id = await hub.hello(session, hello("nvr-1", "online", "online"))
    await hub.submit(session, Gone("agent disconnected"))
    await settle(hub)
    changes, toasts = published(hub)[-1]
    assert nvr_id in changes.nvr_ids and len(changes.camera_ids) == 2
    assert toasts == [Toast("error", "nvr-1 offline", "agent disconnected")]
    assert nvr_id not in hub.sessions
    assert {c.display for c in await hub.store.cameras(nvr_id=nvr_id)} == {"nvr_offline"}


async def test_newer_connection_replaces_older_which_then_changes_nothing(hub: Hub) -> None:
    old, new = hub.new_session("a"), hub.new_session("b")
    nvr_id = await hub.hello(old, hello("nvr-1"))
    assert await hub.hello(new, hello("nvr-1")) == nvr_id
    frames = [old.outbox.get_nowait(), old.outbox.get_nowait()]
    assert json.loads(frames[0])["code"] == "replaced" and frames[1] == (4000, "replaced by a newer connection")
    await hub.submit(old, Gone("agent disconnected"))  # the old socket closing must not take the NVR offline
    await settle(hub)
    nvr = await hub.store.nvr(nvr_id)
    assert nvr is not None and nvr.status == "online" and hub.sessions[nvr_id] is new


async def test_messages_from_many_agents_commit_in_one_batch(hub: Hub) -> None:
    sessions = [hub.new_session(str(i)) for i in range(5)]
    for i, session in enumerate(sessions):
        await hub.hello(session, hello(f"nvr-{i}", "online"))
    count = len(published(hub))
    for session in sessions:
        hub._queue.put_nowait(Item(session, CameraStatus("cam1", "offline")))
    await settle(hub)
    assert len(published(hub)) == count + 1
    changes, toasts = published(hub)[-1]
    assert len(changes.camera_ids) == 5 and len(changes.nvr_ids) == 5
    assert len(toasts) == 5  # one per change; the publisher folds a burst (nvrmon/live/toasts.py)


async def test_silent_nvr_expires_offline_and_comes_back_on_next_frame(hub: Hub) -> None:
    session = hub.new_session("test")
    nvr_id = await hub.hello(session, hello("nvr-1"))
    sweeper = asyncio.create_task(hub.sweep())
    try:
        for _ in range(50):
            await asyncio.sleep(0.05)
            nvr = await hub.store.nvr(nvr_id)
            if nvr is not None and nvr.status == "offline":
                break
        assert nvr is not None and nvr.status == "offline" and nvr.status_reason.startswith("no heartbeat for")
        await hub.submit(session, Heartbeat())
        await settle(hub)
        nvr = await hub.store.nvr(nvr_id)
        assert nvr is not None and nvr.status == "online"
    finally:
        sweeper.cancel()


async def test_expired_for_replaced_session_is_ignored(hub: Hub) -> None:
    stale = AgentSession(conn_id=99, remote="x", nvr_id=12345, status="online")
    await hub.submit(stale, Expired())
    await settle(hub)
    assert published(hub) == []


async def test_cameras_message_replaces_list_and_alert_is_recorded(hub: Hub) -> None:
    session = hub.new_session("test")
    nvr_id = await hub.hello(session, hello("nvr-1", "online", "online"))
    await hub.submit(session, Cameras((CameraInfo("cam1", "Cam 1", "", "online"),)))
    await hub.submit(session, Alert("critical", "Disk failure", "cam1"))
    await settle(hub)
    # cam2 left the list: it stays, shown missing (docs/inventory.md), and is no longer in the hub's mirror.
    assert [(c.ext_id, c.display) for c in await hub.store.cameras(nvr_id=nvr_id)] == [("cam1", "online"),
                                                                                      ("cam2", "missing")]  # fmt: skip
    assert list(session.cameras) == ["cam1"]
    alert = (await hub.store.events(limit=1))[0]
    assert (alert.kind, alert.severity, alert.camera_id) == ("alert", "critical", session.cameras["cam1"].id)


def outbox(session: AgentSession) -> list[dict[str, object]]:
    frames = []
    while not session.outbox.empty():
        frame = session.outbox.get_nowait()
        if isinstance(frame, str):
            frames.append(json.loads(frame))
    return frames


async def alerts(store: Store, nvr_id: int) -> list[str]:
    return [e.message for e in reversed(await store.events(limit=100, nvr_id=nvr_id)) if e.kind == "alert"]


async def test_bad_frame_is_dropped_alone_and_acks_cover_only_what_committed(hub: Hub) -> None:
    session = hub.new_session("test")
    nvr_id = await hub.hello(session, Hello(NvrInfo("nvr-1"), (), session="run-1"))
    # One batch; the middle frame breaks the events table's CHECK (the parser would refuse it; the store must too).
    for seq, severity in ((1, "info"), (2, "bogus"), (3, "info")):
        hub._queue.put_nowait(Item(session, Alert(severity, f"frame {seq}", seq=seq)))  # type: ignore[arg-type]
    await settle(hub)
    assert await alerts(hub.store, nvr_id) == ["frame 1", "frame 3"]
    frames = outbox(session)
    assert [f.get("code") for f in frames if f["type"] == "error"] == ["invalid_message"]
    assert [f["seq"] for f in frames if f["type"] == "ack"] == [1, 3]
    nvr = await hub.store.nvr(nvr_id)
    assert nvr is not None and session.last_seq == 3 and not hub.health.degraded


@pytest.fixture
async def disk_hub(tmp_path: Path):  # type: ignore[no-untyped-def]
    with small_disk(tmp_path / "disk") as disk:
        settings = Settings(db_path=disk / "hub.db", heartbeat_timeout=1.0, stale_after=1.0)
        store = await Store.open(settings.db_path)
        hub = Hub(store, settings, Published())
        tasks = [asyncio.create_task(hub.run()), asyncio.create_task(hub.sweep())]
        yield hub, disk
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await store.close()


async def test_full_disk_rolls_back_the_mirror_holds_the_frame_and_recovers(disk_hub: tuple[Hub, Path]) -> None:
    hub, disk = disk_hub
    session = hub.new_session("test")
    nvr_id = await hub.hello(
        session, Hello(NvrInfo("nvr-1"), (CameraInfo("cam1", "Cam 1", "", "online"),), session="s")
    )
    outbox(session)
    fill(disk)
    await hub.submit(session, CameraStatus("cam1", "offline", seq=1))
    for _ in range(100):
        await asyncio.sleep(0.02)
        if hub.health.degraded:
            break
    assert hub.health.degraded and "full" in hub.health.last_error
    # The failed COMMIT left the hub's memory as the database has it: a retry applies the flip, not "no change".
    assert session.cameras["cam1"].status == "online" and session.last_seq == 0
    assert [f.get("code") for f in outbox(session)] == ["storage_unavailable"]  # told once, and no ack
    with pytest.raises(StorageUnavailable):
        await hub.hello(hub.new_session("new"), hello("nvr-2"))
    await asyncio.sleep(1.5)  # longer than heartbeat_timeout: the hub's outage must not take the NVR offline
    (disk / "filler").unlink()
    for _ in range(200):
        await asyncio.sleep(0.02)
        if not hub.health.degraded:
            break
    await settle(hub)
    assert not hub.health.degraded and [f for f in outbox(session) if f["type"] == "ack"] == [{"type": "ack", "seq": 1}]
    nvr = await hub.store.nvr(nvr_id)
    assert nvr is not None and nvr.status == "online" and nvr.cameras_online == 0
    assert [c.status for c in await hub.store.cameras(nvr_id=nvr_id)] == ["offline"]


def test_storage_failure_is_told_apart_from_a_frame_that_breaks_a_rule(tmp_path: Path) -> None:
    path = tmp_path / "plain.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (severity TEXT CHECK (severity IN ('info')))")
    errors: list[Exception] = []
    with sqlite3.connect(path) as db:
        try:
            db.execute("INSERT INTO t VALUES ('bogus')")
        except sqlite3.Error as exc:
            errors.append(exc)
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        try:
            db.execute("INSERT INTO t VALUES ('info')")
        except sqlite3.Error as exc:
            errors.append(exc)
    bad_item, read_only = errors
    assert isinstance(bad_item, sqlite3.IntegrityError) and not is_storage_failure(bad_item)
    assert "readonly" in str(read_only) and is_storage_failure(read_only)
    assert not is_storage_failure(KeyError("cam1"))  # a hub bug on one item: that item is dropped, not retried forever


def test_prune_interval_follows_the_retention() -> None:
    from nvrmon.ingest.liveness import prune_interval

    assert prune_interval(30 * 86400) == 3600  # the default: hourly
    assert prune_interval(600) == 60  # ten minutes of history: pruned every minute, not once an hour
    assert prune_interval(2) == 1.0
