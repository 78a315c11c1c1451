"""Stage 6, delivery: one SSE stream per page (`GET /events`), resuming from a cursor, then live bytes."""

from __future__ import annotations

import json
import random
import time
from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from nvrmon.broadcaster import Broadcaster
from nvrmon.models import Cursor
from nvrmon.settings import Settings
from nvrmon.views import View, ViewError, Views


def _heartbeat() -> ServerSentEvent:
    # A named event, unlike sse-starlette's default ":" comment ping, reaches page JavaScript, so the client can tell a
    # silent stream (half-open TCP, a wedged fetch) from a quiet fleet.
    return ServerSentEvent(event="heartbeat", data=json.dumps({"t": round(time.time(), 3)}))


async def events(request: Request) -> Response:
    views: Views = request.state.views
    broadcaster: Broadcaster = request.state.broadcaster
    settings: Settings = request.state.settings
    try:
        view = View.parse(request.query_params.get("view"), request.query_params.get("id"))
    except ViewError as exc:
        return PlainTextResponse(str(exc), status_code=400)
    if not await views.exists(view):
        return PlainTextResponse("no such device", status_code=404)
    # Last-Event-ID (the browser's own position) wins over the cursor the page was rendered with.
    cursor = Cursor.parse(request.headers.get("last-event-id")) or Cursor.parse(request.query_params.get("since"))
    return EventSourceResponse(
        _stream(views, broadcaster, settings, view, cursor),
        ping=settings.sse_heartbeat,
        ping_message_factory=_heartbeat,
        send_timeout=settings.sse_send_timeout,
        headers={"Cache-Control": "no-store"},
    )


async def _stream(
    views: Views, broadcaster: Broadcaster, settings: Settings, view: View, cursor: Cursor | None
) -> AsyncIterator[bytes]:
    # Subscribe before reading the store: a change committed while we read is then either in the replay or queued
    # (or both; fragments are keyed replacements, so a duplicate is harmless).
    sub = broadcaster.subscribe(view.key)
    try:
        # Randomised retry spreads reconnects after a hub restart instead of bringing every browser back at once.
        retry = int(settings.sse_retry_ms * random.uniform(1.0, 2.0))
        yield f"retry: {retry}\n\n".encode()
        sub.cursor, data = await views.catch_up(view, cursor)
        if data:
            yield data
        while True:
            await sub.wait()
            if sub.lagged:
                # The queue overflowed and was dropped; converge from the store instead of from memory.
                sub.lagged = False
                sub.drain()
                sub.cursor, data = await views.catch_up(view, Cursor(views.store.epoch, sub.cursor))
                if data:
                    yield data
                continue
            chunks = []
            for seq, data in sub.drain():
                if seq > sub.cursor:
                    chunks.append(data)
                    sub.cursor = seq
            if chunks:
                yield b"".join(chunks)
    finally:
        broadcaster.unsubscribe(sub)
