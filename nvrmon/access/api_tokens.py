"""Access, API tokens: bearer tokens for scripts on /api, scoped read or operator, hashed at rest, revoked at once.

A request to an /api route with `Authorization: Bearer nvrapi_…` is that token's and nobody else's (a cookie
alongside is ignored). Its token is looked up by hash on every request, so a revocation (admin page or CLI, any
process) refuses the very next request. `last_used` is written at most once a minute per token, so a script polling
every second does not turn each read into a write.
"""

from __future__ import annotations

import re
import secrets
import time

from nvrmon.access.accounts import NAME
from nvrmon.access.agent_tokens import hash_token
from nvrmon.access.sessions import Identity
from nvrmon.store.api_tokens import API_SCOPES, ApiScope, ApiToken, ApiTokenTables
from nvrmon.store.credentials import Role
from nvrmon.store.database import Database

PREFIX = "nvrapi_"
TOKEN_SHAPE = re.compile(r"nvrapi_[A-Za-z0-9_-]{40,48}")
TOUCH_INTERVAL = 60.0


class ApiTokenError(ValueError):
    """An API token operation that can't be done as asked; the message is meant for the operator."""


def check_scope(scope: str) -> ApiScope:
    for known in API_SCOPES:
        if scope == known:
            return known
    raise ApiTokenError(f"scope must be one of {', '.join(API_SCOPES)}")


async def create(database: Database, name: str, scope: str, *, actor: str, address: str) -> tuple[str, int]:
    """A new token; returns (token, id). The token is shown once: only its SHA-256 is kept (see hash_token for why
    a fast hash is right for 256 random bits)."""
    if not NAME.fullmatch(name):  # the rule of user names: a token's name shows where users' do (the audit log)
        raise ApiTokenError("a token name is 1-64 letters, digits or . _ @ -, starting with a letter or digit")
    valid = check_scope(scope)
    token = PREFIX + secrets.token_urlsafe(32)
    tables = ApiTokenTables(database)
    token_id = await tables.add(name, valid, hash_token(token), token[:11], time.time(), actor=actor, address=address)
    return token, token_id


def bearer(header: str) -> str:
    """The token of an `Authorization: Bearer …` header ("" when it is another scheme or malformed)."""
    scheme, _, value = header.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


async def identify(database: Database, header: str) -> Identity | None:
    """The identity of a bearer header, or None: not a token's shape, unknown, or revoked."""
    raw = bearer(header)
    if not TOKEN_SHAPE.fullmatch(raw):
        return None
    tables = ApiTokenTables(database)
    token = await tables.by_hash(hash_token(raw))
    if token is None or token.revoked:
        return None
    now = time.time()
    if now - token.last_used >= TOUCH_INTERVAL:
        await tables.touch(token.id, now)
    return as_identity(token)


def as_identity(token: ApiToken) -> Identity:
    # A read token may do what a viewer may (and never a write: the guard refuses those first), an operator token
    # what an operator may. No token is an admin: administration stays with people, in the browser.
    role: Role = "operator" if token.scope == "operator" else "viewer"
    return Identity(0, f"token:{token.name}", role, "", "", token_scope=token.scope)
