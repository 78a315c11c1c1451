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
QUERY = "view=cameras&since=x-0"
STREAMS = 60


def established(ports: set[int], server_port: int) -> set[int]:
    """Which of our client sockets (by local port) to `server_port` are still ESTABLISHED, per /proc/net/tcp. The
    remote port counts too: other processes on this machine may use the same local port towards another server."""
    found = set()
    with open("/proc/net/tcp") as table:
        for line in list(table)[1:]:
            local, remote, state = line.split()[1:4]
            port = int(local.split(":")[1], 16)
            if port in ports and int(remote.split(":")[1], 16) == server_port and state == ESTABLISHED:
                found.add(port)
    return found


def raw_stream(hub: LiveHub, query: str, cookie: str) -> tuple[socket.socket, bytes]:
    """Open /events with a session cookie; the socket (response head read, nothing more) and that head."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # tiny: the hub's buffers fill quickly
    sock.connect(("127.0.0.1", hub.port))
    sock.sendall(f"GET /events?{query} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n\r\n".encode())
    sock.settimeout(10)
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += sock.recv(1)
    return sock, head


def stuck_stream(hub: LiveHub, query: str) -> socket.socket:
    """An admin's stream that never reads past the response head."""
    sock, head = raw_stream(hub, query, hub.headers["Cookie"])
    assert head.startswith(b"HTTP/1.1 200 "), head
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
        MAX_STREAMS_PER_SESSION="1000",
    )  # fmt: skip
    assert hub.process is not None
    agent, _ = await Agent.register(hub.ws_url, hub.token, "nvr-stuck", cameras=200)
    await flip_all(agent, 200, 4)  # warm up: templates compiled, caches filled
    await asyncio.sleep(1)
    baseline = rss_kb(hub.process.pid)
    socks = [stuck_stream(hub, QUERY) for _ in range(STREAMS)]
    ports = {s.getsockname()[1] for s in socks}
    try:
        await flip_all(agent, 200, 4)
        peak = rss_kb(hub.process.pid)
        stopped = time.monotonic()  # no change from here on: only the hub's own clock can cut them off
        while open_ := established(ports, hub.port):
            if time.monotonic() - stopped > timeout + 6:
                first = next(s for s in socks if s.getsockname()[1] in open_)
                first.settimeout(1)
                raise AssertionError(f"{len(open_)} stuck streams still open, one got {first.recv(200)!r}")
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
    assert after - baseline < 6_000, (baseline, peak, after)


async def test_streams_are_capped_per_session_and_per_address_with_a_clear_429(
    start_hub: Callable[..., LiveHub],
) -> None:
    hub = start_hub(MAX_STREAMS_PER_SESSION="3", MAX_STREAMS_PER_ADDRESS="5")
    mine, other = hub.headers["Cookie"], hub.login(hub.username, hub.password)
    held = [raw_stream(hub, "view=nvrs", mine) for _ in range(3)]
    assert all(head.startswith(b"HTTP/1.1 200 ") for _, head in held)
    refused, head = raw_stream(hub, "view=nvrs", mine)
    assert head.startswith(b"HTTP/1.1 429 "), head
    refused.settimeout(5)
    assert b"too many open streams for this session (at most 3)" in refused.recv(500)
    # Another session from the same address may open streams, up to the address's cap.
    held += [raw_stream(hub, "view=dashboard", other) for _ in range(2)]
    assert all(head.startswith(b"HTTP/1.1 200 ") for _, head in held)
    over, head = raw_stream(hub, "view=dashboard", other)
    assert head.startswith(b"HTTP/1.1 429 "), head
    over.settimeout(5)
    assert b"too many open streams from this address (at most 5)" in over.recv(500)
    # A stream that ends gives its place back.
    held.pop(0)[0].close()
    deadline = time.monotonic() + 5
    while True:
        again, head = raw_stream(hub, "view=nvrs", mine)
        if head.startswith(b"HTTP/1.1 200 ") or time.monotonic() > deadline:
            break
        again.close()
        await asyncio.sleep(0.1)
    assert head.startswith(b"HTTP/1.1 200 "), head
    for sock in [again, refused, over, *(s for s, _ in held)]:
        sock.close()
    assert "Traceback" not in hub.log()
