"""Stage 6, delivery: one SSE stream per page (`GET /events`), or long-poll (`GET /poll`); both resume from a cursor."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import random
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl

from sse_starlette.sse import AppStatus
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.types import Message, Receive, Scope, Send

from nvrmon.access.headers import with_defaults
from nvrmon.live import sse
from nvrmon.live.backlog import Backlog
from nvrmon.live.broadcaster import Broadcaster, Subscriber
from nvrmon.live.renderer import Renderer
from nvrmon.live.response_head import start_stream, stream_cycle
from nvrmon.live.viewkey import View, ViewError
from nvrmon.live.views import CatchUp, Views
from nvrmon.models import Cursor
from nvrmon.settings import Settings


async def _parse(request: Request) -> View | Response:
    views: Views = request.state.views
    params = _query(request.scope["query_string"])
    try:
        view = View.parse(params.get("view"), params.get("id"))
    except ViewError as exc:
        return PlainTextResponse(str(exc), status_code=400)
    if not await views.exists(view):
        return PlainTextResponse("no such device", status_code=404)
    return view


async def events(request: Request) -> Response | EventStream:
    view = await _parse(request)
    if isinstance(view, Response):
        return view
    # Last-Event-ID (the browser's own position) wins over the cursor the page was rendered with.
    cursor = Cursor.parse(request.headers.get("last-event-id")) or Cursor.parse(
        _query(request.scope["query_string"]).get("since")
    )
    return EventStream(request.state.views, request.state.broadcaster, request.state.settings, view, cursor)


# The scope extensions under which nvrmon.server hands a connection's transport to the app (see Subscriber.cut_off
# and the direct writes), and a list of callbacks it calls when the connection is lost.
TRANSPORT = "nvrmon.transport"
LOST = "nvrmon.lost"


def _owner(scope: Scope) -> tuple[str, str]:
    """Whose stream this is, for the caps: the session (the guard's identity, none for an embed) and the client
    address (the browser's own behind a trusted proxy, as uvicorn's proxy headers handling sets it)."""
    identity = scope.get("state", {}).get("identity")
    client = scope.get("client")
    return (identity.session_hash if identity is not None else ""), (str(client[0]) if client else "")


async def _refuse(send: Send, text: str) -> None:
    await send({"type": "http.response.start", "status": 429, "headers": with_defaults([
        (b"content-type", b"text/plain; charset=utf-8"), (b"retry-after", b"30"), (b"cache-control", b"no-store"),
    ], cacheable=False)})  # fmt: skip
    await send({"type": "http.response.body", "body": text.encode()})


class EventStream:
    """The SSE response: an ASGI app that writes pre-encoded bytes and nothing else.

    Per connection there is one writer task, woken when its subscriber has bytes, and the request task, which waits
    for the client to go away. Heartbeats, send timeouts and shutdown are handled for all streams at once by the
    broadcaster's housekeeping, so a delivery costs one wake-up and one `send`. (sse-starlette's response runs four
    tasks per connection and a cancel scope per send; it measured several times slower here, see bench/.)
    """

    HEADERS = [
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"cache-control", b"no-store"),
        # nginx: don't buffer the stream. No "Connection: keep-alive": it is forbidden in HTTP/2 (RFC 9113 8.2.2).
        (b"x-accel-buffering", b"no"),
        (b"x-content-type-options", b"nosniff"),
    ]
    OWN = frozenset(name for name, _ in HEADERS)

    def __init__(
        self,
        views: Views,
        broadcaster: Broadcaster,
        settings: Settings,
        view: View,
        cursor: Cursor | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.views, self.broadcaster, self.settings, self.view, self.cursor = views, broadcaster, settings, view, cursor
        # Extra response headers (an embed's CORS answer); the stream's own headers always win.
        own = self.OWN
        extra = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items() if k.lower().encode() not in own]
        # The security headers are the stream's own (computed here, once): the application hands a stream the
        # server's `send` unwrapped, so no header layer costs a call on every delivery (application.StreamFastPath).
        # A page's stream has no extra headers: every one of them shares one list (uvicorn only reads it).
        self.headers = with_defaults(self.HEADERS + extra, cacheable=False) if extra else _page_headers()
        self.revoked = False
        self._sub: Subscriber | None = None
        self._releases: list[Callable[[], object]] = []

    def revoke(self) -> None:
        """Its session or embed token was revoked or expired (the revocation watch calls this): end the stream now.
        Checked once at the start and then only here, never on a send."""
        self.revoked = True
        sub = self._sub
        if sub is not None:
            sub.end()
            if sub.task is not None:
                sub.task.cancel()  # a writer task of its own (no server transport): it may be waiting in a send

    def when_over(self, release: Callable[[], object]) -> None:
        """Run `release` once the stream is over, however it ended (or if it never ran)."""
        self._releases.append(release)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._serve(scope, receive, send)
        finally:
            releases, self._releases = self._releases, []
            for release in releases:
                release()

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        start: Message = {"type": "http.response.start", "status": 200, "headers": self.headers}
        if scope.get("method") == "HEAD":  # a HEAD must not open an endless stream
            await send(start)
            await send({"type": "http.response.body", "body": b""})
            return
        if self.revoked:  # its right ended before the stream began
            await send({"type": "http.response.start", "status": 410, "headers": [(b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        session, address = _owner(scope)
        refusal = self.broadcaster.caps.admit(session, address)
        if refusal is not None:
            await _refuse(send, refusal)
            return
        sub = self._sub = self.broadcaster.subscribe(self.view.key)
        extensions = scope.get("extensions") or {}
        transport = extensions.get(TRANSPORT)
        lost: list[Callable[[], None]] | None = extensions.get(LOST)
        sub.backlog = Backlog(transport) if transport is not None else None
        try:
            if transport is not None and lost is not None:
                # uvicorn tells us when the connection goes (nvrmon.server): the request's own task writes, and
                # nothing else waits per stream; once idle, deliveries are written by the broadcaster directly.
                lost.append(sub.end)
                try:
                    await self._write(sub, start, send, transport)
                finally:
                    with contextlib.suppress(ValueError):
                        lost.remove(sub.end)
                return
            await self._write_in_task(sub, start, receive, send)
        finally:
            self._sub = None
            sub.end()
            self.broadcaster.unsubscribe(sub)
            self.broadcaster.caps.release(session, address)

    async def _write_in_task(self, sub: Subscriber, start: Message, receive: Receive, send: Send) -> None:
        """Any other server: a writer task, woken per message, and a watcher that ends it on disconnect."""
        writer = asyncio.create_task(self._write(sub, start, send, None))
        sub.task = writer

        async def until_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            writer.cancel()

        watcher = asyncio.create_task(until_disconnect())
        try:
            await asyncio.wait([writer])
        finally:
            watcher.cancel()
            writer.cancel()
            # The cancelled writer's exception holds its frame, which holds `sub`, which holds the writer: a cycle
            # only a full collection would free, with everything the frame held. Cut it now.
            sub.task = None
        if writer.cancelled():
            if self.revoked:
                with contextlib.suppress(Exception):  # the client may have gone meanwhile
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
        elif (error := writer.exception()) is not None:
            raise error

    async def _open(self, sub: Subscriber, start: Message, send: Send) -> None:
        """Headers, `ready` and the catch-up. A function of its own so that the catch-up (often a whole page window,
        hundreds of KB) is freed once sent instead of living in the writer's frame as long as the stream."""
        views, view, broadcaster = self.views, self.view, self.broadcaster
        cycle = stream_cycle(send)
        # Subscribed before reading the store: a change committed while we read is then either in the replay or
        # queued (or both; fragments are keyed replacements, so a duplicate is harmless).
        cursor = self.cursor
        settled = _settled(views, broadcaster, view, cursor)
        if cycle is None:
            await send(start)
        elif not settled:  # the headers now: the catch-up may take a while
            start_stream(cycle, self.headers, cache=self.headers is _page_headers())
        retry = int(self.settings.sse_retry_ms * random.uniform(1.0, 2.0))  # as sse.ready: spread out, 1-2x
        first = sse.encode(_ready_data(view.key), event="ready", retry=retry)
        if settled and cursor is not None:
            caught = CatchUp(cursor.seq, "", changed=False)
        else:
            caught = await views.catch_up(view, cursor)
        sub.cursor = caught.head
        banner = ""
        if view.kind != "embed" and (caught.changed or views.storage_degraded()):
            # The storage banner as it is now: its state may have changed while this page was away.
            banner = views.health_banner()
        if caught.html or banner:
            first += _encoded(caught, banner, str(views.cursor(caught.head)) if caught.changed else None)
        if sub.broken:
            return
        if cycle is not None and settled:
            # A stream opened at the head: headers and `ready` in one write, no await in between.
            start_stream(cycle, self.headers, first, cache=self.headers is _page_headers())
            if sub.backlog is not None:
                sub.backlog.sent += len(first)
            return
        await self._send(sub, send, first)

    async def _from_store(self, sub: Subscriber) -> bytes:
        """After an overflow: what the subscriber missed, from the store, as one SSE message (b"" if nothing)."""
        views = self.views
        caught = await views.catch_up(self.view, views.cursor(sub.cursor))
        sub.cursor = caught.head
        return sse.encode(caught.html, id=str(views.cursor(caught.head))) if caught.changed else b""

    async def _write(self, sub: Subscriber, start: Message, send: Send, transport: Any) -> None:
        broadcaster = self.broadcaster
        await self._open(sub, start, send)
        # Direct writes only where the bytes on the wire are known: uvicorn's own send (not a wrapper around it)
        # writing this very transport with chunked framing, the framing Subscriber.write reproduces.
        cycle = getattr(send, "__self__", None)
        direct = transport is not None and getattr(cycle, "transport", None) is transport
        sink = transport if direct and getattr(cycle, "chunked_encoding", None) is True else None
        loop = asyncio.get_running_loop()
        while not sub.broken:
            if broadcaster.closing:
                await self._send(sub, send, sse.bye())
                break
            if sub.lagged:
                # The queue overflowed (or the transport's buffer did) and was dropped; converge from the store.
                sub.lagged = False
                sub.drain()
                body = await self._from_store(sub)
            else:
                chunks = []
                for seq, data in sub.drain():
                    if seq > sub.cursor:
                        chunks.append(data)
                        sub.cursor = seq
                    elif seq == 0:  # statistics and heartbeats: no rows, no cursor
                        chunks.append(data)
                body = b"".join(chunks)
            if body:
                sub.sending_since = loop.time()
                await self._send(sub, send, body)
                sub.sending_since = 0.0
                continue
            # Nothing left for this task: let the broadcaster write to the client directly until something (an
            # overflow, shutdown, the connection's end) needs it again. The last body (a catch-up after an overflow
            # can be a whole window) must not stay alive in this frame while the stream idles.
            body = b""
            sub.sink = sink
            await sub.wait()
            sub.sink = None
        with contextlib.suppress(Exception):  # the client may be gone (uvicorn then ignores it)
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    @staticmethod
    async def _send(sub: Subscriber, send: Send, body: bytes) -> None:
        if sub.backlog is not None:
            sub.backlog.sent += len(body)  # what the client should take: how its progress is measured
        await send({"type": "http.response.body", "body": body, "more_body": True})


def _encoded(caught: CatchUp, banner: str, id: str | None) -> bytes:
    """sse.encode(caught.html + banner, id=id), once per shared catch-up (Views.catch_up hands browsers reconnecting
    together one CatchUp) and banner: kept in the catch-up itself, so it is freed with it."""
    key = (banner, id)
    data = caught.encoded.get(key)
    if data is None:
        data = sse.encode(caught.html + banner, id=id)
        if caught.html:  # (an empty catch-up's message is the banner alone: nothing worth keeping)
            caught.encoded[key] = data
    return data


def _query(raw: bytes) -> Mapping[str, str]:
    """A stream URL's parameters as Starlette's query_params has them (the last of a repeated name wins), parsed
    once per distinct URL: a wave of pages opening (or a restart's reconnects) sends the same one again and again.
    Only sane lengths are remembered: junk sent by anyone must not fill memory."""
    return _parsed_query(raw) if len(raw) <= 2048 else _parse_query(raw)


def _parse_query(raw: bytes) -> Mapping[str, str]:
    return MappingProxyType(dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True)))


_parsed_query = functools.lru_cache(maxsize=1024)(_parse_query)


@functools.lru_cache(maxsize=1024)
def _ready_data(view: str) -> str:
    return json.dumps({"view": view})


def _settled(views: Views, broadcaster: Broadcaster, view: View, cursor: Cursor | None) -> bool:
    """Whether a subscriber (subscribed already) at `cursor` gets everything after it live (Broadcaster.settled):
    then its catch-up is empty, and a page opened at the head costs no store read."""
    return cursor is not None and cursor.epoch == views.store.epoch and broadcaster.settled(view.key, cursor.seq)


async def _catch_up(views: Views, broadcaster: Broadcaster, view: View, cursor: Cursor | None) -> CatchUp:
    """views.catch_up, or nothing at all for a settled subscriber."""
    if cursor is not None and _settled(views, broadcaster, view, cursor):
        return CatchUp(cursor.seq, "", changed=False)
    return await views.catch_up(view, cursor)


@functools.cache
def _page_headers() -> list[tuple[bytes, bytes]]:
    return with_defaults(list(EventStream.HEADERS), cacheable=False)


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
    sub = broadcaster.subscribe(view.key, "poll")
    try:
        caught = await _catch_up(views, broadcaster, view, cursor)
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
            sub.lagged = False  # (an overflow or a resync asks for a look at the store: the catch-up below is it)
            # (a wake-up with statistics only leaves the view settled: nothing to read)
            caught = await _catch_up(views, broadcaster, view, views.cursor(caught.head))
    finally:
        broadcaster.unsubscribe(sub)
    # Toasts after the browser's own position, unless it got a refresh (its position meant nothing here).
    seen = caught.head if cursor is None or caught.refresh else cursor.seq
    toasts = broadcaster.toasts_since(seen)
    poller = renderer.render(
        "fragments/poller.html",
        view=view,
        cursor=views.cursor(caught.head),
        toasts=json.dumps(toasts) if toasts else "",
        first=False,
    )
    banner = views.health_banner() if view.kind != "embed" else ""  # poll clients hear of storage state here
    return HTMLResponse(caught.html + banner + poller, headers={"Cache-Control": "no-store"})


async def watch_shutdown(broadcaster: Broadcaster) -> None:
    """When the server begins to stop (SIGTERM/SIGINT), wake every stream so it says goodbye and ends.

    sse-starlette hooks uvicorn's exit handler and raises AppStatus.should_exit: the earliest moment an app can
    learn of a shutdown, while connections are still open (the lifespan only hears of it after they are closed).
    """
    while not AppStatus.should_exit:
        await asyncio.sleep(0.25)
    broadcaster.close_all()
