"""Stage 3, the database: the one owner of the SQLite connections that the fleet store and the credentials share."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

from nvrmon.store import inventory_rows

# 2: nvrs.removed (NVR tombstones); 3: audit_log, api_tokens, users.disabled; 4: device health (health.sql, camera
# reasons, detail, degraded); 5: the fleet inventory (inventory.sql, inventory_rows.migrate: nvrs.declared/tags/
# expected_cameras, cameras.declared/tags/missing); 6: incidents, incident_log, maintenance (incidents.sql), channels,
# outbox and delivery attempts (notify.sql), device_history, the availability intervals (history.sql)
# 7: hubs (cluster.sql) and nvrs.hub, the hub holding the NVR's agent socket
SCHEMA_VERSION = 7
SCRIPTS = (
    "schema.sql", "security.sql", "audit.sql", "api_tokens.sql", "health.sql", "inventory.sql", "incidents.sql",
    "notify.sql", "history.sql", "cluster.sql",
)  # fmt: skip
# Columns added to existing tables after version 1: a file from before them gets them by ALTER TABLE on open.
ADDED_COLUMNS = (
    ("nvrs", "removed", "INTEGER NOT NULL DEFAULT 0"),
    ("users", "disabled", "REAL NOT NULL DEFAULT 0"),
    ("nvrs", "degraded", "TEXT NOT NULL DEFAULT ''"),
    ("cameras", "status_reason", "TEXT NOT NULL DEFAULT ''"),
    ("cameras", "detail", "TEXT NOT NULL DEFAULT '{}'"),
    ("cameras", "degraded", "TEXT NOT NULL DEFAULT ''"),
    ("nvrs", "hub", "TEXT NOT NULL DEFAULT ''"),
    ("outbox", "claimed_by", "TEXT NOT NULL DEFAULT ''"),
)
BUSY_TIMEOUT_MS = 5000


class Database:
    """Two connections over one WAL file: a writer (one transaction at a time) and a query-only reader.

    Every write of the process, fleet batch or login alike, goes through `transaction`, so statements of two writers
    never interleave inside one transaction on the shared write connection. Other processes (the CLI next to a running
    hub) open their own Database on the same file; SQLite's own lock and busy_timeout order them.
    """

    backend = "sqlite"

    def __init__(self, writer: aiosqlite.Connection, reader: aiosqlite.Connection, path: Path, epoch: str) -> None:
        self._writer = writer
        self.reader = reader
        self.path = path
        self.epoch = epoch
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> Database:
        """Open (creating if needed) the database file; the CLI may run this before the hub ever started."""
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = await aiosqlite.connect(path, isolation_level=None)
        try:
            epoch = await _prepare(writer, path)
            reader = await aiosqlite.connect(path, isolation_level=None)
        except BaseException:
            await writer.close()
            raise
        try:
            await reader.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await reader.execute("PRAGMA query_only = 1")
        except BaseException:
            await reader.close()
            await writer.close()
            raise
        return cls(writer, reader, path, epoch)

    async def close(self) -> None:
        await self.reader.close()
        await self._writer.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE … COMMIT under the writer lock; on any error everything since BEGIN rolls back."""
        async with self._lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield self._writer
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            await self._writer.execute("COMMIT")

    def describe(self) -> str:
        return str(self.path)

    async def health(self) -> dict[str, object]:
        return {"backend": self.backend, "ok": True, "error": ""}

    async def wait_commit(self, timeout: float) -> None:
        """SQLite has no doorbell: another process's commit is found by looking again after `timeout` seconds."""
        await asyncio.sleep(timeout)

    async def fetch_one(self, sql: str, params: Iterable[Any] = ()) -> Any:
        cursor = await self.reader.execute(sql, tuple(params))
        return await cursor.fetchone()

    async def fetch_all(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        cursor = await self.reader.execute(sql, tuple(params))
        return list(await cursor.fetchall())

    async def meta(self, key: str) -> str | None:
        row = await self.fetch_one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    async def set_meta(self, key: str, value: str) -> None:
        async with self.transaction() as db:
            await db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


async def _prepare(writer: aiosqlite.Connection, path: Path) -> str:
    """PRAGMAs, schema and the meta rows, once per opened file; returns the database's epoch."""
    # WAL lets pages read while agents write; synchronous=NORMAL keeps every commit across a process crash (kill -9)
    # and only risks the last commits on power loss.
    await writer.execute("PRAGMA journal_mode = WAL")
    await writer.execute("PRAGMA synchronous = NORMAL")
    await writer.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    await writer.execute("PRAGMA foreign_keys = ON")
    cursor = await writer.execute("PRAGMA user_version")
    version_row = await cursor.fetchone()
    version = int(version_row[0]) if version_row else 0
    if version > SCHEMA_VERSION:
        raise RuntimeError(f"{path} has schema version {version}; this nvrmon knows up to {SCHEMA_VERSION}")
    package = resources.files("nvrmon.store")
    for script in SCRIPTS:
        await writer.executescript(package.joinpath(script).read_text())
    # CREATE TABLE IF NOT EXISTS kept an older file's tables as they were: add what they lack.
    for table, column, definition in ADDED_COLUMNS:
        cursor = await writer.execute("SELECT count(*) FROM pragma_table_info(?) WHERE name = ?", (table, column))
        found = await cursor.fetchone()
        if found is not None and not found[0]:
            await writer.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
    await inventory_rows.migrate(writer)
    await writer.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    await writer.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('epoch', ?), ('seq', 0), ('horizon', 0)",
        (secrets.token_hex(4),),
    )
    cursor = await writer.execute("SELECT value FROM meta WHERE key = 'epoch'")
    row = await cursor.fetchone()
    assert row is not None
    return str(row[0])
