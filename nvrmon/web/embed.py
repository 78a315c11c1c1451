"""Stage 7, embedding over HTTP: an embed token's view as an iframe page or CORS fragment, and its live stream.

What a token may show, and its rules, are nvrmon.access.embed_tokens; what the view renders and how it stays live
are the pages' own machinery (an embed view in nvrmon.live.views, streamed by nvrmon.live.streams.EventStream).
This module only answers HTTP: the token in the path, framing and CORS for the token's origins. See docs/embedding.md.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from nvrmon.access.embed_tokens import Scope, usable
from nvrmon.access.guard import Endpoint
from nvrmon.access.headers import content_security_policy
from nvrmon.access.sessions import Auth
from nvrmon.live.renderer import Renderer
from nvrmon.live.streams import EventStream
from nvrmon.live.viewkey import View
from nvrmon.live.views import Views
from nvrmon.models import Cursor
from nvrmon.store.credentials import EmbedToken

# Request headers htmx 4 sends that a CORS preflight may ask for; anything else is not allowed.
CORS_HEADERS = frozenset(
    {"hx-request", "hx-source", "hx-current-url", "hx-target", "hx-request-type", "hx-boosted", "last-event-id"}
)


async def _token(request: Request) -> EmbedToken | None:
    auth: Auth = request.state.auth
    return await usable(auth.credentials, str(request.path_params.get("token", "")))


def _view(token: EmbedToken) -> View:
    return View.for_embed(Scope.of_token(token))


async def _checked(request: Request) -> tuple[EmbedToken, dict[str, str]] | Response:
    """The embed token of a cross-origin-capable route, with its CORS headers; or the refusal to send instead."""
    token = await _token(request)
    if token is None:
        return PlainTextResponse("embed not available", status_code=404, headers={"Cache-Control": "no-store"})
    allowed, headers = _cors(request, token)
    if not allowed:
        return PlainTextResponse("origin not allowed for this embed", status_code=403, headers=headers)
    return token, headers


def _cors(request: Request, token: EmbedToken) -> tuple[bool, dict[str, str]]:
    """(allowed, headers): same-origin and origin-less requests pass; a cross-origin one only from the allowlist,
    answered with that one origin (never `*`, never credentials: the token in the URL is the credential)."""
    origin = request.headers.get("origin")
    headers = {"Vary": "Origin", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    if origin is None or urlsplit(origin).netloc == request.headers.get("host", ""):
        return True, headers
    if origin not in token.origins:
        return False, headers
    headers["Access-Control-Allow-Origin"] = origin
    return True, headers


def _unavailable(request: Request, status: int = 404) -> Response:
    # Carries no data and no controls, so any portal may frame it: better than the browser's "refused to connect".
    renderer: Renderer = request.state.renderer
    return HTMLResponse(
        renderer.render("embed_unavailable.html"),
        status_code=status,
        headers={"Content-Security-Policy": content_security_policy(["*"]), "Cache-Control": "no-store"},
    )


async def page(request: Request) -> Response:
    token = await _token(request)
    if token is None:
        return _unavailable(request)
    views: Views = request.state.views
    view = _view(token)
    ctx = await views.page(view)
    if ctx is None:
        return _unavailable(request)
    path = f"/embed/{request.path_params['token']}"
    renderer: Renderer = request.state.renderer
    html = renderer.render(
        "embed.html", title=view.scope.describe(), events_url=f"{path}/events?since={ctx['cursor']}", oob=False, **ctx
    )
    headers = {
        "Content-Security-Policy": content_security_policy(["'self'", *token.origins]),
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",  # the token is in this page's URL
    }
    return HTMLResponse(html, headers=headers)


async def fragment(request: Request) -> Response:
    """CORS mode: the scope's regions as plain HTML with a stream element that keeps them live, for hx-get."""
    checked = await _checked(request)
    if isinstance(checked, Response):
        return checked
    token, headers = checked
    views: Views = request.state.views
    ctx = await views.page(_view(token))
    if ctx is None:
        return PlainTextResponse("embed not available", status_code=404, headers=headers)
    base = str(request.base_url).rstrip("/")
    events = f"{base}/embed/{request.path_params['token']}/events?since={ctx['cursor']}"
    renderer: Renderer = request.state.renderer
    html = renderer.render("embed_fragment.html", events_url=events, oob=False, **ctx)
    return HTMLResponse(html, headers=headers)


async def preflight(request: Request) -> Response:
    token = await _token(request)
    if token is None:
        return Response(status_code=404)
    allowed, headers = _cors(request, token)
    asked = {h.strip().lower() for h in request.headers.get("access-control-request-headers", "").split(",")}
    asked.discard("")
    if not allowed or request.headers.get("access-control-request-method", "GET") != "GET" or asked - CORS_HEADERS:
        return Response(status_code=403, headers=headers)
    headers.update(
        {
            "Access-Control-Allow-Methods": "GET",
            "Access-Control-Allow-Headers": ", ".join(sorted(asked)),
            "Access-Control-Max-Age": "600",
        }
    )
    return Response(status_code=204, headers=headers)


async def events(request: Request) -> Response | EventStream:
    """The embed view's stream: the pages' own EventStream (replay from a cursor, heartbeat, bye), ended at once
    when the token is revoked (in this process or by the CLI) or expires."""
    checked = await _checked(request)
    if isinstance(checked, Response):
        return checked
    token, headers = checked
    views: Views = request.state.views
    view = _view(token)
    if not await views.exists(view):
        return PlainTextResponse("no such device", status_code=404, headers=headers)
    cursor = Cursor.parse(request.headers.get("last-event-id")) or Cursor.parse(request.query_params.get("since"))
    state = request.state
    stream = EventStream(views, state.broadcaster, state.settings, view, cursor, headers=headers)
    auth: Auth = state.auth
    # Ended by the revocation watch (or at expiry) through the stream itself: nothing wraps its sends.
    stream.when_over(auth.revocations.hold("embed", token.id, stream.revoke))
    stream.when_over(asyncio.get_running_loop().call_later(max(0.0, token.expires - time.time()), stream.revoke).cancel)
    return stream


def _embed_access(endpoint: Endpoint) -> Endpoint:
    """Embed routes authenticate with the token in their path, never with a session cookie."""

    async def with_no_identity(request: Request) -> Any:
        request.state.identity = None
        return await endpoint(request)

    with_no_identity.__name__ = endpoint.__name__
    with_no_identity.__dict__["nvrmon_access"] = "embed-token"
    return with_no_identity


def routes() -> list[Route]:
    return [
        Route("/embed/{token}", _embed_access(page), methods=["GET"]),
        Route("/embed/{token}/fragment", _embed_access(fragment), methods=["GET"]),
        Route("/embed/{token}/fragment", _embed_access(preflight), methods=["OPTIONS"]),
        Route("/embed/{token}/events", _embed_access(events), methods=["GET"]),
        Route("/embed/{token}/events", _embed_access(preflight), methods=["OPTIONS"]),
    ]
