"""Wiring: create_app(settings) builds the routes and a lifespan owning the store, the hub and all background tasks."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import secrets
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from nvrmon import __version__
from nvrmon.access import audit
from nvrmon.access.guard import api_error, guard, page_context
from nvrmon.access.headers import SecurityHeaders
from nvrmon.access.revocation import Bound
from nvrmon.access.sessions import Auth
from nvrmon.alerts.actions import Alerts
from nvrmon.alerts.delivery import Delivery
from nvrmon.alerts.feed import StoreFeed
from nvrmon.alerts.history import History, chain
from nvrmon.alerts.notifier import Notifier, cameras_of
from nvrmon.ingest import endpoint as agents
from nvrmon.ingest.hub import Hub
from nvrmon.live import streams
from nvrmon.live.admission import StreamCaps
from nvrmon.live.broadcaster import Broadcaster
from nvrmon.live.publisher import Publisher
from nvrmon.live.renderer import Renderer
from nvrmon.live.streams import EventStream
from nvrmon.live.views import Views
from nvrmon.logs import RequestIds
from nvrmon.models import Toast
from nvrmon.settings import Settings
from nvrmon.store.audit import AuditLog
from nvrmon.store.backup import HubLock
from nvrmon.store.credentials import Credentials
from nvrmon.store.database import Database
from nvrmon.store.fleet import Changes, Store
from nvrmon.web import (
    admin,
    admin_accounts,
    api,
    channels_api,
    embed,
    incident_pages,
    incidents_api,
    inventory_admin,
    inventory_api,
    login,
    metrics,
    notify,
    openapi,
    pages,
    reports,
)
from nvrmon.web import audit as audit_pages

log = logging.getLogger("nvrmon")


class StreamFastPath:
    """Serves /events around Starlette's middleware stack instead of through it.

    A stream lives for hours and every delivery goes through its `send`: behind the middleware, each of those is
    three wrapper calls, and each open stream keeps a suspended frame per layer that every full garbage collection
    walks. Here the handler (the same `streams.events`, with all its checks) runs once, and the stream then talks
    to the server's own `send`.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = SecurityHeaders(app)
        self.events = guard("viewer", streams.events, "stream")  # the same access rule as the /events route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/events":
            response = await self.events(Request(scope, receive))
            stream = response.app if isinstance(response, Bound) else response
            if isinstance(stream, EventStream):
                # A stream sets the security headers itself and gets the server's own send: no layer per delivery.
                await response(scope, receive, send)
            else:
                await SecurityHeaders(response)(scope, receive, send)  # a refusal (400, 401, 404): a plain response
            return
        await self.app(scope, receive, send)


async def agent_token(store: Store, settings: Settings) -> str:
    """The configured token, or one generated once and kept in the database so restarts keep agents working."""
    if settings.agent_token:
        return settings.agent_token
    token = await store.meta("agent_token")
    if token is None:
        # Kept only if no other hub starting on the same database stored one first: all hubs then share one token.
        proposed = secrets.token_urlsafe(24)
        token = await Credentials(store.database).meta_value("agent_token", proposed)
        if token != proposed:
            return token
        # Shown once, when generated: operators need it to configure agents (or set NVRMON_AGENT_TOKEN instead).
        log.warning(
            "NVRMON_AGENT_TOKEN is not set; generated agent token %s and stored it in %s",
            token,
            store.database.describe(),
        )
    return token


def create_app(settings: Settings) -> ASGIApp:
    renderer = Renderer(settings.templates_dir, settings.static_dir, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        target = settings.database
        # tells `nvrmon restore` a hub has this file open (store/backup.py); PostgreSQL has no file to mark
        marker = HubLock.hold(target) if isinstance(target, Path) else None
        database = await Database.open(target, pool_size=settings.database_pool)  # the process's one owner
        store = Store(database)
        caps = StreamCaps(settings.max_streams_per_session, settings.max_streams_per_address, settings.proxies)
        broadcaster = Broadcaster(settings.subscriber_queue, caps)
        views = Views(store, renderer, settings)

        publisher = Publisher(views, broadcaster, settings)
        alerts = Alerts(
            database, settings.incident_delay
        )  # incidents are derived inside the hub's transactions (alerts/engine.py)

        def published(changes: Changes, toasts: list[Toast], more: bool) -> None:
            publisher.submit(changes, toasts, more)
            # The head as of this commit, in memory: a stream opened there needs no store read (Broadcaster.settled)
            broadcaster.committed = max(broadcaster.committed, changes.seq)
            alerts.published(changes)

        # Availability intervals are recorded after the incidents, in the same transaction (alerts/history.py).
        history = History(alerts.maintenance, settings.history_mark_interval)
        hub = Hub(store, settings, published, derive=chain(alerts.engine.derive, history.record))
        alerts.writer = hub
        renderer.env.globals["maintenance"] = alerts.maintenance  # rows in a maintenance window say so
        views.hub = hub  # system health on the dashboard: uptime, agents connected, last event
        renderer.env.globals["hub_health"] = hub.health  # read at each render: the banner in base.html
        hub.health.on_change = publisher.storage_changed  # ... and pushed to open pages when it changes
        views.storage_degraded = lambda: hub.health.degraded
        scrape = metrics.Metrics(store, hub, broadcaster, publisher)  # this app's own registry (docs/metrics.md)
        hub.on_commit = scrape.observe_commit
        await hub.start()
        # Where the hub starts from (its start commit included): nothing older is left to publish.
        broadcaster.committed = broadcaster.published = await store.current_seq()
        log.info("hub node %s on %s database %s", hub.node, database.backend, database.describe())
        token = await agent_token(store, settings)
        security = await Auth.open(settings, Credentials(database))
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
        start(security.revocations.run(), "revocation-watch")
        start(audit.prune_loop(AuditLog(database), settings), "audit-prune")
        await alerts.start()  # through the writer started above
        start(alerts.maintenance.run(hub), "maintenance-timer")
        start(alerts.engine.run(hub), "incident-delay")
        # Notifications out: the notifier turns incident_log into grouped outbox rows; delivery sends them.
        notifier = Notifier(database, StoreFeed(database), settings, cameras_of(store))
        delivery = Delivery(database, settings, writer=hub)
        start(notifier.run(), "notifier")
        start(delivery.run(), "notify-delivery")
        start(history.run(hub), "history-mark")
        if settings.demo > 0:
            from nvrmon.agent.simulator import Fleet  # imported lazily: only the demo needs a WebSocket client

            host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
            fleet = Fleet(f"ws://{host}:{settings.port}/ws/agent", token, nvrs=settings.demo, seed=7)
            start(fleet.run(), "demo-fleet")
        app.state.agent_token = token
        # What exists now (modules, compiled templates, the store) lives as long as the process: moving it out of
        # the collector's sight keeps full collections short when thousands of streams are open.
        renderer.warm_up()
        gc.collect()
        gc.freeze()
        gc.callbacks.append(scrape.pauses.callback)  # GC pauses for /metrics, until shutdown
        try:
            yield {
                "settings": settings,
                "store": store,
                "hub": hub,
                "views": views,
                "renderer": renderer,
                "broadcaster": broadcaster,
                "agent_token": token,
                "auth": security,
                "alerts": alerts,
                "delivery": delivery,
                "error_page": login.error_page,  # how the guard refuses people (access/ renders no HTML)
                "metrics": scrape,
            }
        finally:
            gc.callbacks.remove(scrape.pauses.callback)
            # Connections are closed by now (uvicorn ends them before the lifespan): commit what they sent last.
            await hub.drain(timeout=5.0)
            await history.stop(hub)  # the last alive mark: the next start counts the gap from here
            try:
                await hub.leave()  # other hubs on the database take this one's NVRs over at once
            except Exception as exc:  # the store refusing writes: the lease then lapses by itself
                log.warning("could not end this hub's lease at shutdown: %r", exc)
            hub.close()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await database.close()
            if marker is not None:
                marker.release()

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", ""):
            return api_error(exc.status_code, str(exc.detail))  # the API's one error shape
        html = renderer.render(
            "error.html", title=str(exc.status_code), active="", status=exc.status_code, detail=exc.detail,
            **page_context(request),
        )  # fmt: skip
        return HTMLResponse(html, status_code=exc.status_code)

    # Every web module with /api routes adds its ApiSection here; /api/openapi.json describes them all.
    api_sections = openapi.published(
        [api.API, inventory_api.API, incidents_api.API, channels_api.API, reports.API], __version__
    )
    # Every route states who may use it (guard); tests/test_auth.py fails for a route that doesn't.
    routes = [
        Route("/", guard("viewer", pages.dashboard)),
        Route("/nvrs", guard("viewer", pages.nvr_list)),
        Route("/nvrs/{nvr_id:int}", guard("viewer", pages.nvr_detail)),
        Route("/cameras", guard("viewer", pages.camera_list)),
        Route("/cameras/{camera_id:int}", guard("viewer", pages.camera_detail)),
        # Normally served by StreamFastPath (with the same rule); this route documents it and serves HEAD.
        Route("/events", guard("viewer", streams.events, "stream")),
        Route("/poll", guard("viewer", streams.poll, "stream")),
        # The scrape token or an admin session: web/metrics.py checks (the guard only identifies the session).
        Route("/metrics", guard("public", metrics.endpoint, "scrape")),
        # The JSON API (and /healthz): each section brings its routes and their OpenAPI entries (web/openapi.py).
        *(route for section in api_sections for route in section.routes()),
        *incident_pages.routes(),
        *reports.routes(),  # the /reports page; its /api/reports routes are in reports.API
        *login.routes(),
        *admin.routes(),
        *inventory_admin.routes(),
        *admin_accounts.routes(),
        *audit_pages.routes(),
        *notify.routes(),
        *embed.routes(),
        # Agents authenticate with their bearer token (nvrmon/tokens.py), not with a session.
        WebSocketRoute("/ws/agent", agents.agent_endpoint),
        Mount("/static", StaticFiles(directory=settings.static_dir), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error})
    # Outermost, around the /events fast path too: the one place every response gets its security headers; around
    # that, each request's id for its log lines (nvrmon/logs.py).
    return RequestIds(StreamFastPath(app))


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s crashed", task.get_name(), exc_info=task.exception())
