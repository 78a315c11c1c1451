"""Stage 3, the security store: accounts, sessions, agent and embed tokens in SQLite (the only SQL for them)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import aiosqlite

Role = Literal["viewer", "operator", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "admin")  # in order of power: each can do what the ones before can
EmbedView = Literal["kpis", "nvrs", "nvr"]
AgentTokenKind = Literal["nvr", "enroll"]

# Bumped by every revocation (user removed, password changed, logout, token revoked), whichever process made it: the
# hub polls it to end live connections that lost their right (see nvrmon/revocation.py).
GENERATION_KEY = "security_generation"


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    role: Role
    password_hash: str
    created: float
    password_changed: float


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


class Conflict(ValueError):
    """The row exists already (a user name, an active token for a hostname)."""


class Credentials:
    """One connection of its own, so that a login never joins (or waits inside) a hub batch transaction."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        # aiosqlite runs one statement at a time, but a multi-statement transaction spans awaits: one at a time.
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> Credentials:
        """Open (creating if needed) the hub's database; the CLI may run this before the hub ever started."""
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path, isolation_level=None)
        try:
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = NORMAL")
            await db.execute("PRAGMA busy_timeout = 5000")
            await db.execute("PRAGMA foreign_keys = ON")
            package = resources.files("nvrmon.store")
            await db.executescript(package.joinpath("schema.sql").read_text())
            await db.executescript(package.joinpath("security.sql").read_text())
        except BaseException:
            await db.close()
            raise
        return cls(db)

    async def close(self) -> None:
        await self._db.close()

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    async def _one(self, sql: str, params: Iterable[Any] = ()) -> Any:
        async with self._lock:
            cursor = await self._db.execute(sql, tuple(params))
            return await cursor.fetchone()

    async def _all(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        async with self._lock:
            cursor = await self._db.execute(sql, tuple(params))
            return list(await cursor.fetchall())

    @staticmethod
    async def _bump(db: aiosqlite.Connection) -> None:
        await db.execute(
            "INSERT INTO meta (key, value) VALUES (?, 1) ON CONFLICT (key) DO UPDATE SET value = value + 1",
            (GENERATION_KEY,),
        )

    # -- meta -------------------------------------------------------------------------------------------------------

    async def meta_value(self, key: str, default: str) -> str:
        """The stored value for `key`, storing `default` first if there is none (first writer wins)."""
        async with self._write() as db:
            await db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, default))
            cursor = await db.execute("SELECT value FROM meta WHERE key = ?", (key,))
            row = await cursor.fetchone()
        assert row is not None
        return str(row[0])

    async def generation(self) -> int:
        row = await self._one("SELECT value FROM meta WHERE key = ?", (GENERATION_KEY,))
        return int(row[0]) if row else 0

    # -- users ------------------------------------------------------------------------------------------------------

    async def add_user(self, name: str, role: Role, password_hash: str, now: float) -> int:
        try:
            async with self._write() as db:
                cursor = await db.execute(
                    "INSERT INTO users (name, role, password_hash, created, password_changed) VALUES (?, ?, ?, ?, ?) "
                    "RETURNING id",
                    (name, role, password_hash, now, now),
                )
                row = await cursor.fetchone()
        except aiosqlite.IntegrityError:
            raise Conflict(f"user {name!r} exists already") from None
        assert row is not None
        return int(row[0])

    async def user(self, name: str) -> User | None:
        row = await self._one(
            "SELECT id, name, role, password_hash, created, password_changed FROM users WHERE name = ?", (name,)
        )
        return None if row is None else User(*row)

    async def users(self) -> list[User]:
        rows = await self._all(
            "SELECT id, name, role, password_hash, created, password_changed FROM users ORDER BY name"
        )
        return [User(*row) for row in rows]

    async def set_password(self, name: str, password_hash: str, now: float) -> bool:
        """Replace a password and end every session of that user (a changed password must lock out a thief)."""
        async with self._write() as db:
            cursor = await db.execute(
                "UPDATE users SET password_hash = ?, password_changed = ? WHERE name = ? RETURNING id",
                (password_hash, now, name),
            )
            return await self._end_sessions(db, await cursor.fetchone())

    async def _end_sessions(self, db: aiosqlite.Connection, user: Any) -> bool:
        """Sign out every session of the user row just changed (None: no such user) and tell the hub."""
        if user is None:
            return False
        await db.execute("DELETE FROM sessions WHERE user_id = ?", (user[0],))
        await self._bump(db)
        return True

    async def rehash(self, user_id: int, password_hash: str) -> None:
        """Store a stronger hash of the same password (argon2 parameters were raised); sessions stay."""
        async with self._write() as db:
            await db.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))

    async def remove_user(self, name: str) -> bool:
        async with self._write() as db:
            cursor = await db.execute("DELETE FROM users WHERE name = ? RETURNING id", (name,))
            return await self._end_sessions(db, await cursor.fetchone())

    # -- sessions ---------------------------------------------------------------------------------------------------

    async def create_session(self, session_hash: str, user_id: int, now: float, remote: str) -> None:
        async with self._write() as db:
            await db.execute(
                "INSERT INTO sessions (id, user_id, created, last_seen, remote) VALUES (?, ?, ?, ?, ?)",
                (session_hash, user_id, now, now, remote[:64]),
            )

    async def session(self, session_hash: str) -> SessionRecord | None:
        row = await self._one(
            "SELECT s.user_id, u.name, u.role, s.created, s.last_seen FROM sessions s JOIN users u ON u.id = s.user_id "
            "WHERE s.id = ?",
            (session_hash,),
        )
        return None if row is None else SessionRecord(*row)

    async def touch_session(self, session_hash: str, now: float) -> None:
        async with self._write() as db:
            await db.execute("UPDATE sessions SET last_seen = ? WHERE id = ?", (now, session_hash))

    async def touch_sessions(self, hashes: Iterable[str], now: float) -> None:
        """Sessions with an open live stream are in use even without new requests (a wall display)."""
        keys = sorted(set(hashes))
        if keys:
            async with self._write() as db:
                await db.execute(
                    "UPDATE sessions SET last_seen = ? WHERE id IN (SELECT value FROM json_each(?))",
                    (now, json.dumps(keys)),
                )

    async def delete_session(self, session_hash: str) -> bool:
        async with self._write() as db:
            cursor = await db.execute("DELETE FROM sessions WHERE id = ? RETURNING id", (session_hash,))
            gone = await cursor.fetchone() is not None
            if gone:
                await self._bump(db)
        return gone

    async def prune_sessions(self, idle_before: float, created_before: float) -> int:
        async with self._write() as db:
            cursor = await db.execute(
                "DELETE FROM sessions WHERE last_seen < ? OR created < ?", (idle_before, created_before)
            )
            return int(cursor.rowcount)

    async def live_sessions(self, hashes: Iterable[str], idle_before: float, created_before: float) -> set[str]:
        """Which of these sessions still exist and are within both timeouts."""
        rows = await self._all(
            "SELECT id FROM sessions WHERE id IN (SELECT value FROM json_each(?)) AND last_seen >= ? AND created >= ?",
            (json.dumps(sorted(set(hashes))), idle_before, created_before),
        )
        return {str(row[0]) for row in rows}

    # -- agent tokens -----------------------------------------------------------------------------------------------

    _AGENT_COLUMNS = "id, kind, hostname, prefix, created, expires, uses_left, revoked, last_used"

    async def add_agent_token(
        self,
        kind: AgentTokenKind,
        hostname: str | None,
        token_hash: str,
        prefix: str,
        now: float,
        expires: float = 0.0,
        uses: int | None = None,
    ) -> int:
        async with self._write() as db:
            cursor = await db.execute(
                "INSERT INTO agent_tokens (kind, hostname, token_hash, prefix, created, expires, uses_left) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (kind, hostname, token_hash, prefix, now, expires, uses),
            )
            row = await cursor.fetchone()
        assert row is not None
        return int(row[0])

    async def agent_token(self, token_hash: str) -> AgentToken | None:
        row = await self._one(f"SELECT {self._AGENT_COLUMNS} FROM agent_tokens WHERE token_hash = ?", (token_hash,))
        return None if row is None else AgentToken(*row)

    async def agent_tokens(self) -> list[AgentToken]:
        rows = await self._all(f"SELECT {self._AGENT_COLUMNS} FROM agent_tokens ORDER BY kind DESC, hostname, id")
        return [AgentToken(*row) for row in rows]

    async def revoke_agent_tokens(self, target: str, now: float) -> int:
        """Revoke by numeric id, or every live token of a hostname; returns how many were revoked."""
        where, param = ("id = ?", int(target)) if target.isdigit() else ("hostname = ?", target)
        async with self._write() as db:
            cursor = await db.execute(
                f"UPDATE agent_tokens SET revoked = ? WHERE {where} AND revoked = 0 RETURNING id", (now, param)
            )
            count = len(list(await cursor.fetchall()))
            if count:
                await self._bump(db)
        return count

    async def mark_agent_token_used(self, token_id: int, now: float) -> None:
        async with self._write() as db:
            await db.execute("UPDATE agent_tokens SET last_used = ? WHERE id = ?", (now, token_id))

    async def enroll(self, enroll_id: int, hostname: str, token_hash: str, prefix: str, now: float) -> bool:
        """Spend one use of an enrollment token on a new NVR and give that NVR its own token, atomically.

        Refused when the enrollment token is used up, revoked or expired, or when the hostname is known already (an
        NVR row or a live token): enrollment creates NVRs, it never takes one over.
        """
        async with self._write() as db:
            cursor = await db.execute(
                "UPDATE agent_tokens SET uses_left = uses_left - 1, last_used = ? WHERE id = ? AND kind = 'enroll' "
                "AND revoked = 0 AND (expires = 0 OR expires > ?) AND uses_left > 0 RETURNING id",
                (now, enroll_id, now),
            )
            if await cursor.fetchone() is None:
                return False
            cursor = await db.execute(
                "SELECT (SELECT count(*) FROM nvrs WHERE hostname = ?) + (SELECT count(*) FROM agent_tokens "
                "WHERE hostname = ? AND revoked = 0 AND (expires = 0 OR expires > ?))",
                (hostname, hostname, now),
            )
            row = await cursor.fetchone()
            if row is None or int(row[0]) > 0:
                await db.execute("UPDATE agent_tokens SET uses_left = uses_left + 1 WHERE id = ?", (enroll_id,))
                return False
            await db.execute(
                "INSERT INTO agent_tokens (kind, hostname, token_hash, prefix, created, last_used) "
                "VALUES ('nvr', ?, ?, ?, ?, ?)",
                (hostname, token_hash, prefix, now, now),
            )
        return True

    async def usable_agent_tokens(self, ids: Iterable[int], now: float) -> set[int]:
        rows = await self._all(
            "SELECT id FROM agent_tokens WHERE id IN (SELECT value FROM json_each(?)) AND revoked = 0 "
            "AND (expires = 0 OR expires > ?)",
            (json.dumps(sorted(set(ids))), now),
        )
        return {int(row[0]) for row in rows}

    # -- embed tokens -----------------------------------------------------------------------------------------------

    _EMBED_COLUMNS = "id, prefix, view, nvr_id, region, origins, label, created, expires, revoked, created_by"

    async def add_embed(
        self,
        token_hash: str,
        prefix: str,
        view: EmbedView,
        *,
        nvr_id: int | None,
        region: str | None,
        origins: Iterable[str],
        label: str,
        now: float,
        expires: float,
        created_by: str,
    ) -> int:
        async with self._write() as db:
            cursor = await db.execute(
                "INSERT INTO embed_tokens (token_hash, prefix, view, nvr_id, region, origins, label, created, expires, "
                "created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (token_hash, prefix, view, nvr_id, region, json.dumps(list(origins)), label, now, expires, created_by),
            )
            row = await cursor.fetchone()
        assert row is not None
        return int(row[0])

    async def embed(self, token_hash: str) -> EmbedToken | None:
        row = await self._one(f"SELECT {self._EMBED_COLUMNS} FROM embed_tokens WHERE token_hash = ?", (token_hash,))
        return None if row is None else _embed(row)

    async def embeds(self) -> list[EmbedToken]:
        rows = await self._all(f"SELECT {self._EMBED_COLUMNS} FROM embed_tokens ORDER BY id DESC")
        return [_embed(row) for row in rows]

    async def revoke_embed(self, embed_id: int, now: float) -> bool:
        async with self._write() as db:
            cursor = await db.execute(
                "UPDATE embed_tokens SET revoked = ? WHERE id = ? AND revoked = 0 RETURNING id", (now, embed_id)
            )
            done = await cursor.fetchone() is not None
            if done:
                await self._bump(db)
        return done

    async def usable_embeds(self, ids: Iterable[int], now: float) -> set[int]:
        rows = await self._all(
            "SELECT id FROM embed_tokens WHERE id IN (SELECT value FROM json_each(?)) AND revoked = 0 AND expires > ?",
            (json.dumps(sorted(set(ids))), now),
        )
        return {int(row[0]) for row in rows}


def _embed(row: Any) -> EmbedToken:
    origins = tuple(str(o) for o in json.loads(row[5]))
    return EmbedToken(row[0], row[1], row[2], row[3], row[4], origins, row[6], row[7], row[8], row[9], row[10])
