"""Under uvicorn an idle SSE stream is written by the broadcaster straight to its transport, one framed chunk per view
shared by every subscriber, with no task of its own; revocation ends it cleanly without wrapping its sends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send

from nvrmon.live.broadcaster import Broadcaster, Subscriber
from nvrmon.live.streams import EventStream
from nvrmon.live.viewkey import View
from nvrmon.settings import Settings
from tests.asgi_server import serving
from tests.fake_views import AtHead

pytestmark = pytest.mark.anyio


class Rig:
    def __init__(self) -> None:
        self.broadcaster = Broadcaster(16)
        self.streams: list[EventStream] = []
        self.port = 0

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        stream = EventStream(AtHead(), self.broadcaster, Settings(), View("cameras"), None)  # type: ignore[arg-type]
        self.streams.append(stream)
        await stream(scope, receive, send)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    rig = Rig()
    async with serving(rig.app) as rig.port:
        yield rig


def subscribers(rig: Rig) -> set[Subscriber]:
    return {sub for subs in rig.broadcaster._views.values() for sub in subs}


async def open_stream(rig: Rig) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, Subscriber]:
    before = subscribers(rig)
    reader, writer = await asyncio.open_connection("127.0.0.1", rig.port)
    writer.write(b"GET /events?view=cameras HTTP/1.1\r\nHost: t\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert b" 200 " in head and b"transfer-encoding: chunked" in head.lower()
    assert (await read_chunk(reader)).startswith(b"event: ready\n")  # the first message, through uvicorn's send
    for _ in range(100):
        new = subscribers(rig) - before
        if new and all(sub.sink is not None for sub in new):  # idle: handed to the broadcaster
            return reader, writer, new.pop()
        await asyncio.sleep(0.01)
    raise AssertionError("the stream never went direct")


async def read_chunk(reader: asyncio.StreamReader) -> bytes:
    size = int((await asyncio.wait_for(reader.readuntil(b"\r\n"), 5))[:-2], 16)
    data = await reader.readexactly(size + 2)
    assert data.endswith(b"\r\n")
    return data[:-2]


async def test_idle_streams_are_written_directly_with_one_shared_chunk_and_no_task_of_their_own(rig: Rig) -> None:
    tasks_before = len(asyncio.all_tasks())
    (r1, w1, a), (r2, w2, b) = await open_stream(rig), await open_stream(rig)
    # Each stream is the request's own task (uvicorn's) and nothing else: no writer, no disconnect watcher.
    assert len(asyncio.all_tasks()) - tasks_before == 2
    assert a.sink is not None and b.sink is not None and a.sink is not b.sink
    written: list[bytes] = []
    for sub in (a, b):
        sink = sub.sink
        assert sink is not None
        original = sink.write

        def spy(data: bytes, original: Any = original) -> None:
            written.append(data)
            original(data)

        sub.sink = type("Spy", (), {"write": staticmethod(spy), "get_write_buffer_size": sink.get_write_buffer_size})()
    rig.broadcaster.publish(6, {"cameras": b"id: e-6\ndata: <tr id='camera-1'></tr>\n\n"})
    assert [await read_chunk(r1), await read_chunk(r2)] == [b"id: e-6\ndata: <tr id='camera-1'></tr>\n\n"] * 2
    assert len(written) == 2 and written[0] is written[1]  # framed once, the same object to both transports
    assert a.cursor == b.cursor == 6
    w1.close()
    w2.close()
    for _ in range(100):  # the connection's loss ends the stream: nothing waited on http.disconnect for it
        if rig.broadcaster.subscriber_count == 0:
            break
        await asyncio.sleep(0.01)
    assert rig.broadcaster.subscriber_count == 0


async def test_a_revoked_stream_ends_with_the_last_chunk(rig: Rig) -> None:
    reader, writer, sub = await open_stream(rig)
    rig.streams[-1].revoke()
    assert await asyncio.wait_for(reader.readexactly(5), 5) == b"0\r\n\r\n"  # the response's end
    assert sub.broken and rig.broadcaster.subscriber_count == 0
    writer.close()


async def test_a_stream_revoked_before_it_began_is_refused_as_gone(rig: Rig) -> None:
    stream = EventStream(AtHead(), rig.broadcaster, Settings(), View("cameras"), None)  # type: ignore[arg-type]
    stream.revoke()
    sent: list[Any] = []
    released: list[bool] = []
    stream.when_over(lambda: released.append(True))

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.disconnect"}

    await stream({"type": "http", "method": "GET"}, receive, send)
    assert sent[0]["status"] == 410 and released == [True] and rig.broadcaster.subscriber_count == 0
