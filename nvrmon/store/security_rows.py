"""Stage 3, security rows: what the security tables hold (accounts, sessions, agent and embed tokens), as values."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from nvrmon.store.dialect import Connection

Role = Literal["viewer", "operator", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "admin")  # in order of power: each can do what the ones before can
EmbedView = Literal["kpis", "nvrs", "nvr"]
AgentTokenKind = Literal["nvr", "enroll"]

# Bumped by every revocation (user removed, password changed, logout, token revoked), whichever process made it: the
# hub polls it to end live connections that lost their right (see nvrmon/access/revocation.py).
GENERATION_KEY = "security_generation"

AGENT_COLUMNS = "id, kind, hostname, prefix, created, expires, uses_left, revoked, last_used"
EMBED_COLUMNS = "id, prefix, view, nvr_id, region, origins, label, created, expires, revoked, created_by"
USER_COLUMNS = "id, name, role, password_hash, created, password_changed, disabled"


class Conflict(ValueError):
    """The row exists already (a user name, an active token for a hostname), or the change would break a rule that
    spans rows (the last admin)."""


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    role: Role
    password_hash: str
    created: float
    password_changed: float
    disabled: float = 0.0  # when it was disabled; 0: enabled


@dataclass(frozen=True, slots=True)
class SessionRecord:
    user_id: int
    name: str
    role: Role
    created: float
    last_seen: float


@dataclass(frozen=True, slots=True)
class AgentToken:
    id: int
    kind: AgentTokenKind
    hostname: str | None
    prefix: str
    created: float
    expires: float
    uses_left: int | None
    revoked: float
    last_used: float

    def usable(self, now: float) -> bool:
        if self.revoked or (self.expires and now >= self.expires):
            return False
        return self.kind == "nvr" or (self.uses_left or 0) > 0


@dataclass(frozen=True, slots=True)
class EmbedToken:
    id: int
    prefix: str
    view: EmbedView
    nvr_id: int | None
    region: str | None
    origins: tuple[str, ...]
    label: str
    created: float
    expires: float
    revoked: float
    created_by: str

    def usable(self, now: float) -> bool:
        return not self.revoked and now < self.expires


def embed_token(row: Any) -> EmbedToken:
    origins = tuple(str(o) for o in json.loads(row[5]))
    return EmbedToken(row[0], row[1], row[2], row[3], row[4], origins, row[6], row[7], row[8], row[9], row[10])


async def bump_generation(db: Connection) -> None:
    """Inside the revoking write transaction, so the revocation and the signal to the hub commit together."""
    await db.execute(
        "INSERT INTO meta (key, value) VALUES (?, '1') "
        "ON CONFLICT (key) DO UPDATE SET value = CAST(meta.value AS INTEGER) + 1",
        (GENERATION_KEY,),
    )
