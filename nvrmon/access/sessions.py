"""Stage 7, who is asking: signed session cookies, the operator behind a request, starting and ending sessions, CSRF."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request, cookie_parser
from starlette.responses import Response

from nvrmon.access.limits import Gate, LoginLimiter
from nvrmon.access.revocation import Revocations, touch_interval
from nvrmon.settings import Settings
from nvrmon.store.credentials import Credentials, Role
from nvrmon.store.security_rows import SessionRecord

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_COOKIE = "nvrmon_session"
CSRF_COOKIE = "nvrmon_csrf"  # before login: the login form's double-submit token
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
MAX_FORM_BYTES = 16_384
MAX_CACHED_SESSIONS = 10_000  # sessions remembered for stream starts (bounded: emptied when full)
MAX_CACHED_COOKIE_HEADER = 4096  # bytes of Cookie header a stream start's parse may be remembered for
# Why a browser's session ended (request.state.session_end, the login page's ?ended=): the page tells its user.
SESSION_GONE, SESSION_EXPIRED, SIGNED_OUT = "ended", "expired", "signed-out"


@dataclass(frozen=True, slots=True)
class Identity:
    """The operator behind a request: who, with which role, in which session, and the CSRF token of that session."""

    user_id: int
    name: str
    role: Role
    session_hash: str
    csrf: str
    # An API token's scope ("read" or "operator") when the request came with `Authorization: Bearer`; "" for a
    # browser session. A token request has no session, no cookie and so no CSRF exposure (access/api_tokens.py).
    token_scope: str = ""


class Auth:
    """Everything the routes need to know who is asking; lives in the lifespan state as `auth`."""

    def __init__(self, credentials: Credentials, settings: Settings, secret: str) -> None:
        self.credentials = credentials
        self.settings = settings
        self._key = hashlib.sha256(secret.encode()).digest()
        self.limiter = LoginLimiter(settings.login_max_failures, settings.login_ip_max_failures, settings.login_lockout)
        self.revocations = Revocations(credentials, settings)
        self.agent_gate = Gate(settings.max_agent_connections)
        # Sessions as last read for a stream's start (a hub restart brings every browser back at once): forgotten
        # whenever anything may have been revoked (the revocation watch's checks, a logout), so a stream opened on
        # a session revoked meanwhile is ended by the very check that forgets it.
        self._for_streams: dict[str, SessionRecord] = {}
        self.revocations.on_check.append(self._for_streams.clear)
        # Genuine session cookies as seen at stream starts -> (session hash, CSRF token): both MACs and the hash are
        # a function of the cookie alone, so a browser reconnecting (and its thousand peers after a restart) costs
        # a dict lookup. Never forgotten on revocation: it says what a cookie is, not whether its session lives.
        self._cookies: dict[str, tuple[str, str]] = {}
        self._jars: dict[tuple[bytes, ...], dict[str, str]] = {}  # Cookie headers at stream starts, parsed

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
        # The scope's scheme (what request.url would say, without building the URL)
        return self.settings.secure_cookies == "always" or request.scope.get("scheme", "http") in ("https", "wss")

    def cookie_name(self, request: Request, base: str) -> str:
        # __Host-: the browser refuses the cookie unless Secure, Path=/ and without Domain, so a sibling subdomain
        # can't plant a session or CSRF cookie for this host.
        return f"__Host-{base}" if self.secure(request) else base

    def _cookie(self, request: Request, base: str) -> str | None:
        # Over HTTPS only the __Host- name: a plain one may have been planted (by a sibling subdomain, or over plain
        # http on the same host), and accepting it would undo what the prefix guarantees.
        return request.cookies.get(self.cookie_name(request, base))

    def _stream_cookie(self, request: Request) -> str | None:
        """The session cookie as `_cookie` finds it, with each distinct Cookie header parsed once (a stream's
        browser sends the same header at every reconnect, and after a restart so do all the others)."""
        sent = tuple(value for name, value in request.scope["headers"] if name == b"cookie")
        jar = self._jars.get(sent)
        if jar is None:
            jar = {}
            for header in sent:
                jar.update(cookie_parser(header.decode("latin-1")))
            if sum(map(len, sent)) <= MAX_CACHED_COOKIE_HEADER:  # (junk sent by anyone must not fill memory)
                if len(self._jars) >= MAX_CACHED_SESSIONS:
                    self._jars.clear()
                self._jars[sent] = jar
        return jar.get(self.cookie_name(request, SESSION_COOKIE))

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

    async def identify(self, request: Request, *, stream: bool = False) -> Identity | None:
        """The request's operator, or None: no cookie, a forged one, an ended or timed-out session. `stream`: a live
        stream's start, which may use the session as last read (see `_for_streams`); timeouts are checked anew."""
        raw = self._stream_cookie(request) if stream else self._cookie(request, SESSION_COOKIE)
        known = self._cookies.get(raw) if stream and raw else None
        if known is not None:
            session_hash, csrf = known
        else:
            session_id = self.unsign(raw)
            if session_id is None:
                return None
            session_hash, csrf = hashlib.sha256(session_id.encode()).hexdigest(), self.csrf_for(session_id)
            if stream and raw:
                if len(self._cookies) >= MAX_CACHED_SESSIONS:
                    self._cookies.clear()
                self._cookies[raw] = (session_hash, csrf)
        record = self._for_streams.get(session_hash) if stream else None
        if record is None:
            record = await self.credentials.session(session_hash)
            if record is not None and stream:
                if len(self._for_streams) >= MAX_CACHED_SESSIONS:
                    self._for_streams.clear()
                self._for_streams[session_hash] = record
        if record is None:
            # A genuine cookie of a session that is gone: signed out elsewhere, pruned, or its account removed or
            # its password changed. The login page says so (one reason for all: no word on whether an account exists).
            request.state.session_end = SESSION_GONE
            return None
        now = time.time()
        if now - record.last_seen > self.settings.session_idle_timeout or (
            now - record.created > self.settings.session_max_age
        ):
            self._for_streams.pop(session_hash, None)
            await self.credentials.delete_session(session_hash)
            request.state.session_end = SESSION_EXPIRED
            return None
        if now - record.last_seen > touch_interval(self.settings.session_idle_timeout):
            await self.credentials.touch_session(session_hash, now)
            if session_hash in self._for_streams:
                self._for_streams[session_hash] = replace(record, last_seen=now)
        return Identity(record.user_id, record.name, record.role, session_hash, csrf)

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
        self._for_streams.pop(identity.session_hash, None)
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
