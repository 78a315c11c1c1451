"""A real hub whose database really refuses writes: a full filesystem (tmpfs) or a file size limit (RLIMIT_FSIZE).

The defect these guard against: with the disk full the hub logged the failure, dropped the work and still sent
`ack`s for frames it never stored; agents were not told, /healthz said ok, and a new agent's hello went unanswered.
"""

from __future__ import annotations

import asyncio
import resource
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from nvrmon.ingest.health import StorageHealth
from nvrmon.live.renderer import Renderer
from nvrmon.settings import Settings
from tests.agent import Agent, hello
from tests.conftest import LiveHub
from tests.disk import fill, small_disk

pytestmark = pytest.mark.anyio

SESSION = "run-disk-1"
BEFORE, TOTAL = 50, 120  # frames committed before the outage; frames sent in all


@dataclass
class Outage:
    """Breaks and repairs the hub's storage for real; `db_path` is where the hub keeps its database."""

    db_path: Path
    break_storage: Callable[[LiveHub], None]
    repair_storage: Callable[[LiveHub], None]
    notice: float = 0.0  # seconds the hub needs to see the failure (a lock: its busy_timeout)


@pytest.fixture(params=["full_disk", "file_size_limit", "locked_too_long"])
def outage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Outage]:
    if request.param == "full_disk":
        with small_disk(tmp_path / "disk") as disk:
            yield Outage(disk / "nvrmon.db", lambda hub: fill(disk), lambda hub: (disk / "filler").unlink())
        return

    if request.param == "locked_too_long":
        # Another process (here: this one) holds the database's write lock past the hub's busy_timeout, as a
        # backup tool or a stuck `nvrmon` command could: "database is locked".
        locker: list[sqlite3.Connection] = []

        def lock(hub: LiveHub) -> None:
            db = sqlite3.connect(hub.db_path, isolation_level=None, check_same_thread=False)
            db.execute("BEGIN IMMEDIATE")
            locker.append(db)

        def unlock(hub: LiveHub) -> None:
            locker.pop().close()

        yield Outage(tmp_path / "nvrmon.db", lock, unlock, notice=6.0)
        for db in locker:
            db.close()
        return

    def limit(hub: LiveHub) -> None:
        # The hub process may not grow any file past the write-ahead log's current end: its next commit fails with
        # a real EFBIG ("disk I/O error"), exactly as a quota or a full disk would fail it.
        assert hub.process is not None
        wal = Path(f"{hub.db_path}-wal").stat().st_size
        resource.prlimit(hub.process.pid, resource.RLIMIT_FSIZE, (wal, resource.RLIM_INFINITY))

    def unlimit(hub: LiveHub) -> None:
        assert hub.process is not None
        resource.prlimit(hub.process.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    yield Outage(tmp_path / "nvrmon.db", limit, unlimit)


def start_hub_on(outage: Outage, tmp_path: Path, **env: str) -> LiveHub:
    hub = LiveHub(outage.db_path, {f"NVRMON_{k}": v for k, v in env.items()})
    # The hub writes its log next to its database; keep it off the broken disk so every line it logs is kept.
    log = outage.db_path.with_suffix(f".{hub.port}.log")
    if log.parent != tmp_path:
        log.symlink_to(tmp_path / "hub.log")
    return hub.start()


def stored(db_path: Path, hostname: str) -> tuple[list[int], int]:
    """The numbers of the alert frames in the database, in commit order, and the agent seq stored with the NVR."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT e.message FROM events e JOIN nvrs n ON n.id = e.nvr_id "
            "WHERE n.hostname = ? AND e.kind = 'alert' ORDER BY e.id",
            (hostname,),
        ).fetchall()
        seq = db.execute("SELECT agent_seq FROM nvrs WHERE hostname = ?", (hostname,)).fetchone()
    return [int(message.removeprefix("frame ")) for (message,) in rows], int(seq[0]) if seq else 0


def alert(seq: int) -> dict[str, Any]:
    return {"type": "alert", "severity": "info", "message": f"frame {seq}", "seq": seq}


async def frames_until(agent: Agent, done: Callable[[dict[str, Any]], bool], timeout: float) -> list[dict[str, Any]]:
    """Every frame the hub sends until `done` accepts one; fails after `timeout` seconds."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while not seen or not done(seen[-1]):
            seen.append(await agent.recv(timeout=timeout))
    return seen


async def frames_for(agent: Agent, seconds: float) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(seconds):
            while True:
                seen.append(await agent.recv(timeout=seconds))
    except TimeoutError:
        return seen


def acks(frames: list[dict[str, Any]]) -> list[int]:
    return [int(f["seq"]) for f in frames if f["type"] == "ack"]


async def test_store_refusing_writes_pauses_acks_tells_agents_and_recovers_every_frame_once(
    outage: Outage, tmp_path: Path
) -> None:
    # A tiny ingest queue: during the outage it fills at once, and the hub must stop reading rather than drop frames.
    hub = start_hub_on(outage, tmp_path, INGEST_QUEUE="8")
    try:
        agent = await Agent.connect(hub.ws_url, hub.token)
        welcome = await agent.request({**hello("nvr-disk", 1), "session": SESSION})
        assert welcome["type"] == "welcome" and welcome["last_seq"] == 0
        for seq in range(1, BEFORE + 1):
            await agent.send(alert(seq))
        await frames_until(agent, lambda f: f.get("seq") == BEFORE, timeout=10)
        await asyncio.sleep(1.5)  # the sweeper's first prune and the login's writes are done: the hub is idle

        outage.break_storage(hub)
        for seq in range(BEFORE + 1, TOTAL + 1):
            await agent.send(alert(seq))
        during = await frames_for(agent, outage.notice + 3.0)
        acked = max([BEFORE, *acks(during)])
        # An ack means committed: exactly the acknowledged frames are in the database, and not all were.
        frames, agent_seq = stored(outage.db_path, "nvr-disk")
        assert frames == list(range(1, acked + 1)) and agent_seq == acked < TOTAL, (acked, agent_seq, frames[-3:])
        assert [f["code"] for f in during if f["type"] == "error"] == ["storage_unavailable"], during

        public = httpx.get(f"{hub.url}/healthz", timeout=5)
        assert (public.status_code, public.json()["status"]) == (503, "degraded")
        detail = hub.get("/healthz", timeout=5).json()
        assert detail["status"] == "degraded" and detail["storage"]["failures"] >= 1
        assert any(word in detail["storage"]["last_error"] for word in ("full", "I/O", "locked")), detail

        newcomer = await Agent.connect(hub.ws_url, hub.token)
        refusal = await newcomer.request(hello("nvr-new", 1))
        assert refusal["type"] == "error" and refusal["code"] == "storage_unavailable", refusal
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await newcomer.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013

        outage.repair_storage(hub)
        # No reconnect, no resend: the hub held the frames it had read and stores them by itself.
        after = await frames_until(agent, lambda f: f.get("seq") == TOTAL, timeout=15)
        assert acks(after) == sorted(acks(after)) and not [f for f in after if f["type"] == "error"], after
        frames, agent_seq = stored(outage.db_path, "nvr-disk")
        assert frames == list(range(1, TOTAL + 1)) and agent_seq == TOTAL  # every frame once, in order
        healthy = httpx.get(f"{hub.url}/healthz", timeout=5)
        assert (healthy.status_code, healthy.json()["status"]) == (200, "ok")
        await agent.close()
    finally:
        hub.stop()
    log = hub.log()
    assert log.count("storage refused a write") == 1 and log.count("storage accepts writes again") == 1, log[-3000:]
    assert "retrying item by item" not in log and "dropping work" not in log


async def test_reference_agent_keeps_its_frames_through_an_outage(outage: Outage, tmp_path: Path) -> None:
    from nvrmon.agent.simulator import SimCamera, SimNvr

    hub = start_hub_on(outage, tmp_path)
    try:
        sim = SimNvr(hub.ws_url, hub.token, "nvr-sim", "North", "North 1", [SimCamera("cam1", "Cam 1", "10.0.0.9")])
        runner = asyncio.create_task(sim.run())
        await asyncio.wait_for(sim.connected.wait(), 10)
        for n in range(1, 21):
            sim.send({"type": "alert", "severity": "info", "message": f"frame {n}"})
        await wait_until(lambda: sim.acked == 20, 10)
        await asyncio.sleep(1.5)
        outage.break_storage(hub)
        for n in range(21, 61):
            sim.send({"type": "alert", "severity": "info", "message": f"frame {n}"})
        await wait_until(lambda: sim.hub_degraded, outage.notice + 10)
        assert sim.acked < 60 and [seq for seq, _ in sim.unacked] == list(range(sim.acked + 1, 61))
        outage.repair_storage(hub)
        await wait_until(lambda: sim.acked == 60, 15)
        assert not sim.unacked and not sim.hub_degraded
        assert stored(outage.db_path, "nvr-sim") == (list(range(1, 61)), 60)
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    finally:
        hub.stop()


async def wait_until(check: Callable[[], bool], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.05)


def test_hub_health_banner_is_one_stable_element_shown_only_while_degraded() -> None:
    settings = Settings()
    renderer = Renderer(settings.templates_dir, settings.static_dir)
    health = StorageHealth()
    renderer.env.globals["hub_health"] = health
    ok = renderer.render("fragments/hub_health.html")
    assert ok.count('id="hub-health"') == 1 and " hidden" in ok and "cannot store" not in ok
    health.failed(sqlite3.OperationalError("database or disk is full"))
    degraded = renderer.render("fragments/hub_health.html")
    assert degraded.count('id="hub-health"') == 1 and " hidden" not in degraded and "cannot store" in degraded
    health.committed()
    assert renderer.render("fragments/hub_health.html") == ok
