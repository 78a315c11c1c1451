"""Stage 3, the audit log: an append-only record of who did what, when and from where; pruned only by retention.

Other modules record inside their own write transaction with `record(tx, ...)`, so the change and its audit entry
commit together (or neither does); code without a transaction at hand uses `AuditLog.add`.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from nvrmon.store.database import Database
from nvrmon.store.dialect import Connection

# Bounds of each field (longer values are cut, never refused: an audit entry must not make its action fail).
MAX_ACTOR, MAX_ACTION, MAX_TARGET, MAX_DETAIL, MAX_ADDRESS = 80, 64, 200, 1000, 64
MAX_PAGE = 500  # entries per page or per API response
MAX_EXPORT = 100_000  # one export's rows at most; narrow the filters (or the dates) for more
HORIZON_KEY = "audit_horizon"  # entries older than this may be deleted (the triggers in audit.sql check it)
COLUMNS = "id, ts, actor, action, target, detail, address"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    ts: float
    actor: str
    action: str
    target: str
    detail: str
    address: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Which entries to show: exact actor, action (or an action family: "user" matches "user.disable"), free text in
    target or detail, a time range, and a page."""

    actor: str = ""
    action: str = ""
    q: str = ""
    since: float = 0.0
    until: float = 0.0
    limit: int = 100
    offset: int = 0

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.actor:
            clauses.append("actor = ?")
            params.append(self.actor)
        if self.action:
            clauses.append("(action = ? OR action LIKE ? ESCAPE '\\')")
            params += [self.action, _like_prefix(self.action) + ".%"]
        if self.q:
            clauses.append("(instr(lower(target), ?) > 0 OR instr(lower(detail), ?) > 0 OR instr(lower(actor), ?) > 0)")
            params += [self.q.lower()] * 3
        if self.since:
            clauses.append("ts >= ?")
            params.append(self.since)
        if self.until:
            clauses.append("ts < ?")
            params.append(self.until)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _cut(value: object, limit: int) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return "".join(ch if ch.isprintable() else " " for ch in text[:limit])


async def record(
    tx: Connection,
    actor: str,
    action: str,
    target: str = "",
    detail: object = "",
    address: str = "",
    *,
    now: float | None = None,
) -> None:
    """Append one entry inside the caller's write transaction (`detail` may be a dict: it is stored as JSON)."""
    await tx.execute(
        "INSERT INTO audit_log (ts, actor, action, target, detail, address) VALUES (?, ?, ?, ?, ?, ?)",
        (
            time.time() if now is None else now,
            _cut(actor, MAX_ACTOR),
            _cut(action, MAX_ACTION),
            _cut(target, MAX_TARGET),
            _cut(detail, MAX_DETAIL),
            _cut(address, MAX_ADDRESS),
        ),
    )


class AuditLog:
    """Reads, appends (in a transaction of its own) and prunes the audit log over the shared Database."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def add(
        self,
        actor: str,
        action: str,
        target: str = "",
        detail: object = "",
        address: str = "",
        *,
        now: float | None = None,
    ) -> None:
        async with self.database.transaction() as tx:
            await record(tx, actor, action, target, detail, address, now=now)

    async def entries(self, query: AuditQuery) -> list[AuditEntry]:
        where, params = query.where()
        rows = await self.database.fetch_all(
            f"SELECT {COLUMNS} FROM audit_log{where} ORDER BY id DESC LIMIT ? OFFSET ?",
            [*params, min(query.limit, MAX_EXPORT), query.offset],
        )
        return [AuditEntry(*row) for row in rows]

    async def count(self, query: AuditQuery) -> int:
        where, params = query.where()
        row = await self.database.fetch_one(f"SELECT count(*) FROM audit_log{where}", params)
        return int(row[0]) if row else 0

    async def actions(self) -> list[str]:
        """The distinct actions recorded (for the filter's choices); a small set, read from the whole table."""
        rows = await self.database.fetch_all("SELECT DISTINCT action FROM audit_log ORDER BY action")
        return [str(row[0]) for row in rows]

    async def prune(self, before: float) -> int:
        """Delete entries older than `before` (the retention); the horizon only moves forward."""
        async with self.database.transaction() as tx:
            await tx.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
                "SET value = max(CAST(meta.value AS REAL), CAST(excluded.value AS REAL))",
                (HORIZON_KEY, repr(float(before))),
            )
            cursor = await tx.execute(
                "DELETE FROM audit_log WHERE ts < (SELECT CAST(value AS REAL) FROM meta WHERE key = ?)", (HORIZON_KEY,)
            )
            return int(cursor.rowcount)
