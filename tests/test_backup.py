"""`nvrmon backup` under write load is the hub's state at its seq; `nvrmon restore` checks, keeps, and re-epochs."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import re
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from nvrmon.application import create_app
from nvrmon.settings import Settings
from nvrmon.store.backup import BackupError, HubLock
from tests.agent import Agent
from tests.conftest import LiveHub, run_cli
from tests.sse import open_stream

pytestmark = pytest.mark.anyio


def rows(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return [tuple(row) for row in db.execute(sql, params)]


def meta(path: Path, key: str) -> str:
    return str(rows(path, "SELECT value FROM meta WHERE key = ?", (key,))[0][0])


def backed_up_seq(output: str) -> int:
    match = re.search(r"at seq (\d+) to ", output)
    assert match is not None, output
    return int(match.group(1))


async def flip_cameras(agents: list[Agent], cameras: int, stop: asyncio.Event) -> int:
    """Agents change camera statuses as fast as the hub takes them, until `stop`; returns how many were sent."""
    states = {(i, c): "online" for i in range(len(agents)) for c in range(1, cameras + 1)}
    rng, sent = random.Random(12), 0
    while not stop.is_set():
        i, c = key = rng.choice(list(states))
        states[key] = "offline" if states[key] == "online" else "online"
        await agents[i].send({"type": "camera_status", "camera_id": f"cam{c}", "status": states[key]})
        sent += 1
        if sent % 20 == 0:
            await asyncio.sleep(0.005)
    return sent


def wait_until_quiet(hub: LiveHub) -> int:
    """The hub's seq once it stopped moving (everything the agents sent is committed)."""
    last, since = -1, time.monotonic()
    while time.monotonic() - since < 0.5:
        seq = int(hub.get("/healthz").json()["seq"])
        if seq != last:
            last, since = seq, time.monotonic()
        time.sleep(0.05)
    return last


def state_at(live: Path, seq: int) -> dict[int, str]:
    """Each camera's status as of `seq`, rebuilt from the live database's event log (every flip is an event stamped
    with its commit's seq; cameras registered online and never flipped by then are online)."""
    status = {
        camera_id: "online" for (camera_id,) in rows(live, "SELECT id FROM cameras WHERE updated_seq <= ?", (seq,))
    }
    flips = rows(
        live, "SELECT camera_id, message FROM events WHERE camera_id IS NOT NULL AND seq <= ? ORDER BY id", (seq,)
    )
    for camera_id, message in flips:
        status[camera_id] = message.rsplit(" ", 1)[1]
    return status


CAMERA_ROW = "SELECT id, nvr_id, ext_id, name, status, status_changed, removed, updated_seq FROM cameras ORDER BY id"
EVENT_ROW = "SELECT id, seq, ts, kind, severity, nvr_id, camera_id, message FROM events"


async def test_backup_under_write_load_is_the_hubs_state_at_its_seq(start_hub: Callable[..., LiveHub]) -> None:
    hub = start_hub()
    agents = [(await Agent.register(hub.ws_url, hub.token, f"nvr-load-{i}", cameras=8))[0] for i in range(4)]
    idle, _ = await Agent.register(hub.ws_url, hub.token, "nvr-idle", cameras=3)  # its rows stay as registered
    target = hub.db_path.with_name("backup.db")
    stop = asyncio.Event()
    load = asyncio.create_task(flip_cameras(agents, 8, stop))
    await asyncio.sleep(0.3)  # the load is running when the backup starts
    taken = await asyncio.to_thread(run_cli, hub.db_path, "backup", str(target))
    await asyncio.sleep(0.2)
    stop.set()
    assert await load > 100
    assert taken.returncode == 0, taken.stderr
    seq = backed_up_seq(taken.stdout)
    live = hub.db_path
    # The hub's state, read from its file while it runs (WAL), once everything sent is committed.
    final = await asyncio.to_thread(wait_until_quiet, hub)
    live_events = rows(live, f"{EVENT_ROW} WHERE seq <= ? ORDER BY id", (seq,))
    history = state_at(live, seq)
    untouched = [row for row in rows(live, CAMERA_ROW) if row[-1] <= seq]

    # The copy is whole, and it is exactly one commit: nothing in it is newer than the seq it claims ...
    assert rows(target, "PRAGMA integrity_check") == [("ok",)]
    assert int(meta(target, "seq")) == seq and meta(target, "epoch") == meta(live, "epoch")
    assert rows(target, "SELECT max(updated_seq) FROM cameras")[0][0] <= seq
    assert rows(target, "SELECT coalesce(max(seq), 0) FROM events")[0][0] <= seq
    # ... the load went on past it (else this proves nothing) ...
    assert final > seq and rows(live, "SELECT count(*) FROM events WHERE seq > ?", (seq,))[0][0] > 0
    # ... its event log is the hub's up to that seq, every camera shows what the hub's history says it showed then,
    # and the rows the hub did not touch after that seq are identical.
    assert rows(target, f"{EVENT_ROW} ORDER BY id") == live_events
    assert dict(rows(target, "SELECT id, status FROM cameras")) == history
    assert len(untouched) >= 3 and set(untouched) <= set(rows(target, CAMERA_ROW))

    for agent in [*agents, idle]:
        await agent.close()
    hub.stop()
    replaced = int(meta(live, "seq"))
    restored = run_cli(live, "restore", str(target))
    assert restored.returncode == 0, restored.stderr
    assert rows(live, "PRAGMA integrity_check") == [("ok",)]
    assert rows(live, CAMERA_ROW) == rows(target, CAMERA_ROW) and int(meta(live, "seq")) == seq
    assert meta(live, "epoch") != meta(target, "epoch")
    kept = list(live.parent.glob(f"{live.name}.before-restore-*"))
    assert len(kept) == 1 and int(meta(kept[0], "seq")) == replaced  # the replaced database, its WAL folded in


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_restore_refuses_while_the_hub_runs_and_refuses_a_damaged_copy(
    start_hub: Callable[..., LiveHub],
) -> None:
    hub = start_hub()
    agent, _ = await Agent.register(hub.ws_url, hub.token, "nvr-keep", cameras=2)
    target = hub.db_path.with_name("backup.db")
    assert run_cli(hub.db_path, "backup", str(target)).returncode == 0
    again = run_cli(hub.db_path, "backup", str(target))
    assert again.returncode == 1 and "exists; pass --force to replace it" in again.stderr
    assert run_cli(hub.db_path, "backup", str(target), "--force").returncode == 0

    refused = run_cli(hub.db_path, "restore", str(target))
    assert refused.returncode == 1
    assert hub.process is not None and f"a hub is running on {hub.db_path} (pid {hub.process.pid})" in refused.stderr
    await agent.close()
    hub.stop()

    before = digest(hub.db_path)
    damaged = target.with_name("damaged.db")
    data = bytearray(target.read_bytes())
    page = 4096
    data[2 * page : 3 * page] = bytes(range(256)) * (page // 256)  # a b-tree page overwritten with noise
    damaged.write_bytes(bytes(data))
    broken = run_cli(hub.db_path, "restore", str(damaged))
    assert broken.returncode == 1 and f"{damaged} fails PRAGMA integrity_check" in broken.stderr, broken.stderr
    assert digest(hub.db_path) == before and not list(hub.db_path.parent.glob("*.before-restore-*"))


async def test_restored_older_copy_makes_open_pages_refresh(start_hub: Callable[..., LiveHub]) -> None:
    hub = start_hub()
    agent, nvr_id = await Agent.register(hub.ws_url, hub.token, "nvr-history", cameras=4)
    target = hub.db_path.with_name("older.db")
    assert run_cli(hub.db_path, "backup", str(target)).returncode == 0

    async def flip(n: int, until_past: int = 0) -> int:
        """Change cameras one commit at a time, n times and until the hub's seq is past `until_past`."""
        status = "offline"
        for i in range(1000):
            health = hub.get("/healthz").json()
            if i >= n and health["seq"] > until_past:
                return int(health["seq"])
            await agent.send({"type": "camera_status", "camera_id": f"cam{i % 4 + 1}", "status": status})
            status = "online" if status == "offline" and i % 4 == 3 else status
            await asyncio.sleep(0.05)
        raise AssertionError("the hub's seq did not move")

    await flip(4)  # after the backup: this history is not in the copy
    health = hub.get("/healthz").json()
    page_cursor = f"{health['epoch']}-{health['seq']}"  # where an open page stood when the hub stopped
    await agent.close()
    hub.stop()
    assert run_cli(hub.db_path, "restore", str(target)).returncode == 0

    hub = start_hub()
    agent, _ = await Agent.register(hub.ws_url, hub.token, "nvr-history", cameras=4)
    # The restored history moves past the page's seq, so its cursor would look replayable under the old epoch.
    await flip(1, until_past=int(page_cursor.rsplit("-", 1)[1]))
    async with open_stream(hub, "view=cameras", last_event_id=page_cursor) as stream:
        msg = await stream.next(timeout=5)
    assert 'id="camera-rows"' in msg.data and 'hx-swap-oob="true"' in msg.data  # the whole list, not a replay
    assert msg.id is not None and not msg.id.startswith(page_cursor.rsplit("-", 1)[0] + "-")
    assert f'id="nvr-{nvr_id}' in msg.data or "nvr-history" in msg.data
    await agent.close()


async def test_restore_after_a_killed_hub_and_no_hub_start_during_a_restore(
    start_hub: Callable[..., LiveHub], tmp_path: Path
) -> None:
    hub = start_hub()
    target = tmp_path / "copy.db"
    assert run_cli(hub.db_path, "backup", str(target)).returncode == 0
    hub.stop(signal.SIGKILL)  # no shutdown at all: the kernel still drops the hub's lock
    restored = run_cli(hub.db_path, "restore", str(target))
    assert restored.returncode == 0, restored.stderr

    lock = HubLock.exclusive(hub.db_path)  # what a restore holds while it replaces the file
    try:
        refused = pytest.raises(BackupError, match=r"is being restored \(`nvrmon restore`\); start the hub when it")
        with refused, TestClient(create_app(Settings(db_path=hub.db_path, agent_token="t"))):
            pass
    finally:
        lock.release()
    with TestClient(create_app(Settings(db_path=hub.db_path, agent_token="t"))) as client:
        assert client.get("/healthz").status_code == 200


def test_restore_that_fails_at_the_last_step_leaves_the_database_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from nvrmon.store import backup as backups

    db_path, copy_path = tmp_path / "hub.db", tmp_path / "copy.db"
    asyncio.run(_make(db_path))
    backups.backup(db_path, copy_path)
    epoch = "SELECT value FROM meta WHERE key = 'epoch'"
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        before = db.execute(epoch).fetchone()

    real_replace = os.replace

    def failing_replace(src: Any, dst: Any) -> None:
        if Path(dst) == db_path:  # the copy going into place fails (a crash there is the same moment)
            raise OSError("disk gone")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        backups.restore(copy_path, db_path)
    assert not list(tmp_path.glob("hub.db.before-restore-*"))  # no stray kept copy
    with contextlib.closing(sqlite3.connect(db_path)) as db:  # the database is still there, the same one
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute(epoch).fetchone() == before


async def _make(path: Path) -> None:
    from nvrmon.store.database import Database

    await (await Database.open(path)).close()
