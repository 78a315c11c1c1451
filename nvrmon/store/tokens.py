"""Stage 3, token tables: the SQL of agent tokens (per NVR, enrollment) and embed tokens, over the shared Database."""

from __future__ import annotations

import json
from collections.abc import Iterable

from nvrmon.store.database import Database
from nvrmon.store.security_rows import (
    AGENT_COLUMNS,
    EMBED_COLUMNS,
    AgentToken,
    AgentTokenKind,
    EmbedToken,
    EmbedView,
    bump_generation,
    embed_token,
)


class TokenTables:
    """Agent and embed tokens; the accounts half of the security tables is Credentials, which builds on this."""

    def __init__(self, database: Database) -> None:
        self.database = database

    # -- agent tokens -----------------------------------------------------------------------------------------------

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
        async with self.database.transaction() as db:
            cursor = await db.execute(
                "INSERT INTO agent_tokens (kind, hostname, token_hash, prefix, created, expires, uses_left) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (kind, hostname, token_hash, prefix, now, expires, uses),
            )
            row = await cursor.fetchone()
        assert row is not None
        return int(row[0])

    async def agent_token(self, token_hash: str) -> AgentToken | None:
        row = await self.database.fetch_one(
            f"SELECT {AGENT_COLUMNS} FROM agent_tokens WHERE token_hash = ?", (token_hash,)
        )
        return None if row is None else AgentToken(*row)

    async def agent_tokens(self) -> list[AgentToken]:
        rows = await self.database.fetch_all(
            f"SELECT {AGENT_COLUMNS} FROM agent_tokens ORDER BY kind DESC, hostname, id"
        )
        return [AgentToken(*row) for row in rows]

    async def revoke_agent_tokens(self, target: str, now: float) -> int:
        """Revoke by numeric id, or every live token of a hostname; returns how many were revoked."""
        where, param = ("id = ?", int(target)) if target.isdigit() else ("hostname = ?", target)
        async with self.database.transaction() as db:
            cursor = await db.execute(
                f"UPDATE agent_tokens SET revoked = ? WHERE {where} AND revoked = 0 RETURNING id", (now, param)
            )
            count = len(list(await cursor.fetchall()))
            if count:
                await bump_generation(db)
        return count

    async def mark_agent_token_used(self, token_id: int, now: float) -> None:
        async with self.database.transaction() as db:
            await db.execute("UPDATE agent_tokens SET last_used = ? WHERE id = ?", (now, token_id))

    async def enroll(self, enroll_id: int, hostname: str, token_hash: str, prefix: str, now: float) -> bool:
        """Spend one use of an enrollment token on a new NVR and give that NVR its own token, atomically.

        Refused when the enrollment token is used up, revoked or expired, or when the hostname is known already (an
        NVR row or a live token): enrollment creates NVRs, it never takes one over.
        """
        async with self.database.transaction() as db:
            cursor = await db.execute(
                "UPDATE agent_tokens SET uses_left = uses_left - 1, last_used = ? WHERE id = ? AND kind = 'enroll' "
                "AND revoked = 0 AND (expires = 0 OR expires > ?) AND uses_left > 0 RETURNING id",
                (now, enroll_id, now),
            )
            if await cursor.fetchone() is None:
                return False
            cursor = await db.execute(
                "SELECT (SELECT count(*) FROM nvrs WHERE hostname = ? AND removed = 0) "
                "+ (SELECT count(*) FROM agent_tokens WHERE hostname = ? AND revoked = 0 "
                "AND (expires = 0 OR expires > ?))",
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
        rows = await self.database.fetch_all(
            "SELECT id FROM agent_tokens WHERE id IN (SELECT value FROM json_each(?)) AND revoked = 0 "
            "AND (expires = 0 OR expires > ?)",
            (json.dumps(sorted(set(ids))), now),
        )
        return {int(row[0]) for row in rows}

    # -- embed tokens -----------------------------------------------------------------------------------------------

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
        async with self.database.transaction() as db:
            cursor = await db.execute(
                "INSERT INTO embed_tokens (token_hash, prefix, view, nvr_id, region, origins, label, created, expires, "
                "created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (token_hash, prefix, view, nvr_id, region, json.dumps(list(origins)), label, now, expires, created_by),
            )
            row = await cursor.fetchone()
        assert row is not None
        return int(row[0])

    async def embed(self, token_hash: str) -> EmbedToken | None:
        row = await self.database.fetch_one(
            f"SELECT {EMBED_COLUMNS} FROM embed_tokens WHERE token_hash = ?", (token_hash,)
        )
        return None if row is None else embed_token(row)

    async def embeds(self) -> list[EmbedToken]:
        rows = await self.database.fetch_all(f"SELECT {EMBED_COLUMNS} FROM embed_tokens ORDER BY id DESC")
        return [embed_token(row) for row in rows]

    async def revoke_embed(self, embed_id: int, now: float) -> bool:
        async with self.database.transaction() as db:
            cursor = await db.execute(
                "UPDATE embed_tokens SET revoked = ? WHERE id = ? AND revoked = 0 RETURNING id", (now, embed_id)
            )
            done = await cursor.fetchone() is not None
            if done:
                await bump_generation(db)
        return done

    async def usable_embeds(self, ids: Iterable[int], now: float) -> set[int]:
        rows = await self.database.fetch_all(
            "SELECT id FROM embed_tokens WHERE id IN (SELECT value FROM json_each(?)) AND revoked = 0 AND expires > ?",
            (json.dumps(sorted(set(ids))), now),
        )
        return {int(row[0]) for row in rows}
