"""The ceiling: the fastest plain-asyncio SSE fan-out of camera statuses we know how to write, for comparison.

    python3 bench/reference.py --port P --ws-port Q --token T

Agents speak the same protocol v1 frames to `ws://127.0.0.1:Q/ws/agent` (the `websockets` server); browsers GET
`http://127.0.0.1:P/events` from a raw asyncio Protocol server. Each camera_status that changes a camera becomes one
pre-encoded SSE message (same row markup as the hub's fragments/camera_row.html, wrapped in the same hx-upsert
template); the messages of one event-loop iteration are framed once as one HTTP chunk, and the very same bytes object
is written to every subscriber's transport (a change waits for nothing: the flush is scheduled with call_soon).
No database, no templating, no per-subscriber task or queue: a subscriber with over 256 KiB unsent is cut off.
It also answers `/healthz` and `/api/cameras` (db ids for the load generator), and sends a named heartbeat every 15 s.
A stream opened with `Last-Event-ID: ref-N` (or `?since=ref-N`) first gets the latest message of each camera changed
after N, rendered once per cursor and head (the reconnect-storm scenario).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import html
import json
import re
import signal
import time
from dataclasses import dataclass
from typing import Any, cast

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

# A subscriber this far behind is cut off (the hub's equivalent: 256 queued messages). Bounds memory at 5,000 subs.
WRITE_LIMIT = 256 * 1024
HEARTBEAT_S = 15.0
SSE_HEADERS = (
    b"HTTP/1.1 200 OK\r\n"
    b"content-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-store\r\n"
    b"x-accel-buffering: no\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
BADGES = {
    "online": '<span class="badge badge-online" data-status="online"><span aria-hidden="true">●</span> Online</span>',
    "offline": (
        '<span class="badge badge-offline" data-status="offline"><span aria-hidden="true">✕</span> Offline</span>'
    ),
}


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


@dataclass
class Camera:
    id: int
    nvr_id: int
    ext_id: str
    status: str
    # Everything in the row but the status, escaped once at hello.
    key: str
    name: str
    host: str
    region: str
    site: str
    ip: str


class Reference:
    def __init__(self, token: str) -> None:
        self.token = token
        self.subscribers: set[asyncio.Transport] = set()
        self.nvrs: dict[str, int] = {}
        self.cameras: dict[tuple[int, str], Camera] = {}
        self.agents = 0
        self.seq = 0
        self.dropped = 0
        self.pending: list[bytes] = []
        # Resuming: each camera's latest message and its seq; the catch-up for a cursor is rendered once per head.
        self.latest: dict[int, tuple[int, bytes]] = {}
        self.replays: dict[int, bytes] = {}

    # -- fan-out ----------------------------------------------------------------------------------------------------

    def broadcast(self, data: bytes) -> None:
        """Queue one SSE message; everything queued in the same event-loop iteration goes out as one write."""
        self.pending.append(data)
        if len(self.pending) == 1:
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        framed = chunk(b"".join(self.pending))
        self.pending.clear()
        for transport in list(self.subscribers):
            if transport.get_write_buffer_size() > WRITE_LIMIT:
                self.subscribers.discard(transport)
                self.dropped += 1
                transport.abort()
            else:
                transport.write(framed)

    def camera_changed(self, cam: Camera) -> None:
        self.seq += 1
        ts = time.time()
        iso = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ts))
        row = (
            f'<tr id="camera-{cam.id}" data-key="{cam.key}" data-status="{cam.status}">\n'
            f"  <td>{BADGES[cam.status]}</td>\n"
            f'  <td><a href="/cameras/{cam.id}" class="strong">{cam.name}</a>'
            f'<div class="muted small mono">{cam.ext_id}</div></td>\n'
            f'  <td><a href="/nvrs/{cam.nvr_id}">{cam.host}</a></td>\n'
            f'  <td>{cam.region}<div class="muted small">{cam.site}</div></td>\n'
            f'  <td class="mono">{cam.ip}</td>\n'
            f'  <td><time datetime="{iso}" data-relative>just now</time></td>\n'
            "</tr>"
        )
        lines = [
            f"id: ref-{self.seq}",
            'data: <template hx type="upsert" hx-target="#camera-rows" key="data-key" sort>',
        ]
        lines.extend(f"data: {line}" for line in row.split("\n"))
        lines.append("data: </template>")
        message = ("\n".join(lines) + "\n\n").encode()
        self.latest[cam.id] = (self.seq, message)
        self.replays.clear()
        self.broadcast(message)

    def catch_up(self, cursor: int) -> bytes:
        """What a stream resuming from `cursor` missed: each camera changed since, once (latest wins), framed."""
        if cursor >= self.seq:
            return b""
        found = self.replays.get(cursor)
        if found is None:
            missed = sorted((seq, message) for seq, message in self.latest.values() if seq > cursor)
            found = self.replays[cursor] = chunk(b"".join(message for _, message in missed)) if missed else b""
        return found

    async def heartbeats(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            self.broadcast(f'event: heartbeat\r\ndata: {{"t": {time.time():.3f}}}\r\n\r\n'.encode())

    # -- agents -----------------------------------------------------------------------------------------------------

    def hello(self, frame: dict[str, Any]) -> tuple[int, dict[str, Camera]]:
        nvr = frame["nvr"]
        host = str(nvr["hostname"])
        nvr_id = self.nvrs.setdefault(host, len(self.nvrs) + 1)
        esc = html.escape
        mine: dict[str, Camera] = {}
        for cam in frame.get("cameras", []):
            ext = str(cam["id"])
            known = self.cameras.get((nvr_id, ext))
            if known is None:
                known = Camera(
                    len(self.cameras) + 1, nvr_id, esc(ext), str(cam.get("status", "online")),
                    esc(f"{host}/{cam.get('name', ext)}"), esc(str(cam.get("name", ext))), esc(host),
                    esc(str(nvr.get("region", ""))), esc(str(nvr.get("site", ""))), esc(str(cam.get("ip_address", ""))),
                )  # fmt: skip
                self.cameras[(nvr_id, ext)] = known
            mine[ext] = known
        return nvr_id, mine

    async def agent(self, ws: ServerConnection) -> None:
        auth = ws.request.headers.get("Authorization", "") if ws.request else ""
        if not hmac.compare_digest(auth.encode(), f"Bearer {self.token}".encode()):
            await ws.close(1008, "missing or wrong agent token")
            return
        mine: dict[str, Camera] = {}
        self.agents += 1
        try:
            async for raw in ws:
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "camera_status":
                    cam = mine.get(frame["camera_id"])
                    status = frame["status"]
                    if cam is not None and cam.status != status and status in BADGES:
                        cam.status = status
                        self.camera_changed(cam)
                elif kind == "hello":
                    nvr_id, mine = self.hello(frame)
                    await ws.send(
                        json.dumps({"type": "welcome", "protocol": 1, "nvr_id": nvr_id, "heartbeat_interval": 10.0})
                    )
        except ConnectionClosed:
            pass
        finally:
            self.agents -= 1

    # -- HTTP -------------------------------------------------------------------------------------------------------

    def answer(self, path: str) -> tuple[bytes, bytes] | None:
        """Plain responses: (status line, JSON body); None for the event stream."""
        route = path.split("?", 1)[0]
        if route == "/events":
            return None
        if route == "/healthz":
            body = {"status": "ok", "seq": self.seq, "epoch": "ref", "agents": self.agents,
                    "subscribers": len(self.subscribers), "dropped": self.dropped}  # fmt: skip
            return b"200 OK", json.dumps(body).encode()
        if route == "/api/cameras":
            cams = [
                {"id": c.id, "nvr_id": c.nvr_id, "ext_id": c.ext_id, "status": c.status} for c in self.cameras.values()
            ]
            return b"200 OK", json.dumps({"cameras": cams, "count": len(cams)}).encode()
        return b"404 Not Found", b'{"error": "not found"}'


def cursor(head: bytes) -> int:
    """The stream's position: Last-Event-ID (`ref-N`) wins over ?since=ref-N; none (or a foreign one) is the head."""
    found = re.search(rb"(?im)^last-event-id:\s*ref-(\d+)", head) or re.search(rb"[?&]since=ref-(\d+)", head)
    return int(found.group(1)) if found else 1 << 62


class HttpProtocol(asyncio.Protocol):
    def __init__(self, ref: Reference) -> None:
        self.ref = ref
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.streaming = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have the same methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.streaming or self.transport is None:
            return
        self.buf += data
        if b"\r\n\r\n" not in self.buf:
            if len(self.buf) > 65536:
                self.transport.close()
            return
        request_line = self.buf.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split()
        path = parts[1] if len(parts) >= 2 else "/"
        response = self.ref.answer(path)
        if response is None:
            self.streaming = True
            self.transport.write(SSE_HEADERS + chunk(b"retry: 1000\n\n") + self.ref.catch_up(cursor(self.buf)))
            self.ref.subscribers.add(self.transport)
            return
        status, body = response
        self.transport.write(
            b"HTTP/1.1 %b\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%b"
            % (status, len(body), body)
        )
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.ref.subscribers.discard(self.transport)
        self.transport = None


async def main(port: int, ws_port: int, token: str) -> None:
    ref = Reference(token)
    loop = asyncio.get_running_loop()
    stop: asyncio.Future[None] = loop.create_future()

    def on_signal() -> None:
        if not stop.done():
            stop.set_result(None)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    server = await loop.create_server(lambda: HttpProtocol(ref), "127.0.0.1", port, backlog=4096)
    beats = asyncio.create_task(ref.heartbeats())
    async with serve(ref.agent, "127.0.0.1", ws_port, ping_interval=None, max_size=2**21, compression=None):
        await stop
    beats.cancel()
    server.close()
    for transport in list(ref.subscribers):
        transport.abort()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(server.wait_closed(), 2)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--port", type=int, required=True, help="HTTP/SSE port")
    parser.add_argument("--ws-port", type=int, required=True, help="agent WebSocket port")
    parser.add_argument("--token", required=True, help="agent bearer token")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(main(args.port, args.ws_port, args.token))
    except ImportError:
        asyncio.run(main(args.port, args.ws_port, args.token))


if __name__ == "__main__":
    cli()
