"""Stage 7, the route guard: every route's access rule, the refusals, and a logged-in stream tied to its session."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp

from nvrmon.access import accounts, api_tokens
from nvrmon.access.revocation import Bound
from nvrmon.access.sessions import SAFE_METHODS, Auth, Identity

log = logging.getLogger("nvrmon.access.guard")

Access = Literal["public", "viewer", "operator", "admin"]
# page: HTML for people (redirect to the login page); api: JSON for programs; stream: /events and /poll (status only);
# scrape: /metrics, whose bearer token is the scrape token (web/metrics.py checks it), never an API token.
Kind = Literal["page", "api", "stream", "scrape"]
# The machine-readable `code` of an /api error when the handler names none: one per status (docs/api.md).
ERROR_CODES = {
    400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 413: "too_large", 422: "invalid", 429: "too_many_requests", 503: "unavailable",
}  # fmt: skip
BEARER_CHALLENGE = 'Bearer realm="nvrmon"'
# Returns a Response, or any ASGI app (the /events stream is one).
Endpoint = Callable[[Request], Awaitable[Any]]


class ErrorPage(Protocol):
    """Renders the HTML refusal for people (web/ owns the template); lives in the lifespan state as `error_page`."""

    def __call__(self, request: Request, status: int, detail: str) -> Response: ...


def guard(access: Access, endpoint: Endpoint, kind: Kind = "page") -> Endpoint:
    """Wrap an endpoint with its access rule: every route of the app goes through this (tests check they all do).

    On "api" routes an `Authorization: Bearer` API token stands in for the session (access/api_tokens.py); a
    read-scoped one is refused on every write before anything else. Also refuses a session's state-changing requests
    without a valid CSRF token, and ties a logged-in SSE stream to its session so that logging out or removing the
    user ends it.
    """

    async def checked(request: Request) -> Any:
        auth: Auth = request.state.auth
        epoch = auth.revocations.epoch
        # Only /api reads the header (a stream's start, the most frequent request, is spared the lookup).
        header = request.headers.get("authorization", "") if kind == "api" else ""
        if header[:7].lower() == "bearer ":
            # Bearer tokens on /api only: pages and streams are for browsers, whose credential is the session cookie.
            # Other schemes are not ours (a proxy's Basic auth in front of the hub): the session decides then.
            identity = await api_tokens.identify(auth.credentials.database, header)
            request.state.identity = identity
            if identity is None:
                return api_error(401, "unknown, revoked or malformed API token", "invalid_token", BEARER_CHALLENGE)
            if identity.token_scope == "read" and request.method not in SAFE_METHODS:
                # Before the role, the CSRF check and the body: a read token learns nothing about the write it tried.
                return api_error(403, "this API token is read-only", "read_only_token")
        else:
            identity = await auth.identify(request, stream=kind == "stream")
            request.state.identity = identity
        if access != "public":
            if identity is None:
                return _unauthenticated(request, kind)
            if not accounts.allows(identity.role, access):
                return refuse(request, kind, 403, f"This needs the {access} role; you are {identity.role}.")
        if request.method not in SAFE_METHODS and not (identity is not None and identity.token_scope):
            # A bearer token is never sent by a browser on its own (no cookie): no cross-site forgery to check for.
            problem = await auth.csrf_problem(request, identity)
            if problem is not None:
                log.warning("refused %s %s: %s", request.method, request.url.path, problem)
                return refuse(request, kind, 403, problem)
        response = await endpoint(request)
        if identity is not None and kind == "stream" and request.scope["path"] == "/events":
            response = _end_with_session(auth, identity, response)  # logging out or removing the user ends it
            if auth.revocations.epoch != epoch:
                # Its session was read (perhaps from the cache) before a revocation that the check under way may
                # not count it in: check again now that it is held.
                auth.revocations.recheck()
            return response
        return response

    checked.__name__ = getattr(endpoint, "__name__", "endpoint")
    checked.__doc__ = endpoint.__doc__
    checked.__dict__["nvrmon_access"] = access
    return checked


def _end_with_session(auth: Auth, identity: Identity, response: ASGIApp) -> ASGIApp:
    revoke, when_over = getattr(response, "revoke", None), getattr(response, "when_over", None)
    if revoke is not None and when_over is not None:  # a Revocable (not isinstance: a protocol check is slow)
        # A live stream ends itself when told: no wrapper around its sends, nothing to check per delivery.
        when_over(auth.revocations.hold("session", identity.session_hash, revoke))
        return response
    ended = asyncio.Event()
    release = auth.revocations.hold("session", identity.session_hash, ended.set)
    return Bound(response, ended, release)


def access_of(app: ASGIApp | Endpoint) -> Access | None:
    """The access rule an endpoint was registered with (None: it went around `guard`)."""
    rule: Access | None = getattr(app, "__dict__", {}).get("nvrmon_access")
    return rule


def _unauthenticated(request: Request, kind: Kind) -> Response:
    if kind == "page" and request.method in SAFE_METHODS:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        ended = getattr(request.state, "session_end", "")  # the login page says why the session ended
        return RedirectResponse(f"/login?next={quote(target, safe='')}{f'&ended={ended}' if ended else ''}", 303)
    return refuse(request, kind, 401, "login required")


def refuse(request: Request, kind: Kind, status: int, detail: str) -> Response:
    if kind == "api":
        return api_error(status, detail, challenge=BEARER_CHALLENGE if status == 401 else None)
    if kind in ("stream", "scrape"):
        return PlainTextResponse(detail, status_code=status, headers={"Cache-Control": "no-store"})
    error_page: ErrorPage = request.state.error_page
    return error_page(request, status, detail)


def api_error(status: int, message: str, code: str = "", challenge: str | None = None) -> JSONResponse:
    """The one error body of every /api response: {"error": {"code": ..., "message": ...}} (docs/api.md)."""
    headers = {"Cache-Control": "no-store"}
    if challenge is not None:
        headers["WWW-Authenticate"] = challenge
    body = {"error": {"code": code or ERROR_CODES.get(status, "error"), "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def page_context(request: Request) -> dict[str, Any]:
    """What base.html needs to show who is logged in (and the CSRF token for forms and htmx requests)."""
    identity: Identity | None = getattr(request.state, "identity", None)
    return {"user": identity, "csrf_token": identity.csrf if identity is not None else ""}
