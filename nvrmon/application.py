"""Wiring: create_app(settings) builds the routes and a lifespan owning the store, the hub and all background tasks."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import secrets
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nvrmon import agents, api, pages, streams
from nvrmon.broadcaster import Broadcaster
from nvrmon.hub import Hub
from nvrmon.publisher import Publisher
from nvrmon.renderer import Renderer
from nvrmon.settings import Settings
from nvrmon.store import Store
from nvrmon.views import Views

log = logging.getLogger("nvrmon")

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class StreamFastPath:
    """Serves /events around Starlette's middleware stack instead of through it.

    A stream lives for hours and every delivery goes through its `send`: behind the middleware, each of those is
    three wrapper calls, and each open stream keeps a suspended frame per layer that every full garbage collection
    walks. Here the handler (the same `streams.events`, with all its checks) runs once, and the stream then talks
    to the server's own `send`.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/events":
            response = await streams.events(Request(scope, receive))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class SecurityHeaders:
    """Adds headers every response should carry; pure ASGI so it never buffers the event stream."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def agent_token(store: Store, settings: Settings) -> str:
    """The configured token, or one generated once and kept in the database so restarts keep agents working."""
    if settings.agent_token:
        return settings.agent_token
    token = await store.meta("agent_token")
    if token is None:
        token = secrets.token_urlsafe(24)
        await store.set_meta("agent_token", token)
        # Shown once, when generated: operators need it to configure agents (or set NVRMON_AGENT_TOKEN instead).
        log.warning("NVRMON_AGENT_TOKEN is not set; generated agent token %s and stored it in %s", token, store.path)
    return token


def create_app(settings: Settings) -> ASGIApp:
    renderer = Renderer(settings.templates_dir, settings.static_dir)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        store = await Store.open(settings.db_path)
        broadcaster = Broadcaster(settings.subscriber_queue)
        views = Views(store, renderer, settings)

        publisher = Publisher(views, broadcaster, settings)
        hub = Hub(store, settings, publisher.submit)
        views.hub = hub  # system health on the dashboard: uptime, agents connected, last event
        await hub.start()
        token = await agent_token(store, settings)
        tasks: set[asyncio.Task[None]] = set()

        def start(coro: Coroutine[Any, Any, None], name: str) -> None:
            task = asyncio.create_task(coro, name=name)
            tasks.add(task)
            task.add_done_callback(_report_crash)

        start(streams.watch_shutdown(broadcaster), "stream-shutdown")
        start(broadcaster.housekeeping(settings.sse_heartbeat, settings.sse_send_timeout), "stream-housekeeping")
        start(hub.run(), "hub-writer")
        start(publisher.run(), "publisher")
        start(hub.sweep(), "hub-sweeper")
        if settings.demo > 0:
            from nvrmon.simulator import Fleet  # imported lazily: only the demo needs a WebSocket client

            host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
            fleet = Fleet(f"ws://{host}:{settings.port}/ws/agent", token, nvrs=settings.demo, seed=7)
            start(fleet.run(), "demo-fleet")
        app.state.agent_token = token
        # What exists now (modules, compiled templates, the store) lives as long as the process: moving it out of
        # the collector's sight keeps full collections short when thousands of streams are open.
        renderer.warm_up()
        gc.collect()
        gc.freeze()
        try:
            yield {
                "settings": settings,
                "store": store,
                "hub": hub,
                "views": views,
                "renderer": renderer,
                "broadcaster": broadcaster,
                "agent_token": token,
            }
        finally:
            # Connections are closed by now (uvicorn ends them before the lifespan): commit what they sent last.
            await hub.drain(timeout=5.0)
            hub.close()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await store.close()

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", ""):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        html = renderer.render(
            "error.html", title=str(exc.status_code), active="", status=exc.status_code, detail=exc.detail
        )
        return HTMLResponse(html, status_code=exc.status_code)

    routes = [
        Route("/", pages.dashboard),
        Route("/nvrs", pages.nvr_list),
        Route("/nvrs/{nvr_id:int}", pages.nvr_detail),
        Route("/cameras", pages.camera_list),
        Route("/cameras/{camera_id:int}", pages.camera_detail),
        Route("/events", streams.events),
        Route("/poll", streams.poll),
        Route("/api/summary", api.summary),
        Route("/api/nvrs", api.nvrs),
        Route("/api/nvrs/{nvr_id:int}", api.nvr),
        Route("/api/cameras", api.cameras),
        Route("/api/cameras/{camera_id:int}", api.camera),
        Route("/api/events", api.events),
        Route("/healthz", api.healthz),
        WebSocketRoute("/ws/agent", agents.agent_endpoint),
        Mount("/static", StaticFiles(directory=settings.static_dir), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error})
    app.add_middleware(SecurityHeaders)
    return StreamFastPath(app)


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s crashed", task.get_name(), exc_info=task.exception())
