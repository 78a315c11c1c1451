"""Browser side of the soak: SSE subscribers over several views that reconnect with Last-Event-ID, and a long-poller.

One worker process (uvloop) holds every subscriber. Each is a raw asyncio Protocol that sends `GET /events?view=…`
like a browser, remembers the last `id:` it received, and on a churn tick (K per minute fleet-wide, a random
subscriber each time) drops its connection and reconnects at once with `Last-Event-ID`, as a browser does after a
network blip or a tab waking up. A connection the hub ends is reopened after 1 s. The long-poll client loops on
`GET /poll`, following the `data-poll-url` of each answer, as the page's poller element does.
"""

from __future__ import annotations

import asyncio
import html
import random
import re
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, cast

from benchutil import auth_headers

POLL_URL = re.compile(rb'data-poll-url="([^"]+)"')


@dataclass(frozen=True)
class ClientSpec:
    port: int
    paths: list[str]  # /events?... per view; subscriber i watches paths[i % len(paths)]
    subscribers: int
    reconnects_per_min: float
    poll_path: str  # "" for no long-poll client
    reconnect_delay: float = 1.0  # a browser's EventSource waits the stream's `retry:` (1 s) before reconnecting
    seed: int = 1


@dataclass
class Counters:
    connects: int = 0
    churned: int = 0
    dropped_by_hub: int = 0
    failed: int = 0
    refused: int = 0
    bytes: int = 0
    messages: int = 0
    polls: int = 0
    poll_errors: int = 0


class SoakSubscriber(asyncio.Protocol):
    def __init__(self, path: str, port: int, counters: Counters, delay: float) -> None:
        self.path, self.port, self.counters, self.delay = path, port, counters, delay
        self.transport: asyncio.Transport | None = None
        self.last_id = b""
        self.tail = b""  # the end of what was received, for an `id:` line split across reads
        self.in_body = False
        self.stopping = False
        self.churning = False

    def request(self) -> bytes:
        extra = "".join(f"{k}: {v}\r\n" for k, v in auth_headers().items())
        if self.last_id:
            extra += f"Last-Event-ID: {self.last_id.decode()}\r\n"
        return (f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n{extra}\r\n").encode()

    async def open(self) -> None:
        self.in_body = False
        self.tail = b""
        try:
            await asyncio.get_running_loop().create_connection(lambda: self, "127.0.0.1", self.port)
        except OSError:
            self.counters.failed += 1
            if not self.stopping:
                asyncio.get_running_loop().call_later(1.0, self._reopen)

    def _reopen(self) -> None:
        if not self.stopping and self.transport is None:
            asyncio.ensure_future(self.open())

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.counters.connects += 1
        self.transport.write(self.request())

    def data_received(self, data: bytes) -> None:
        c = self.counters
        c.bytes += len(data)
        c.messages += data.count(b"\n\n")
        if not self.in_body:
            if not data.startswith(b"HTTP/1.1 200"):
                c.refused += 1
                if self.transport is not None:
                    self.transport.close()
                return
            self.in_body = True
        region = self.tail + data
        at = region.rfind(b"\nid: ")
        if at >= 0:
            end = region.find(b"\n", at + 1)
            if end > 0:
                self.last_id = region[at + 5 : end].strip()
        self.tail = region[-256:]

    def churn(self) -> None:
        """Drop the connection and reconnect with Last-Event-ID after the reconnect delay."""
        if self.transport is not None and not self.churning:
            self.churning = True
            self.counters.churned += 1
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.stopping:
            return
        if self.churning:
            self.churning = False
            asyncio.get_running_loop().call_later(self.delay, self._reopen)
        else:
            self.counters.dropped_by_hub += 1
            asyncio.get_running_loop().call_later(1.0, self._reopen)

    def close(self) -> None:
        self.stopping = True
        if self.transport is not None:
            self.transport.close()


async def long_poll(port: int, path: str, counters: Counters, stop: asyncio.Event) -> None:
    """One long-poll client: GET /poll, then the poll URL the answer names, until told to stop."""
    cookie = "".join(f"{k}: {v}\r\n" for k, v in auth_headers().items())
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{cookie}\r\n".encode())
            reading = asyncio.ensure_future(reader.read(-1))
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait([reading, stopping], return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            writer.close()
            if not reading.done():
                reading.cancel()
                return
            answer = reading.result()
            counters.polls += 1
            found = POLL_URL.search(answer)
            if found is None or b" 200 " not in answer[:20]:
                counters.poll_errors += 1
                await asyncio.sleep(1.0)
            else:
                path = html.unescape(found.group(1).decode())
        except OSError:
            counters.poll_errors += 1
            await asyncio.sleep(1.0)


async def _churn(subs: list[SoakSubscriber], per_min: float, rnd: random.Random, stop: asyncio.Event) -> None:
    if per_min <= 0 or not subs:
        return
    interval = 60.0 / per_min
    at = time.monotonic()
    while not stop.is_set():
        at += interval
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        rnd.choice(subs).churn()


async def _recv(conn: Connection) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, conn.recv)


async def _worker(conn: Connection, spec: ClientSpec) -> None:
    counters = Counters()
    subs = [
        SoakSubscriber(spec.paths[i % len(spec.paths)], spec.port, counters, spec.reconnect_delay)
        for i in range(spec.subscribers)
    ]
    gate = asyncio.Semaphore(32)

    async def first(sub: SoakSubscriber) -> None:
        async with gate:
            await sub.open()

    await asyncio.gather(*(first(s) for s in subs))
    stop = asyncio.Event()
    rnd = random.Random(spec.seed)
    tasks = [asyncio.ensure_future(_churn(subs, spec.reconnects_per_min, rnd, stop))]
    if spec.poll_path:
        tasks.append(asyncio.ensure_future(long_poll(spec.port, spec.poll_path, counters, stop)))
    conn.send(("ready", vars(counters).copy()))
    while True:
        command, _ = await _recv(conn)
        if command == "stats":
            conn.send(("stats", {**vars(counters), "open": sum(s.transport is not None for s in subs)}))
        elif command == "stop":
            stop.set()
            for sub in subs:
                sub.close()
            await asyncio.wait(tasks, timeout=5)
            await asyncio.sleep(0.2)
            conn.send(("stopped", vars(counters).copy()))
            return


def clients_main(conn: Connection, spec: ClientSpec) -> None:
    """Entry point of the soak's browser process."""
    try:
        import uvloop

        uvloop.run(_worker(conn, spec))
    except ImportError:
        asyncio.run(_worker(conn, spec))
