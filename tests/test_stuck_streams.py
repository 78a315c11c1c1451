"""Stuck and greedy SSE clients against a real hub: cut off, closed and forgotten, and capped per session/address."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

import pytest

from tests.agent import Agent
from tests.conftest import LiveHub
from tests.test_faults import rss_kb

pytestmark = pytest.mark.anyio

ESTABLISHED = "01"


def tcp_states(ports: set[int]) -> dict[int, str]:
    """The kernel's TCP state of this machine's sockets bound to `ports` (a socket it has forgotten is absent)."""
    states: dict[int, str] = {}
    with open("/proc/net/tcp") as table:
        for line in list(table)[1:]:
            local, state = line.split()[1], line.split()[3]
            port = int(local.split(":")[1], 16)
            if port in ports:
                states[port] = state
    return states


def stuck_stream(hub: LiveHub, query: str) -> socket.socket:
    """Open /events as the admin and never read: a tiny receive buffer, so the hub's buffers fill quickly."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", hub.port))
    sock.sendall(f"GET /events?{query} HTTP/1.1\r\nHost: x\r\nCookie: {hub.headers['Cookie']}\r\n\r\n".encode())
    return sock


def ended(sock: socket.socket) -> bool:
    """True when the hub ended the connection: everything left reads to EOF, or the connection was reset."""
    sock.settimeout(2)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


async def flip_all(agent: Agent, cameras: int, rounds: int) -> None:
    for round_ in range(rounds):
        status = "offline" if round_ % 2 == 0 else "online"
        for cam in range(1, cameras + 1):
            await agent.send({"type": "camera_status", "camera_id": f"cam{cam}", "status": status})
        await asyncio.sleep(0.15)


async def test_stuck_streams_are_cut_off_closed_and_freed_even_after_changes_stop(
    start_hub: Callable[..., LiveHub],
) -> None:
    timeout = 2.0
    hub = start_hub(
        SSE_SEND_TIMEOUT=str(timeout), SSE_HEARTBEAT="60", AGENT_RATE="1e6", AGENT_BURST="1000000",
        MAX_STREAMS_PER_SESSION="100",
    )  # fmt: skip
    assert hub.process is not None
    agent, _ = await Agent.register(hub.ws_url, hub.token, "nvr-stuck", cameras=200)
    await flip_all(agent, 200, 4)  # warm up: templates compiled, caches filled
    await asyncio.sleep(1)
    baseline = rss_kb(hub.process.pid)
    socks = [stuck_stream(hub, "view=cameras&since=x-0&per_page=200") for _ in range(60)]
    ports = {s.getsockname()[1] for s in socks}
    try:
        await flip_all(agent, 200, 12)
        peak = rss_kb(hub.process.pid)
        stopped = time.monotonic()  # no change from here on: only the hub's own clock can cut them off
        while any(state == ESTABLISHED for state in tcp_states(ports).values()):
            assert time.monotonic() - stopped < timeout + 6, f"still open: {tcp_states(ports)}"
            await asyncio.sleep(0.2)
        closed_after = time.monotonic() - stopped
        assert all(ended(s) for s in socks)
        await asyncio.sleep(1)
        after = rss_kb(hub.process.pid)
        health = hub.get("/healthz").json()
    finally:
        for sock in socks:
            sock.close()
        await agent.close()
    log = hub.log()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log[-3000:]
    assert health["subscribers"] == 0
    print(f"\nstuck streams: closed {closed_after:.1f} s after the last change; RSS {baseline} -> {peak} -> {after} kB")
    assert after - baseline < max(8_000, (peak - baseline) // 4), (baseline, peak, after)
