"""Stage 1, agent credentials: fleet, per-NVR and enrollment tokens, and each connection's rate and hostname rights.

Three kinds of bearer token open `/ws/agent`:

* the shared fleet token (NVRMON_AGENT_TOKEN): speaks for any hostname. Simple for a demo or a small fleet, but one
  leaked copy lets its holder impersonate every NVR, and it can't be revoked without reconfiguring every agent.
  `NVRMON_FLEET_TOKEN=0` turns it off;
* per-NVR tokens (`nvrmon token create HOSTNAME`): speak for that hostname only, revocable one by one;
* enrollment tokens (`nvrmon token enroll --uses N`): each use registers one *new* hostname and hands that NVR its own
  per-NVR token in `welcome.agent_token`, which the agent keeps for every later connection.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from starlette.websockets import WebSocket

from nvrmon import protocol
from nvrmon.access.auth import Auth
from nvrmon.access.security import TokenBucket
from nvrmon.ingest.session import AgentSession
from nvrmon.protocol import ProtocolError
from nvrmon.settings import Settings
from nvrmon.store.credentials import AgentToken, AgentTokenKind, Credentials

PREFIXES: dict[AgentTokenKind, str] = {"nvr": "nvrt_", "enroll": "nvre_"}
MAX_USES = 100_000
MAX_TTL = 10 * 365 * 86400.0
# A connection whose frames keep coming faster than its rate is closed once this many were refused within the window.
REFUSAL_WINDOW = 10.0
BUSY = 1013  # "try again later"


class TokenError(ValueError):
    """A token operation that can't be done as asked; the message is meant for the operator."""


def new_token(kind: AgentTokenKind) -> str:
    return PREFIXES[kind] + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    # SHA-256, not argon2: these tokens carry 256 random bits, so no guessing attack gets anywhere near them, and a
    # fast hash lets every agent (re)connect look its token up by hash in one indexed read. A slow, salted hash only
    # helps low-entropy secrets such as passwords (and would cost each reconnect storm 64 MiB and 50 ms per agent).
    return hashlib.sha256(token.encode()).hexdigest()


def parse_duration(text: str) -> float:
    """'90d', '12h', '30m', '45s', '2w' → seconds."""
    match = re.fullmatch(r"\s*(\d{1,6})\s*([smhdw])\s*", text or "")
    if match is None:
        raise TokenError(f"{text!r} is not a duration such as 30m, 12h, 7d or 2w")
    seconds = int(match[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match[2]]
    if not 0 < seconds <= MAX_TTL:
        raise TokenError("a lifetime is between 1 s and 10 years")
    return float(seconds)


def check_hostname(hostname: str) -> str:
    try:
        protocol.parse_message(
            {"type": "hello", "protocol": protocol.PROTOCOL_VERSION, "nvr": {"hostname": hostname}}, max_cameras=0
        )
    except ProtocolError as exc:
        raise TokenError(f"not a valid NVR hostname: {exc.message}") from None
    if hostname != hostname.strip():
        raise TokenError("a hostname has no leading or trailing spaces")
    return hostname


async def create_nvr_token(credentials: Credentials, hostname: str, ttl: float = 0.0) -> tuple[str, int]:
    """A token for one hostname (several may coexist, for rotation); returns (token, id). The token is shown once."""
    check_hostname(hostname)
    token = new_token("nvr")
    now = time.time()
    token_id = await credentials.add_agent_token(
        "nvr", hostname, hash_token(token), token[:9], now, now + ttl if ttl else 0.0
    )
    return token, token_id


async def create_enrollment_token(credentials: Credentials, uses: int, ttl: float) -> tuple[str, int]:
    if not 1 <= uses <= MAX_USES:
        raise TokenError(f"--uses is 1 to {MAX_USES}")
    token = new_token("enroll")
    now = time.time()
    token_id = await credentials.add_agent_token("enroll", None, hash_token(token), token[:9], now, now + ttl, uses)
    return token, token_id


def state(token: AgentToken, now: float) -> str:
    if token.revoked:
        return "revoked"
    if token.expires and now >= token.expires:
        return "expired"
    if token.kind == "enroll" and not token.uses_left:
        return "used up"
    return "active" if token.kind == "nvr" else f"{token.uses_left} uses left"


@dataclass(slots=True)
class Grant:
    """What a connection's token allows: any hostname (fleet), one hostname (nvr), or enrolling a new one."""

    kind: Literal["fleet", "nvr", "enroll"]
    token_id: int = 0
    hostname: str | None = None


async def authenticate(websocket: WebSocket) -> Grant | None:
    header = websocket.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given or len(given) > 256:
        return None
    settings: Settings = websocket.state.settings
    shared: str = websocket.state.agent_token
    if settings.fleet_token and shared and hmac.compare_digest(given.encode(), shared.encode()):
        return Grant("fleet")
    auth: Auth = websocket.state.auth
    found = await auth.credentials.agent_token(hash_token(given))
    now = time.time()
    if found is None or not found.usable(now):
        return None
    if now - found.last_used > 60:  # at most a write a minute per token, even through a reconnect storm
        await auth.credentials.mark_agent_token_used(found.id, now)
    return Grant(found.kind, found.id, found.hostname)


async def admit(websocket: WebSocket) -> AgentAccess | None:
    """Authenticate and count the connection; None when it was refused (and has been answered)."""
    grant = await authenticate(websocket)
    if grant is None:
        # Closing before accept refuses the upgrade (HTTP 403): nothing about the fleet changes.
        await websocket.close(code=1008, reason="missing, wrong, revoked or expired agent token")
        return None
    auth: Auth = websocket.state.auth
    if not auth.agent_gate.acquire():
        await websocket.accept()
        limit = auth.agent_gate.limit
        await websocket.send_text(protocol.error_frame("server_busy", f"this hub serves at most {limit} agents now"))
        await websocket.close(code=BUSY, reason="try again later")
        return None
    await websocket.accept()
    return AgentAccess(grant, auth, websocket.state.settings)


def _nothing() -> None:
    pass


class AgentAccess:
    """One agent connection's rights (which hostname it may speak for) and limits (its frame rate)."""

    def __init__(self, grant: Grant, auth: Auth, settings: Settings) -> None:
        self.grant = grant
        self.auth = auth
        now = time.monotonic()
        self._bucket = TokenBucket(settings.agent_rate, max(1, settings.agent_burst), now)
        self._limit = max(1, settings.agent_burst)
        self._refused = 0
        self._window_start = now
        self._last_report = 0.0
        self._issued = ""
        self._session: AgentSession | None = None
        self._release_watch: Callable[[], None] = _nothing

    def watch(self, session: AgentSession) -> None:
        """Close this connection as soon as its token is revoked or expires (checked by nvrmon.access.revocation)."""
        self._session = session
        self._release_watch()
        if self.grant.token_id:
            self._release_watch = self.auth.revocations.hold("agent", self.grant.token_id, self._revoked)

    def _revoked(self) -> None:
        if self._session is not None:
            self._session.post(protocol.error_frame("token_revoked", "this agent token was revoked or has expired"))
            self._session.post((1008, "token revoked"))

    def release(self) -> None:
        self._release_watch()
        self.auth.agent_gate.release()

    def frame(self, session: AgentSession) -> Literal["ok", "drop", "close"]:
        """Spend one frame of the budget. Over it, the frame is dropped (an error frame at most once a second); a
        connection that keeps sending regardless is closed."""
        now = time.monotonic()
        if self._bucket.take(now):
            return "ok"
        if now - self._window_start > REFUSAL_WINDOW:
            self._window_start, self._refused = now, 0
        self._refused += 1
        rate = self._bucket.rate
        if self._refused > self._limit:
            session.post(protocol.error_frame("rate_limited", f"still above {rate:g} frames/s; closing"))
            session.post((1008, "rate limit exceeded"))
            return "close"
        if now - self._last_report >= 1.0:
            self._last_report = now
            session.post(protocol.error_frame("rate_limited", f"more than {rate:g} frames/s: frames are dropped"))
        return "drop"

    async def claim(self, hostname: str) -> ProtocolError | None:
        """May this connection speak for `hostname`? Enrollment happens here (once per new hostname)."""
        grant = self.grant
        if grant.kind == "fleet" or (grant.kind == "nvr" and grant.hostname == hostname):
            return None
        if grant.kind == "nvr":
            return ProtocolError("hostname_not_allowed", "this agent token belongs to another hostname")
        token = new_token("nvr")
        credentials = self.auth.credentials
        if not await credentials.enroll(grant.token_id, hostname, hash_token(token), token[:9], time.time()):
            return ProtocolError(
                "enrollment_refused", "the enrollment token is used up or expired, or this hostname is registered"
            )
        issued = await credentials.agent_token(hash_token(token))
        assert issued is not None
        self.grant = Grant("nvr", issued.id, hostname)
        self._issued = token
        if self._session is not None:
            self.watch(self._session)
        return None

    def take_issued_token(self) -> str:
        """The token enrollment just issued, once (it goes out in `welcome`)."""
        token, self._issued = self._issued, ""
        return token
