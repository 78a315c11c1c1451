"""Access, the audit trail: who is acting (a user, an API token, the command line) and from where, and its retention.

Web handlers call `note(request, action, target, detail)` after a change; code that writes in a transaction of its
own calls `nvrmon.store.audit.record(tx, actor_of(identity), action, target, detail, client_address(request))`
inside it, so the change and its entry commit together.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import time

from starlette.requests import Request

from nvrmon.access.sessions import Auth, Identity
from nvrmon.settings import Settings
from nvrmon.store.audit import AuditLog

log = logging.getLogger("nvrmon.access.audit")

PRUNE_INTERVAL = 3600.0
CLI_ADDRESS = "local"


def client_address(request: Request) -> str:
    """The client's address. Behind a proxy named in NVRMON_TRUSTED_PROXIES uvicorn has already put the browser's
    address (X-Forwarded-For) here; from anyone else the header is ignored, so no one can claim another address."""
    return request.client.host if request.client else "unknown"


def actor_of(identity: Identity | None) -> str:
    """A user's name, or "token:NAME" for an API token (Identity.name already says so), or "anonymous"."""
    return identity.name if identity is not None else "anonymous"


def cli_actor() -> str:
    """Who ran a command: the command line has no login, so the operating system's user name stands for it."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


async def note(
    request: Request, action: str, target: str = "", detail: object = "", *, actor: str | None = None
) -> None:
    """Record what the request's identity just did (or `actor`, for a login that has no identity yet)."""
    auth: Auth = request.state.auth
    identity: Identity | None = getattr(request.state, "identity", None)
    who = actor if actor is not None else actor_of(identity)
    await AuditLog(auth.credentials.database).add(who, action, target, detail, client_address(request))


async def prune_loop(audit: AuditLog, settings: Settings) -> None:
    """Delete entries past `audit_retention_days`, hourly (0 keeps them all); owned by the application's lifespan."""
    while True:
        if settings.audit_retention_days > 0:
            try:
                gone = await audit.prune(time.time() - settings.audit_retention_days * 86400)
                if gone:
                    log.info("pruned %d audit entries older than %g days", gone, settings.audit_retention_days)
            except Exception:
                log.exception("audit pruning failed; trying again in an hour")
        await asyncio.sleep(PRUNE_INTERVAL)
