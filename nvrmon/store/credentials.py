"""Stage 3, the security store: accounts and sessions (tokens in tokens.py), over the shared database."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from nvrmon.store.audit import record
from nvrmon.store.database import POOL_SIZE, Database
from nvrmon.store.dialect import Connection
from nvrmon.store.errors import conflicts
from nvrmon.store.security_rows import (
    GENERATION_KEY,
    ROLES,
    USER_COLUMNS,
    AgentToken,
    AgentTokenKind,
    Conflict,
    EmbedToken,
    EmbedView,
    Role,
    SessionRecord,
    User,
    bump_generation,
)
from nvrmon.store.tokens import TokenTables

# The access layer and the CLI name the security vocabulary as this module's.
__all__ = [
    "GENERATION_KEY", "ROLES", "AgentToken", "AgentTokenKind", "Conflict", "Credentials", "EmbedToken", "EmbedView",
    "Role", "SessionRecord", "User", "UserChange",
]  # fmt: skip


UserChange = Literal["delete", "disable", "enable", "role"]


class Credentials(TokenTables):
    """The security tables over a Database shared with the fleet store: writes take its writer lock, so a login never
    joins (or runs inside) a hub batch transaction; reads use its reader and never wait for a write."""

    def __init__(self, database: Database, *, owned: bool = False) -> None:
        super().__init__(database)
        self._owned = owned  # opened by Credentials.open: closing closes the database too

    @classmethod
    async def open(cls, path: Path | str, *, pool_size: int = POOL_SIZE) -> Credentials:
        """Credentials with a Database of their own (the CLI, tests); the hub hands its shared Database instead."""
        return cls(await Database.open(path, pool_size=pool_size), owned=True)

    async def close(self) -> None:
        if self._owned:
            await self.database.close()

    # -- meta -------------------------------------------------------------------------------------------------------

    async def meta_value(self, key: str, default: str) -> str:
        """The stored value for `key`, storing `default` first if there is none (first writer wins)."""
        async with self.database.transaction() as db:
            await db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING", (key, default))
            cursor = await db.execute("SELECT value FROM meta WHERE key = ?", (key,))
            row = await cursor.fetchone()
        assert row is not None
        return str(row[0])

    async def generation(self) -> int:
        return int(await self.database.meta(GENERATION_KEY) or 0)

    # -- users ------------------------------------------------------------------------------------------------------

    async def add_user(
        self, name: str, role: Role, password_hash: str, now: float, *, actor: str = "", address: str = ""
    ) -> int:
        """Add an account; with an `actor`, audited in the same transaction."""
        try:
            async with self.database.transaction() as db:
                cursor = await db.execute(
                    "INSERT INTO users (name, role, password_hash, created, password_changed) VALUES (?, ?, ?, ?, ?) "
                    "RETURNING id",
                    (name, role, password_hash, now, now),
                )
                row = await cursor.fetchone()
                if actor:
                    await record(db, actor, "user.create", name, f"role {role}", address, now=now)
        except conflicts():
            raise Conflict(f"user {name!r} exists already") from None
        assert row is not None
        return int(row[0])

    async def user(self, name: str) -> User | None:
        row = await self.database.fetch_one(f"SELECT {USER_COLUMNS} FROM users WHERE name = ?", (name,))
        return None if row is None else User(*row)

    async def users(self) -> list[User]:
        return [User(*row) for row in await self.database.fetch_all(f"SELECT {USER_COLUMNS} FROM users ORDER BY name")]

    async def set_password(
        self, name: str, password_hash: str, now: float, *, actor: str = "", address: str = ""
    ) -> bool:
        """Replace a password and end every session of that user (a changed password must lock out a thief)."""
        async with self.database.transaction() as db:
            cursor = await db.execute(
                "UPDATE users SET password_hash = ?, password_changed = ? WHERE name = ? RETURNING id",
                (password_hash, now, name),
            )
            done = await _end_sessions(db, await cursor.fetchone())
            if done and actor:
                await record(db, actor, "user.password", name, "password reset; sessions ended", address, now=now)
            return done

    async def change_user(
        self, name: str, change: UserChange, *, role: Role | None = None, actor: str, address: str, now: float
    ) -> User | None:
        """Delete, disable, enable or re-role an account, audited in the same transaction; None: no such user.

        Refused (Conflict) when it would leave no enabled admin: checked and written under the writer lock, so two
        admins demoting each other at once can't both succeed. Deleting or disabling ends the account's sessions.
        """
        async with self.database.transaction() as db:
            cursor = await db.execute(f"SELECT {USER_COLUMNS} FROM users WHERE name = ?", (name,))
            row = await cursor.fetchone()
            if row is None:
                return None
            user = User(*row)
            keeps_admin = change == "enable" or (change == "role" and role == "admin")
            if user.role == "admin" and not user.disabled and not keeps_admin:
                cursor = await db.execute(
                    "SELECT count(*) FROM users WHERE role = 'admin' AND disabled = 0 AND id != ?", (user.id,)
                )
                others = await cursor.fetchone()
                if others is None or not others[0]:
                    raise Conflict(f"{user.name} is the last enabled admin; make another admin first")
            detail = ""
            if change == "delete":
                await db.execute("DELETE FROM users WHERE id = ?", (user.id,))
                await _end_sessions(db, row)
            elif change == "disable":
                await db.execute("UPDATE users SET disabled = ? WHERE id = ?", (now, user.id))
                await _end_sessions(db, row)
            elif change == "enable":
                await db.execute("UPDATE users SET disabled = 0 WHERE id = ?", (user.id,))
            else:
                assert role is not None
                await db.execute("UPDATE users SET role = ? WHERE id = ?", (role, user.id))
                detail = f"{user.role} -> {role}"
            await record(db, actor, f"user.{change}", user.name, detail, address, now=now)
        return user

    async def rehash(self, user_id: int, password_hash: str) -> None:
        """Store a stronger hash of the same password (argon2 parameters were raised); sessions stay."""
        async with self.database.transaction() as db:
            await db.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))

    async def remove_user(self, name: str) -> bool:
        async with self.database.transaction() as db:
            cursor = await db.execute("DELETE FROM users WHERE name = ? RETURNING id", (name,))
            return await _end_sessions(db, await cursor.fetchone())

    # -- sessions ---------------------------------------------------------------------------------------------------

    async def create_session(self, session_hash: str, user_id: int, now: float, remote: str) -> None:
        async with self.database.transaction() as db:
            await db.execute(
                "INSERT INTO sessions (id, user_id, created, last_seen, remote) VALUES (?, ?, ?, ?, ?)",
                (session_hash, user_id, now, now, remote[:64]),
            )

    async def session(self, session_hash: str) -> SessionRecord | None:
        row = await self.database.fetch_one(
            "SELECT s.user_id, u.name, u.role, s.created, s.last_seen FROM sessions s JOIN users u ON u.id = s.user_id "
            "WHERE s.id = ? AND u.disabled = 0",
            (session_hash,),
        )
        return None if row is None else SessionRecord(*row)

    async def touch_session(self, session_hash: str, now: float) -> None:
        async with self.database.transaction() as db:
            await db.execute("UPDATE sessions SET last_seen = ? WHERE id = ?", (now, session_hash))

    async def touch_sessions(self, hashes: Iterable[str], now: float) -> None:
        """Sessions with an open live stream are in use even without new requests (a wall display)."""
        keys = sorted(set(hashes))
        if keys:
            async with self.database.transaction() as db:
                await db.execute(
                    "UPDATE sessions SET last_seen = ? WHERE id IN (SELECT value FROM json_each(?))",
                    (now, json.dumps(keys)),
                )

    async def delete_session(self, session_hash: str) -> bool:
        async with self.database.transaction() as db:
            cursor = await db.execute("DELETE FROM sessions WHERE id = ? RETURNING id", (session_hash,))
            gone = await cursor.fetchone() is not None
            if gone:
                await bump_generation(db)
        return gone

    async def prune_sessions(self, idle_before: float, created_before: float) -> int:
        async with self.database.transaction() as db:
            cursor = await db.execute(
                "DELETE FROM sessions WHERE last_seen < ? OR created < ?", (idle_before, created_before)
            )
            return int(cursor.rowcount)

    async def live_sessions(self, hashes: Iterable[str], idle_before: float, created_before: float) -> set[str]:
        """Which of these sessions still exist and are within both timeouts."""
        rows = await self.database.fetch_all(
            "SELECT id FROM sessions WHERE id IN (SELECT value FROM json_each(?)) AND last_seen >= ? AND created >= ?",
            (json.dumps(sorted(set(hashes))), idle_before, created_before),
        )
        return {str(row[0]) for row in rows}


async def _end_sessions(db: Connection, user: Any) -> bool:
    """Sign out every session of the user row just changed (None: no such user) and tell the hub."""
    if user is None:
        return False
    await db.execute("DELETE FROM sessions WHERE user_id = ?", (user[0],))
    await bump_generation(db)
    return True
