"""WebSocket floods below the application (fragments, pings, pongs) are cut off and never stall other agents."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import statistics
import threading
import time
from collections.abc import Callable

import pytest

from tests.agent import Agent, hello
from tests.conftest import LiveHub

pytestmark = pytest.mark.anyio


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True) -> bytes:
    """One client frame (masked with a zero key, which leaves the payload as it is), payload under 126 bytes."""
    return bytes([(0x80 if fin else 0) | opcode, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


def raw_websocket(hub: LiveHub) -> socket.socket:
    """A WebSocket handshake over a plain socket, so the test can send frames no well-behaved client would."""
    sock = socket.create_connection(("127.0.0.1", hub.port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /ws/agent HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {hub.token}\r\n\r\n".encode()
    )
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 101"), answer[:200]
    return sock


FLOODS = {
    # 2 million one-byte continuation frames: 14 MB that would never become a message.
    "fragments": frame(0x1, b"{", fin=False) + frame(0x0, b"x", fin=False) * 2_000_000,
    "pings": frame(0x9) * 300_000,
    "pongs": frame(0xA, b"unsolicited") * 300_000,
}


def flood(sock: socket.socket, payload: bytes, done: dict[str, float]) -> None:
    started = time.monotonic()
    try:
        sock.sendall(payload)
        sock.settimeout(10)
        while sock.recv(65536):  # the hub's close frame, then EOF
            pass
    except OSError:
        pass
    done["closed_after"] = time.monotonic() - started


@pytest.mark.parametrize("kind", sorted(FLOODS))
async def test_ws_flood_is_closed_and_other_agents_keep_their_ack_latency(
    start_hub: Callable[..., LiveHub], kind: str
) -> None:
    hub = start_hub()
    agent = await Agent.connect(hub.ws_url, hub.token)
    welcome = await agent.request({**hello("steady-nvr", 2), "session": "run-1"})
    assert welcome["type"] == "welcome"

    sock = raw_websocket(hub)
    done: dict[str, float] = {}
    flooder = threading.Thread(target=flood, args=(sock, FLOODS[kind], done), daemon=True)
    flooder.start()
    latencies = []
    for seq in range(1, 41):
        sent = time.monotonic()
        await agent.send({"type": "heartbeat", "seq": seq})
        ack = await agent.recv(timeout=5)
        assert ack == {"type": "ack", "seq": seq}
        latencies.append(time.monotonic() - sent)
        await asyncio.sleep(0.02)
    flooder.join(15)
    sock.close()
    await agent.close()
    assert "closed_after" in done, "the flooding connection was never closed"
    assert done["closed_after"] < 5, done
    p90 = statistics.quantiles(latencies, n=10)[-1]
    assert p90 < 0.1, f"ack latency p90 {p90 * 1000:.0f} ms during a {kind} flood"
    assert max(latencies) < 0.5, f"ack latency max {max(latencies) * 1000:.0f} ms during a {kind} flood"
    print(f"{kind}: ack median {statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms")
    assert "closing WebSocket from 127.0.0.1" in hub.log()


async def test_ws_a_message_in_a_few_fragments_is_still_accepted(live_hub: LiveHub) -> None:
    """The budget is for floods: a hello split in three frames is a message like any other."""
    import json

    sock = raw_websocket(live_hub)
    text = json.dumps(hello("fragmented-nvr", 1)).encode()
    parts = [text[i : i + 100] for i in range(0, len(text), 100)]
    assert 2 < len(parts) < 64
    data = b"".join(
        frame(0x1 if i == 0 else 0x0, part, fin=i == len(parts) - 1) for i, part in enumerate(parts)
    )  # each part < 126 bytes
    sock.sendall(data)
    sock.settimeout(5)
    reply = sock.recv(4096)
    sock.close()
    assert b'"type": "welcome"' in reply or b'"type":"welcome"' in reply, reply[:200]
