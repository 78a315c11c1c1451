"""An SSE stream keeps none of its catch-up once sent, and a closed stream is freed without waiting for the GC."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

from nvrmon.live.broadcaster import Broadcaster
from nvrmon.live.streams import EventStream
from nvrmon.live.viewkey import View
from nvrmon.live.views import CatchUp
from nvrmon.models import Cursor
from nvrmon.settings import Settings
from tests.fake_views import AtHead


class Html(str):
    """A str that can be watched with a weak reference."""


class OneCatchUp(AtHead):
    """The part of Views a stream uses, answering one catch-up of a whole (large) window."""

    def __init__(self, html: Html) -> None:
        self.html: Html | None = html

    async def catch_up(self, view: View, cursor: Cursor | None) -> CatchUp:
        html, self.html = self.html, None
        assert html is not None
        return CatchUp(7, html, changed=True)


async def _open_stream() -> tuple[weakref.ref[Any], weakref.ref[Any], asyncio.Event, asyncio.Task[None], list[Any]]:
    html = Html("<tr>" + "x" * 300_000 + "</tr>")
    watched = weakref.ref(html)
    views = OneCatchUp(html)
    del html
    sent: list[Any] = []
    first_body = asyncio.Event()
    gone = asyncio.Event()

    async def send(message: Any) -> None:
        sent.append(message["type"])
        if message["type"] == "http.response.body":
            first_body.set()

    async def receive() -> Any:
        await gone.wait()
        return {"type": "http.disconnect"}

    stream = EventStream(views, Broadcaster(16), Settings(), View("cameras"), None)  # type: ignore[arg-type]
    task = asyncio.ensure_future(stream({"type": "http", "method": "GET"}, receive, send))
    await asyncio.wait_for(first_body.wait(), 5)
    await asyncio.sleep(0.01)
    writers = [t for t in asyncio.all_tasks() if t is not task and t is not asyncio.current_task()]
    assert len(writers) >= 1
    writer = next(t for t in writers if "_write" in repr(t.get_coro()))
    return watched, weakref.ref(writer), gone, task, sent


def test_stream_frees_its_catch_up_once_sent() -> None:
    async def main() -> bool:
        watched, _, gone, task, _ = await _open_stream()
        alive = watched() is not None  # the stream is open and idle here
        gone.set()
        await task
        return alive

    assert asyncio.run(main()) is False


def test_stream_closed_is_freed_without_a_full_collection() -> None:
    async def main() -> bool:
        gc.disable()
        try:
            _, writer, gone, task, _ = await _open_stream()
            gone.set()
            await task
            del task
            await asyncio.sleep(0)
            return writer() is not None
        finally:
            gc.enable()

    assert asyncio.run(main()) is False
