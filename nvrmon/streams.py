"""Stage 6, delivery: one SSE stream per page (`GET /events`), or long-poll (`GET /poll`); both resume from a cursor."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator

import anyio
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from nvrmon.broadcaster import Broadcaster, encode
from nvrmon.models import Cursor
from nvrmon.renderer import Renderer
from nvrmon.settings import Settings
from nvrmon.views import View, ViewError, Views


def _heartbeat() -> ServerSentEvent:
    # A named event, unlike sse-starlette's default ":" comment ping, reaches page JavaScript, so the client can tell a
    # silent stream (half-open TCP, a wedged fetch) from a quiet fleet.
    return ServerSentEvent(event="heartbeat", data=json.dumps({"t": round(time.time(), 3)}))


async def _parse(request: Request) -> View | Response:
    views: Views = request.state.views
    try:
        view = View.parse(request.query_params.get("view"), request.query_params.get("id"))
    except ViewError as exc:
        return PlainTextResponse(str(exc), status_code=400)
    if not await views.exists(view):
        return PlainTextResponse("no such device", status_code=404)
    return view


async def events(request: Request) -> Response:
    view = await _parse(request)
    if isinstance(view, Response):
        return view
    settings: Settings = request.state.settings
    broadcaster: Broadcaster = request.state.broadcaster
    # Last-Event-ID (the browser's own position) wins over the cursor the page was rendered with.
    cursor = Cursor.parse(request.headers.get("last-event-id")) or Cursor.parse(request.query_params.get("since"))
    return EventSourceResponse(
        _stream(request.state.views, broadcaster, settings, view, cursor),
        ping=settings.sse_heartbeat,
        ping_message_factory=_heartbeat,
        send_timeout=settings.sse_send_timeout,
        headers={"Cache-Control": "no-store"},
        shutdown_event=request.state.shutdown,
        shutdown_grace_period=1.0,
    )


async def _stream(
    views: Views, broadcaster: Broadcaster, settings: Settings, view: View, cursor: Cursor | None
) -> AsyncIterator[bytes]:
    # Subscribe before reading the store: a change committed while we read is then either in the replay or queued
    # (or both; fragments are keyed replacements, so a duplicate is harmless).
    sub = broadcaster.subscribe(view.key)
    try:
        # Randomised retry spreads reconnects after a hub restart instead of bringing every browser back at once.
        # `ready` tells the page at once that events get through (a buffering proxy would hold it back).
        retry = int(settings.sse_retry_ms * random.uniform(1.0, 2.0))
        yield encode(json.dumps({"view": view.key}), event="ready", retry=retry)
        caught = await views.catch_up(view, cursor)
        sub.cursor = caught.head
        if caught.changed:
            yield encode(caught.html, id=str(views.cursor(caught.head)))
        while True:
            await sub.wait()
            if broadcaster.closing:
                # The hub is going down: come back in 1-5 s, spread out, and resume from the cursor.
                yield encode("{}", event="bye", retry=random.randint(1000, 5000))
                return
            if sub.lagged:
                # The queue overflowed and was dropped; converge from the store instead of from memory.
                sub.lagged = False
                sub.drain()
                caught = await views.catch_up(view, views.cursor(sub.cursor))
                sub.cursor = caught.head
                if caught.changed:
                    yield encode(caught.html, id=str(views.cursor(caught.head)))
                continue
            chunks = []
            for seq, data in sub.drain():
                if seq > sub.cursor:
                    chunks.append(data)
                    sub.cursor = seq
                elif seq == 0:  # statistics: no rows, no cursor
                    chunks.append(data)
            if chunks:
                yield b"".join(chunks)
    finally:
        broadcaster.unsubscribe(sub)


async def poll(request: Request) -> Response:
    """Long-poll fallback with the SSE contract: hold until the view changes (or poll_timeout), then the same
    fragments a replay would send, plus the next poller element carrying the new cursor."""
    view = await _parse(request)
    if isinstance(view, Response):
        return view
    views: Views = request.state.views
    broadcaster: Broadcaster = request.state.broadcaster
    settings: Settings = request.state.settings
    renderer: Renderer = request.state.renderer
    cursor = Cursor.parse(request.query_params.get("since"))
    sub = broadcaster.subscribe(view.key)
    try:
        caught = await views.catch_up(view, cursor)
        hold = request.query_params.get("wait") != "0"
        deadline = asyncio.get_running_loop().time() + settings.poll_timeout
        while hold and not caught.changed and not broadcaster.closing:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(sub.wait(), remaining)
            except TimeoutError:
                break
            sub.drain()  # a wake-up may carry only statistics: keep holding until rows change
            caught = await views.catch_up(view, views.cursor(caught.head))
    finally:
        broadcaster.unsubscribe(sub)
    seen = cursor.seq if cursor is not None and cursor.epoch == views.store.epoch else caught.head
    toasts = broadcaster.toasts_since(seen)
    poller = renderer.render(
        "fragments/poller.html",
        view=view,
        cursor=views.cursor(caught.head),
        toasts=json.dumps(toasts) if toasts else "",
        first=False,
    )
    return HTMLResponse(caught.html + poller, headers={"Cache-Control": "no-store"})


async def watch_shutdown(shutdown: anyio.Event, broadcaster: Broadcaster) -> None:
    """sse-starlette sets `shutdown` when the server begins to stop; wake every stream so it says goodbye."""
    await shutdown.wait()
    broadcaster.close_all()
