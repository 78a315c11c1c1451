"""The listening socket against a real hub: slow request heads are cut off, one address can't hold every connection."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import httpx

from tests.conftest import LiveHub


def open_socket(hub: LiveHub) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", hub.port), timeout=5)
    sock.settimeout(5)
    return sock


def closed_by_server(sock: socket.socket, within: float) -> tuple[bool, bytes]:
    """True once the server closed the connection (EOF or reset) within `within` seconds, with what it sent."""
    sock.settimeout(within)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except TimeoutError:
        return False, received
    except ConnectionResetError:
        pass
    return True, received


def test_server_slow_request_heads_are_cut_off_at_the_deadline(start_hub: Callable[..., LiveHub]) -> None:
    hub = start_hub(REQUEST_HEAD_TIMEOUT="1")
    slow = [open_socket(hub) for _ in range(20)]
    started = time.monotonic()
    cut: list[float] = []
    for sock in slow:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    # One header line every 0.3 s keeps bytes flowing, as a slowloris does; the head never completes.
    while len(cut) < len(slow) and time.monotonic() - started < 5:
        for sock in slow:
            if sock.fileno() == -1:
                continue
            try:
                sock.sendall(b"X-Slow: 1\r\n")
            except OSError:
                cut.append(time.monotonic() - started)
                sock.close()
        # A normal request meanwhile is served at once.
        assert httpx.get(f"{hub.url}/healthz", timeout=2).status_code == 200
        time.sleep(0.3)
    assert len(cut) == len(slow), f"only {len(cut)} of {len(slow)} slow connections were closed in 5 s"
    assert max(cut) < 3.0, cut


def test_server_slow_websocket_upgrade_is_cut_off(start_hub: Callable[..., LiveHub]) -> None:
    hub = start_hub(REQUEST_HEAD_TIMEOUT="1")
    sock = open_socket(hub)
    sock.sendall(b"GET /ws/agent HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
    closed, answer = closed_by_server(sock, within=3)
    sock.close()
    assert closed
    assert answer.startswith(b"HTTP/1.1 408")


def test_server_a_completed_head_is_not_cut(start_hub: Callable[..., LiveHub]) -> None:
    """The deadline covers the head only: a request held open after its head (long-poll) is not a slow head."""
    hub = start_hub(REQUEST_HEAD_TIMEOUT="1", POLL_TIMEOUT="2.5")
    health = hub.get("/healthz").json()
    cursor = f"{health['epoch']}-{health['seq']}"
    with httpx.Client(base_url=hub.url, headers=hub.headers) as client:
        started = time.monotonic()
        response = client.get("/poll", params={"view": "dashboard", "since": cursor}, timeout=10)
        held = time.monotonic() - started
        assert response.status_code == 200
        assert held >= 2.0, f"the poll was answered after {held:.2f} s, not held to its 2.5 s timeout"
        assert client.get("/healthz").status_code == 200  # the same keep-alive connection still serves


def test_server_caps_connections_per_address(start_hub: Callable[..., LiveHub]) -> None:
    hub = start_hub(MAX_CONNECTIONS_PER_ADDRESS="10", REQUEST_HEAD_TIMEOUT="30")
    held = [open_socket(hub) for _ in range(10)]
    time.sleep(0.2)
    extra = open_socket(hub)
    closed, answer = closed_by_server(extra, within=3)
    extra.close()
    assert closed
    assert answer.startswith(b"HTTP/1.1 429")
    for sock in held:
        sock.close()
    # Once they are gone the address is welcome again.
    deadline = time.monotonic() + 5
    while True:
        try:
            assert httpx.get(f"{hub.url}/healthz", timeout=2).status_code == 200
            break
        except (httpx.HTTPError, AssertionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
