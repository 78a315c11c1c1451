"""Stage 3, the API token table: bearer tokens for scripts (read or operator), each change audited as it commits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nvrmon.store.audit import record
from nvrmon.store.database import Database
from nvrmon.store.errors import conflicts
from nvrmon.store.security_rows import Conflict

ApiScope = Literal["read", "operator"]
API_SCOPES: tuple[ApiScope, ...] = ("read", "operator")
COLUMNS = "id, name, scope, prefix, created, created_by, last_used, revoked"


@dataclass(frozen=True, slots=True)
class ApiToken:
    id: int
    name: str
    scope: ApiScope
    prefix: str
    created: float
    created_by: str
    last_used: float
    revoked: float


class ApiTokenTables:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def add(
        self, name: str, scope: ApiScope, token_hash: str, prefix: str, now: float, *, actor: str, address: str
    ) -> int:
        try:
            async with self.database.transaction() as tx:
                cursor = await tx.execute(
                    "INSERT INTO api_tokens (name, scope, token_hash, prefix, created, created_by) "
                    "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                    (name, scope, token_hash, prefix, now, actor),
                )
                row = await cursor.fetchone()
                assert row is not None
                await record(tx, actor, "api_token.create", name, f"scope {scope}, id {row[0]}", address, now=now)
        except conflicts():
            raise Conflict(f"an API token named {name!r} exists already (revoke it first)") from None
        return int(row[0])

    async def by_hash(self, token_hash: str) -> ApiToken | None:
        row = await self.database.fetch_one(f"SELECT {COLUMNS} FROM api_tokens WHERE token_hash = ?", (token_hash,))
        return None if row is None else ApiToken(*row)

    async def all(self) -> list[ApiToken]:
        rows = await self.database.fetch_all(f"SELECT {COLUMNS} FROM api_tokens ORDER BY revoked != 0, name, id")
        return [ApiToken(*row) for row in rows]

    async def revoke(self, target: str, now: float, *, actor: str, address: str) -> ApiToken | None:
        """Revoke the live token with this id or name; the next request carrying it is refused (no cache)."""
        where, param = ("id = ?", int(target)) if target.isdigit() else ("name = ?", target)
        async with self.database.transaction() as tx:
            cursor = await tx.execute(
                f"UPDATE api_tokens SET revoked = ? WHERE {where} AND revoked = 0 RETURNING {COLUMNS}", (now, param)
            )
            row = await cursor.fetchone()
            if row is None:
                return None
            token = ApiToken(*row)
            await record(tx, actor, "api_token.revoke", token.name, f"scope {token.scope}, id {token.id}", address)
        return token

    async def touch(self, token_id: int, now: float) -> None:
        async with self.database.transaction() as tx:
            await tx.execute("UPDATE api_tokens SET last_used = ? WHERE id = ?", (now, token_id))
