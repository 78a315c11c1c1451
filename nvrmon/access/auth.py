"""Stage 7, who is asking: session cookies, role checks on every route, CSRF, and the login and logout pages."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from nvrmon.access import accounts
from nvrmon.access.revocation import Bound, Revocations
from nvrmon.access.security import Gate, LoginLimiter
from nvrmon.live.renderer import Renderer
from nvrmon.settings import Settings
from nvrmon.store.credentials import Credentials, Role

log = logging.getLogger("nvrmon.access.auth")

Access = Literal["public", "viewer", "operator", "admin"]
# page: HTML for people (redirect to the login page); api: JSON for programs; stream: /events and /poll (status only).
Kind = Literal["page", "api", "stream"]
# Returns a Response, or any ASGI app (the /events stream is one).
Endpoint = Callable[[Request], Awaitable[Any]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_COOKIE = "nvrmon_session"
CSRF_COOKIE = "nvrmon_csrf"  # before login: the login form's double-submit token
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
MAX_FORM_BYTES = 16_384
TOUCH_AFTER = 60.0  # write last_seen at most once a minute per session, not on every request


@dataclass(frozen=True, slots=True)
class Identity:
    """The operator behind a request: who, with which role, in which session, and the CSRF token of that session."""

    user_id: int
    name: str
    role: Role
    session_hash: str
    csrf: str


class Auth:
    """Everything the routes need to know who is asking; lives in the lifespan state as `auth`."""

    def __init__(self, credentials: Credentials, settings: Settings, secret: str) -> None:
        self.credentials = credentials
        self.settings = settings
        self._key = hashlib.sha256(secret.encode()).digest()
        self.limiter = LoginLimiter(settings.login_max_failures, settings.login_ip_max_failures, settings.login_lockout)
        self.revocations = Revocations(credentials, settings)
        self.agent_gate = Gate(settings.max_agent_connections)

    @classmethod
    async def open(cls, settings: Settings, credentials: Credentials) -> Auth:
        """Over the caller's credentials (the hub's shared Database); the cookie secret is created once and kept."""
        secret = settings.secret_key or await credentials.meta_value("secret_key", secrets.token_urlsafe(32))
        return cls(credentials, settings, secret)

    # -- cookies ----------------------------------------------------------------------------------------------------

    def _mac(self, purpose: bytes, value: str) -> str:
        digest = hmac.new(self._key, purpose + b":" + value.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def sign(self, session_id: str) -> str:
        return f"{session_id}.{self._mac(b'session', session_id)}"

    def unsign(self, raw: str | None) -> str | None:
        if not raw or len(raw) > 200:
            return None
        session_id, _, mac = raw.rpartition(".")
        if session_id and hmac.compare_digest(mac, self._mac(b"session", session_id)):
            return session_id
        return None

    def csrf_for(self, session_id: str) -> str:
        return self._mac(b"csrf", session_id)

    def secure(self, request: Request) -> bool:
        return self.settings.secure_cookies == "always" or request.url.scheme in ("https", "wss")

    def cookie_name(self, request: Request, base: str) -> str:
        # __Host-: the browser refuses the cookie unless Secure, Path=/ and without Domain, so a sibling subdomain
        # can't plant a session or CSRF cookie for this host.
        return f"__Host-{base}" if self.secure(request) else base

    def _cookie(self, request: Request, base: str) -> str | None:
        return request.cookies.get(f"__Host-{base}") or request.cookies.get(base)

    def set_cookie(self, request: Request, response: Response, base: str, value: str, max_age: int | None) -> None:
        response.set_cookie(
            self.cookie_name(request, base),
            value,
            max_age=max_age,
            path="/",
            secure=self.secure(request),
            httponly=True,
            samesite="lax" if base == SESSION_COOKIE else "strict",
        )

    def clear_cookie(self, request: Request, response: Response, base: str) -> None:
        for name in (base, f"__Host-{base}"):
            if name in request.cookies:
                response.delete_cookie(name, path="/", secure=name.startswith("__Host-"), httponly=True)

    # -- sessions ---------------------------------------------------------------------------------------------------

    async def identify(self, request: Request) -> Identity | None:
        """The request's operator, or None: no cookie, a forged one, an ended or timed-out session."""
        session_id = self.unsign(self._cookie(request, SESSION_COOKIE))
        if session_id is None:
            return None
        session_hash = hashlib.sha256(session_id.encode()).hexdigest()
        record = await self.credentials.session(session_hash)
        if record is None:
            return None
        now = time.time()
        if now - record.last_seen > self.settings.session_idle_timeout or (
            now - record.created > self.settings.session_max_age
        ):
            await self.credentials.delete_session(session_hash)
            return None
        if now - record.last_seen > TOUCH_AFTER:
            await self.credentials.touch_session(session_hash, now)
        return Identity(record.user_id, record.name, record.role, session_hash, self.csrf_for(session_id))

    async def start_session(self, request: Request, response: Response, user_id: int) -> None:
        """A new session id at every login (never reuse one a browser brought along: session fixation)."""
        session_id = secrets.token_urlsafe(32)
        remote = request.client.host if request.client else ""
        await self.credentials.create_session(
            hashlib.sha256(session_id.encode()).hexdigest(), user_id, time.time(), remote
        )
        self.set_cookie(request, response, SESSION_COOKIE, self.sign(session_id), int(self.settings.session_max_age))
        self.clear_cookie(request, response, CSRF_COOKIE)

    async def end_session(self, request: Request, response: Response, identity: Identity) -> None:
        await self.credentials.delete_session(identity.session_hash)
        self.revocations.notify()  # its open streams end now, not at the next poll
        self.clear_cookie(request, response, SESSION_COOKIE)

    # -- CSRF -------------------------------------------------------------------------------------------------------

    async def csrf_problem(self, request: Request, identity: Identity | None) -> str | None:
        """Why a state-changing request must be refused, or None. Fetch metadata and Origin first (a cross-site post
        is refused whatever it carries), then the token: the session's, or before login the form's cookie."""
        if request.headers.get("sec-fetch-site") == "cross-site":
            return "cross-site request"
        origin = request.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != request.headers.get("host", ""):
            return "cross-origin request"
        sent = request.headers.get(CSRF_HEADER)
        if sent is None:
            sent = (await read_form(request)).get(CSRF_FIELD)
        expected = identity.csrf if identity is not None else self._cookie(request, CSRF_COOKIE)
        if not sent or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            return "missing or wrong CSRF token; reload the page and try again"
        return None

    def login_csrf(self, request: Request) -> tuple[str, bool]:
        """The login form's token and whether it is new (then the response must set its cookie)."""
        current = self._cookie(request, CSRF_COOKIE)
        if current and 20 <= len(current) <= 64:
            return current, False
        return secrets.token_urlsafe(24), True


async def read_form(request: Request) -> dict[str, str]:
    """A small urlencoded form (the only kind the hub accepts), read once per request and kept."""
    cached: dict[str, str] | None = getattr(request.state, "form", None)
    if cached is not None:
        return cached
    form: dict[str, str] = {}
    if request.headers.get("content-type", "").split(";")[0].strip() == "application/x-www-form-urlencoded":
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                break
        if len(body) <= MAX_FORM_BYTES:
            form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=32))
    request.state.form = form
    return form


def guard(access: Access, endpoint: Endpoint, kind: Kind = "page") -> Endpoint:
    """Wrap an endpoint with its access rule: every route of the app goes through this (tests check they all do).

    Also refuses state-changing requests without a valid CSRF token, and ties a logged-in SSE stream to its session
    so that logging out or removing the user ends it.
    """

    async def checked(request: Request) -> Any:
        auth: Auth = request.state.auth
        identity = await auth.identify(request)
        request.state.identity = identity
        if access != "public":
            if identity is None:
                return _unauthenticated(request, kind)
            if not accounts.allows(identity.role, access):
                return refuse(request, kind, 403, f"This needs the {access} role; you are {identity.role}.")
        if request.method not in SAFE_METHODS:
            problem = await auth.csrf_problem(request, identity)
            if problem is not None:
                log.warning("refused %s %s: %s", request.method, request.url.path, problem)
                return refuse(request, kind, 403, problem)
        response = await endpoint(request)
        if identity is not None and kind == "stream" and request.url.path == "/events":
            return _end_with_session(auth, identity, response)  # logging out or removing the user ends the stream
        return response

    checked.__name__ = getattr(endpoint, "__name__", "endpoint")
    checked.__doc__ = endpoint.__doc__
    checked.__dict__["nvrmon_access"] = access
    return checked


def _end_with_session(auth: Auth, identity: Identity, response: ASGIApp) -> ASGIApp:
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
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    return refuse(request, kind, 401, "login required")


def refuse(request: Request, kind: Kind, status: int, detail: str) -> Response:
    headers = {"Cache-Control": "no-store"}
    if kind == "api":
        return JSONResponse({"error": detail}, status_code=status, headers=headers)
    if kind == "stream":
        return PlainTextResponse(detail, status_code=status, headers=headers)
    renderer: Renderer = request.state.renderer
    html = renderer.render(
        "error.html", title=str(status), active="", status=status, detail=detail, **page_context(request)
    )
    return HTMLResponse(html, status_code=status, headers=headers)


def page_context(request: Request) -> dict[str, Any]:
    """What base.html needs to show who is logged in (and the CSRF token for forms and htmx requests)."""
    identity: Identity | None = getattr(request.state, "identity", None)
    return {"user": identity, "csrf_token": identity.csrf if identity is not None else ""}


def safe_next(value: str | None) -> str:
    """Only a path on this hub: never an absolute URL or //host (an open redirect after login)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")) or len(value) > 512:
        return "/"
    if any(ord(ch) < 32 for ch in value) or value.startswith(("/login", "/logout")):
        return "/"
    return value


# -- login and logout ---------------------------------------------------------------------------------------------


async def login_page(request: Request) -> Response:
    if request.state.identity is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return _login_form(request, safe_next(request.query_params.get("next")), "", "")


def _login_form(request: Request, next_path: str, name: str, error: str, status: int = 200) -> Response:
    auth: Auth = request.state.auth
    renderer: Renderer = request.state.renderer
    token, new = auth.login_csrf(request)
    html = renderer.render(
        "login.html", title="Log in", active="", next_path=next_path, username=name, error=error, login_csrf=token,
        user=None, csrf_token="",
    )  # fmt: skip
    headers = {"Cache-Control": "no-store"}
    if status == 429:
        headers["Retry-After"] = str(int(auth.settings.login_lockout))
    response = HTMLResponse(html, status_code=status, headers=headers)
    if new:
        auth.set_cookie(request, response, CSRF_COOKIE, token, None)
    return response


async def login(request: Request) -> Response:
    auth: Auth = request.state.auth
    form = await read_form(request)
    name, password = form.get("username", "").strip(), form.get("password", "")
    next_path = safe_next(form.get("next"))
    address = request.client.host if request.client else "unknown"
    now = time.time()
    wait = auth.limiter.retry_after(name, address, now)
    if wait > 0:
        minutes = max(1, round(wait / 60))
        message = f"Too many failed attempts. Try again in {minutes} minute{'s' if minutes > 1 else ''}."
        return _login_form(request, next_path, name, message, 429)
    user = await accounts.authenticate(auth.credentials, name, password) if name and password else None
    if user is None:
        auth.limiter.failed(name, address, time.time())
        log.warning("failed login for %r from %s", name[:64], address)
        return _login_form(request, next_path, name, "Wrong user name or password.", 401)
    auth.limiter.succeeded(name)
    response = RedirectResponse(next_path, status_code=303)
    await auth.start_session(request, response, user.id)
    log.info("%s logged in from %s", user.name, address)
    return response


async def logout(request: Request) -> Response:
    auth: Auth = request.state.auth
    identity: Identity = request.state.identity
    response = RedirectResponse("/login", status_code=303)
    await auth.end_session(request, response, identity)
    return response


def routes() -> list[Route]:
    return [
        Route("/login", guard("public", login_page), methods=["GET"]),
        Route("/login", guard("public", login), methods=["POST"]),
        Route("/logout", guard("viewer", logout), methods=["POST"]),
    ]
