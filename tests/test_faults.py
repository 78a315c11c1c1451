"""Fault injection against real hub processes: half-open agents, flapping, kill -9, restarts, slow browsers."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import time
from collections.abc import Callable

import asyncpg
import pytest
import websockets

from nvrmon.agent.simulator import Fleet
from tests.agent import Agent, hello
from tests.conftest import LiveHub, run_async
from tests.sse import open_stream

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", "postgresql"], autouse=True)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The same lossless fault tests on both backends: start_hub puts the hubs on a fresh PostgreSQL database."""
    if request.param == "postgresql":
        monkeypatch.setenv("NVRMON_TEST_BACKEND", "postgresql")
    return str(request.param)


def stored_alerts(hub: LiveHub) -> list[str]:
    """The alert messages the hub's database holds, read from the database itself (SQLite file or PostgreSQL)."""
    sql = "SELECT message FROM events WHERE message LIKE 'm%'"
    if isinstance(hub.database, str):

        async def read() -> list[str]:
            conn = await asyncpg.connect(str(hub.database), timeout=5)
            try:
                return [str(row[0]) for row in await conn.fetch(sql)]
            finally:
                await conn.close()

        return run_async(read())
    with sqlite3.connect(hub.database) as db:
        return [row[0] for row in db.execute(sql)]


def nvr(hub: LiveHub, nvr_id: int) -> dict[str, object]:
    return dict(hub.get(f"/api/nvrs/{nvr_id}").json())


def events(hub: LiveHub, limit: int = 500) -> list[dict[str, object]]:
    return list(hub.get(f"/api/events?limit={limit}").json()["events"])


def up(summary: dict[str, int]) -> int:
    """NVRs connected and reporting: online, or online with a health problem (the simulator sends some)."""
    return summary["nvrs_online"] + summary["nvrs_degraded"]


async def wait_for(check: Callable[[], bool], timeout: float, step: float = 0.05) -> float:
    """Poll `check` until true; returns the seconds it took, fails after `timeout`."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(step)
    return time.monotonic() - started


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def test_half_open_agent_goes_stale_then_offline_on_time(start_hub: Callable[..., LiveHub]) -> None:
    hub = start_hub(STALE_AFTER="0.6", HEARTBEAT_TIMEOUT="1.5")
    # The hub's clock starts when it hears the hello: after `sent`, before the welcome is back (`registered`; on
    # PostgreSQL the hello's commit lies in between). Lower bounds count from the first, upper from the second.
    sent = time.monotonic()
    agent, nvr_id = await Agent.register(hub.ws_url, hub.token, "nvr-half-open", cameras=1)
    registered = time.monotonic()
    # The agent now says nothing, and its socket stays open.
    await wait_for(lambda: nvr(hub, nvr_id)["status"] == "stale", timeout=3)
    stale = (time.monotonic() - sent, time.monotonic() - registered)
    await wait_for(lambda: nvr(hub, nvr_id)["status"] == "offline", timeout=4)
    offline = (time.monotonic() - sent, time.monotonic() - registered)
    assert stale[0] >= 0.6 and stale[1] < 1.5 and offline[0] >= 1.5 and offline[1] < 2.8, (stale, offline)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await agent.recv(timeout=3)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001
    print(
        f"\nhalf-open agent: stale after {stale[1]:.2f} s (grace 0.6), offline after {offline[1]:.2f} s (timeout 1.5)"
    )


async def test_heartbeats_within_grace_never_flap(start_hub: Callable[..., LiveHub]) -> None:
    hub = start_hub(STALE_AFTER="1.2", HEARTBEAT_TIMEOUT="3")
    agent, nvr_id = await Agent.register(hub.ws_url, hub.token, "nvr-steady", cameras=1)
    before = len(events(hub))
    for _ in range(8):
        await asyncio.sleep(0.3)
        await agent.send({"type": "heartbeat"})
        assert nvr(hub, nvr_id)["status"] == "online"
    assert len(events(hub)) == before
    await agent.close()


async def test_a_late_heartbeat_goes_stale_and_back_without_an_event(start_hub: Callable[..., LiveHub]) -> None:
    hub = start_hub(STALE_AFTER="0.4", HEARTBEAT_TIMEOUT="5")
    agent, nvr_id = await Agent.register(hub.ws_url, hub.token, "nvr-late", cameras=1)
    before = len(events(hub))
    await wait_for(lambda: nvr(hub, nvr_id)["status"] == "stale", timeout=3)
    await agent.send({"type": "heartbeat"})
    await wait_for(lambda: nvr(hub, nvr_id)["status"] == "online", timeout=2)
    assert len(events(hub)) == before  # a missed heartbeat is not an outage
    await agent.close()


async def test_flapping_nvr_is_marked_unstable_with_one_notification(start_hub: Callable[..., LiveHub]) -> None:
    hub = start_hub(FLAP_THRESHOLD="4", FLAP_WINDOW="60")
    agent, nvr_id = await Agent.register(hub.ws_url, hub.token, "nvr-flappy", cameras=1)
    for _ in range(5):  # 10 transitions: offline, online, …
        await agent.close()
        await wait_for(lambda: nvr(hub, nvr_id)["status"] == "offline", timeout=3)
        agent, _ = await Agent.register(hub.ws_url, hub.token, "nvr-flappy", cameras=1)
    data = nvr(hub, nvr_id)
    assert data["unstable"] is True and data["status"] == "online"
    texts = [str(e["message"]) for e in events(hub) if e["nvr_id"] == nvr_id]
    assert sum("unstable" in t for t in texts) == 1
    transitions = [t for t in texts if t.startswith("NVR nvr-flappy is o")]
    assert len(transitions) == 3  # the changes before it crossed the threshold; none after
    await agent.close()


async def test_kill_9_loses_no_acknowledged_frame(start_hub: Callable[..., LiveHub]) -> None:
    live_hub = start_hub(AGENT_RATE="1e6", AGENT_BURST="1000000")  # a deliberate flood: no per-agent rate limit here
    agent = await Agent.connect(live_hub.ws_url, live_hub.token)
    await agent.request({**hello("nvr-durable", 1), "session": "run-a"})
    acked = 0

    async def send_all() -> None:
        for seq in range(1, 2001):
            await agent.send({"type": "alert", "severity": "info", "message": f"m{seq}", "seq": seq})

    async def read_acks() -> None:
        nonlocal acked
        while True:
            frame = await agent.recv()
            acked = max(acked, int(frame["seq"]))

    sender, reader = asyncio.create_task(send_all()), asyncio.create_task(read_acks())
    await wait_for(lambda: acked >= 300, timeout=10, step=0.001)
    assert live_hub.process is not None
    os.kill(live_hub.process.pid, signal.SIGKILL)
    for task in (sender, reader):
        task.cancel()
    await asyncio.gather(sender, reader, return_exceptions=True)
    live_hub.process.wait(5)
    live_hub.process = None
    live_hub.start()
    # Read from the database itself: under load acks lag commits, so more than /api/events' 500 may be stored.
    stored = stored_alerts(live_hub)
    numbers = {int(m[1:]) for m in stored}
    assert set(range(1, acked + 1)) <= numbers, (
        f"acked {acked}, missing {sorted(set(range(1, acked + 1)) - numbers)[:5]}"
    )
    assert len(stored) == len(numbers)  # and none twice
    again = await Agent.connect(live_hub.ws_url, live_hub.token)
    welcome = await again.request({**hello("nvr-durable", 1), "session": "run-a"})
    assert welcome["last_seq"] >= acked  # the agent will replay only what was never committed
    print(f"\nkill -9: {acked} frames acknowledged before the kill, hub had committed {welcome['last_seq']}")
    await again.close()


# The simulated agents reconnect while the hub is killed: a socket of a connection attempt that died mid-handshake can
# be collected unclosed in this (the agents') process. Noted as a simulator leak; the hub's behaviour is asserted.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_restart_with_200_agents_converges_without_alert_storm(start_hub: Callable[..., LiveHub]) -> None:
    hub = start_hub(STARTUP_GRACE="20")
    fleet = Fleet(hub.ws_url, hub.token, nvrs=200, cameras=2, rate=0, seed=3)
    for agent in fleet.agents:  # liveness only: first health reports would bring degraded events of their own
        agent.profile = None
    runner = asyncio.create_task(fleet.run())
    try:
        summary = lambda: hub.get("/api/summary").json()  # noqa: E731
        await wait_for(lambda: up(summary()) == 200, timeout=30, step=0.2)
        last_event = int(events(hub, 1)[0]["id"])
        assert hub.process is not None
        os.kill(hub.process.pid, signal.SIGKILL)
        hub.process.wait(5)
        hub.process = None
        restarted = time.monotonic()
        hub.start()
        first = summary()
        assert first["nvrs_unknown"] + up(first) == 200 and first["nvrs_offline"] == 0
        took = await wait_for(lambda: up(summary()) == 200, timeout=40, step=0.2)
        new_events = [e for e in events(hub) if int(e["id"]) > last_event]
        assert new_events == [], [e["message"] for e in new_events]  # 200 agents came back: nothing to alert about
        print(
            f"\nrestart with 200 agents: all online {time.monotonic() - restarted:.1f} s after restart ({took:.1f} s)"
        )
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def test_nvrs_missing_after_restart_grace_go_offline_with_one_event(start_hub: Callable[..., LiveHub]) -> None:
    hub = start_hub(STARTUP_GRACE="1")
    agents = [await Agent.register(hub.ws_url, hub.token, f"nvr-gone-{i}", cameras=1) for i in range(3)]
    hub.stop()
    for agent, _ in agents:
        await agent.close()
    hub.start()
    await wait_for(lambda: hub.get("/api/summary").json()["nvrs_offline"] == 3, timeout=5)
    texts = [str(e["message"]) for e in events(hub)]
    assert texts[0].startswith("3 NVRs did not reconnect") and not any("is offline" in t for t in texts)


async def test_slow_browser_is_dropped_without_memory_growth_and_others_keep_up(
    start_hub: Callable[..., LiveHub],
) -> None:
    hub = start_hub(SUBSCRIBER_QUEUE="16", SSE_SEND_TIMEOUT="2", AGENT_RATE="1e6", AGENT_BURST="1000000")
    agent, _ = await Agent.register(hub.ws_url, hub.token, "nvr-busy", cameras=200)
    # A browser that connects and then never reads: its socket buffers fill and the hub must let it go.
    slow = socket.create_connection(("127.0.0.1", hub.port))
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.sendall(f"GET /events?view=cameras HTTP/1.1\r\nHost: x\r\nCookie: {hub.headers['Cookie']}\r\n\r\n".encode())
    assert hub.process is not None
    try:
        async with open_stream(hub, "view=cameras&since=x-0") as fast:
            await fast.next()  # the full refresh
            baseline = rss_kb(hub.process.pid)
            latencies = []
            for round_ in range(30):
                status = "offline" if round_ % 2 == 0 else "online"
                sent = time.monotonic()
                for cam in range(1, 201):
                    await agent.send({"type": "camera_status", "camera_id": f"cam{cam}", "status": status})
                await fast.until(lambda m, s=status: m.data.count(f'data-status="{s}"') > 0, timeout=10)
                latencies.append(time.monotonic() - sent)
            grown = rss_kb(hub.process.pid) - baseline
        health = hub.get("/healthz").json()
        assert grown < 40_000, f"hub grew {grown} kB"
        assert health["subscribers"] <= 1  # the slow one was dropped
        latencies.sort()
        assert latencies[len(latencies) // 2] < 1.0
        median_ms = latencies[15] * 1000
        print(f"\nslow browser: hub RSS +{grown} kB; fast subscriber median {median_ms:.0f} ms per 200-row burst")
    finally:
        slow.close()
        await agent.close()


async def test_browser_away_during_500_changes_catches_up_exactly(live_hub: LiveHub) -> None:
    agent, nvr_id = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-away", cameras=50)
    cameras = {c["ext_id"]: c["id"] for c in nvr(live_hub, nvr_id)["cameras"]}  # type: ignore[attr-defined]
    async with open_stream(live_hub, "view=cameras&since=x-0") as stream:
        await stream.next()
        cursor = stream.last_id
    final: dict[str, str] = {}
    for i in range(500):
        ext = f"cam{i % 50 + 1}"
        final[ext] = "offline" if (i // 50) % 2 == 0 else "online"
        await agent.send({"type": "camera_status", "camera_id": ext, "status": final[ext]})
    await agent.send({"type": "heartbeat"})
    await asyncio.sleep(0.5)
    async with open_stream(live_hub, "view=cameras&since=x-0", last_event_id=cursor) as stream:
        replay = await stream.next()
    rows = [
        (m.split('"')[0], m.split('data-status="')[1].split('"')[0]) for m in replay.data.split('<tr id="camera-')[1:]
    ]
    assert len(rows) == 50  # one row per camera: a replay is state, not a log of 500 changes
    assert {f"{cameras[ext]}": status for ext, status in final.items()} == dict(rows)
    await agent.close()
