"""Stage 3, the database: the one owner of the SQLite or PostgreSQL connections the store modules share."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import aiosqlite

from nvrmon.store import inventory_rows, postgres
from nvrmon.store.dialect import Connection
from nvrmon.store.inline import InlineConnection

if TYPE_CHECKING:
    import asyncpg

log = logging.getLogger(__name__)

# 2: nvrs.removed (NVR tombstones); 3: audit_log, api_tokens, users.disabled; 4: device health (health.sql, camera
# reasons, detail, degraded); 5: the fleet inventory (inventory.sql, inventory_rows.migrate: nvrs.declared/tags/
# expected_cameras, cameras.declared/tags/missing); 6: incidents, incident_log, maintenance (incidents.sql), channels,
# outbox and delivery attempts (notify.sql), device_history, the availability intervals (history.sql)
# 7: hubs (cluster.sql) and nvrs.hub, for several hubs sharing one PostgreSQL database
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
    ("nvrs", "hub", "TEXT NOT NULL DEFAULT ''"),  # 7: the node id of the hub holding the NVR's agent socket
    ("outbox", "claimed_by", "TEXT NOT NULL DEFAULT ''"),  # 7: the hub sending a row now (store/outbox.py recover)
)
BUSY_TIMEOUT_MS = 5000
POOL_SIZE = 5
# The writer doesn't checkpoint at commit (store/inline.py): once its WAL file is past this size, the reader copies it
# back into the database, off the loop's thread (SQLite's own default is 1,000 pages, 4 MB).
CHECKPOINT_BYTES = 4 * 1024 * 1024
CHECKPOINT_CHECK_EVERY = 32  # commits between two looks at the WAL file's size
# PostgreSQL upgrades keyed on the stored version, beyond what the idempotent schema script adds (CREATE ... IF NOT
# EXISTS, ADD COLUMN IF NOT EXISTS): none yet. Version 6 -> 7 is hubs and nvrs.hub, both added by that script.
PG_STEPS: dict[int, str] = {}
Backend = Literal["sqlite", "postgresql"]


def locate(target: Path | str) -> Path | str:
    """What `--database-url`/NVRMON_DATABASE_URL (or `--db`) names: a SQLite file's Path, or a PostgreSQL URL."""
    if isinstance(target, Path):
        return target
    if target.startswith(("postgresql://", "postgres://")):
        return target
    if target.startswith("sqlite:///"):
        return Path(target.removeprefix("sqlite:///"))
    if "://" in target:
        raise ValueError(f"unknown database URL {postgres.masked(target)!r}: use postgresql://... or sqlite:///PATH")
    return Path(target)


class Database:
    """The store's connections. SQLite: two connections over one WAL file, a writer (one transaction at a time, its
    statements run on the loop's thread, see store/inline.py) and a query-only reader (aiosqlite's thread), which
    also runs the WAL checkpoints. PostgreSQL: a bounded pool for reads and one writer connection.

    Every write of the process, fleet batch or login alike, goes through `transaction`, so statements of two writers
    never interleave inside one transaction on the shared write connection. Other processes (the CLI next to a running
    hub, other hubs on one PostgreSQL database) have their own Database: SQLite's lock and busy_timeout order them,
    on PostgreSQL the seq row's lock that every transaction takes first.
    """

    def __init__(self, writer: Any, reader: aiosqlite.Connection | None, path: Path, epoch: str) -> None:
        self._writer = writer
        self.reader = reader  # SQLite only
        self.path = path
        self.epoch = epoch
        self.backend: Backend = "sqlite"
        self.url = ""
        self._pool: asyncpg.Pool | None = None
        self._doorbell: postgres.Doorbell | None = None
        self._lock = asyncio.Lock()
        self._checkpoint: asyncio.Task[None] | None = None  # owned here: awaited by close()

    @classmethod
    async def open(cls, target: Path | str, *, pool_size: int = POOL_SIZE) -> Database:
        """Open (creating if needed) the database; the CLI may run this before the hub ever started."""
        where = locate(target)
        if isinstance(where, str):
            return await cls._open_postgres(where, pool_size)
        path = where
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = InlineConnection.connect(path)
        try:
            epoch = await _prepare(writer, path)
            # From here on the writer never waits inside SQLite: not for another process's lock (begin() retries
            # on the loop instead) and not for a checkpoint's fsync (the reader runs them).
            await writer.execute("PRAGMA busy_timeout = 0")
            await writer.execute("PRAGMA wal_autocheckpoint = 0")
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

    @classmethod
    async def _open_postgres(cls, url: str, pool_size: int) -> Database:
        driver = postgres.driver()
        setup = await driver.connect(url, timeout=10.0)
        try:
            script = postgres.schema_script(SCRIPTS, (*ADDED_COLUMNS, *inventory_rows.COLUMNS))
            epoch = await postgres.prepare(setup, url, script, SCHEMA_VERSION, PG_STEPS)
        finally:
            await setup.close()
        pool = await driver.create_pool(url, min_size=1, max_size=max(1, pool_size), timeout=10.0)
        database = cls(None, None, Path(), epoch)
        database.backend, database.url, database._pool = "postgresql", url, pool
        database._doorbell = postgres.Doorbell(url)
        return database

    def describe(self) -> str:
        """Where the data lives, for logs and the CLI: the file, or the URL without its password."""
        return postgres.masked(self.url) if self.backend == "postgresql" else str(self.path)

    async def close(self) -> None:
        if self.backend == "postgresql":
            assert self._pool is not None and self._doorbell is not None
            await self._doorbell.close()
            if self._writer is not None:
                with contextlib.suppress(Exception):
                    await self._writer.raw.close(timeout=2.0)
            await self._pool.close()
            return
        assert self.reader is not None
        if self._checkpoint is not None:
            with contextlib.suppress(Exception):
                await self._checkpoint
        await self.reader.close()
        await self._writer.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """BEGIN IMMEDIATE … COMMIT under the writer lock; on any error everything since BEGIN rolls back."""
        if self.backend == "postgresql":
            async with self._pg_transaction() as conn:
                yield conn
            return
        writer: InlineConnection = self._writer
        async with self._lock:
            await writer.begin()
            try:
                yield writer
                await writer.commit()
            except BaseException:
                # Also after a failed COMMIT (a full disk): SQLite may leave that transaction open.
                await writer.rollback()
                raise
        if writer.commits >= CHECKPOINT_CHECK_EVERY:
            writer.commits = 0
            self._checkpoint_if_due()

    def _checkpoint_if_due(self) -> None:
        if self._checkpoint is not None and not self._checkpoint.done():
            return
        try:
            size = self.path.with_name(self.path.name + "-wal").stat().st_size
        except OSError:
            return
        if size >= CHECKPOINT_BYTES:
            self._checkpoint = asyncio.get_running_loop().create_task(self._run_checkpoint())

    async def _run_checkpoint(self) -> None:
        assert self.reader is not None
        try:
            await self.reader.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception:  # a checkpoint that can't run now (a failing disk) is tried again at the next look
            log.warning("WAL checkpoint of %s failed", self.path, exc_info=True)

    @asynccontextmanager
    async def _pg_transaction(self) -> AsyncIterator[Connection]:
        # The seq row's lock first, in every transaction: writers of all hubs on this database take their turns as
        # SQLite's BEGIN IMMEDIATE makes them, so seqs are handed out in commit order and no two can deadlock.
        async with self._lock:
            if self._writer is None or self._writer.is_closed():
                self._writer = None
                connection = await postgres.driver().connect(self.url, timeout=10.0)
                self._writer = postgres.PgConnection(connection)
            writer: postgres.PgConnection = self._writer
            try:
                await writer.raw.execute("BEGIN")
                before = await writer.raw.fetchval("SELECT value FROM meta WHERE key = 'seq' FOR UPDATE")
                yield writer
                # A transaction that took a seq rings the other hubs' doorbell; NOTIFY is delivered at COMMIT.
                await writer.raw.execute(
                    "SELECT pg_notify($1, value) FROM meta WHERE key = 'seq' AND value <> $2", postgres.CHANNEL, before
                )
            except BaseException:
                try:
                    await writer.raw.execute("ROLLBACK", timeout=5.0)
                except Exception:
                    # A connection that can't even roll back (lost, or cut mid-statement) is replaced next time.
                    self._writer = None
                    writer.raw.terminate()
                raise
            await writer.raw.execute("COMMIT")

    async def fetch_one(self, sql: str, params: Iterable[Any] = ()) -> Any:
        if self._pool is not None:
            found = await postgres.fetch(self._pool, sql, tuple(params))
            return found[0] if found else None
        found = await self._read(sql, params)
        return found[0] if found else None

    async def fetch_all(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        if self._pool is not None:
            return await postgres.fetch(self._pool, sql, tuple(params))
        return await self._read(sql, params)

    async def _read(self, sql: str, params: Iterable[Any]) -> list[Any]:
        # One trip to the reader's thread that runs the statement to its end. A statement left open between trips
        # (execute, then fetch) would hold the connection's read transaction open, and every read that interleaved
        # with it, a publish right after a commit included, would see the store as it was before that commit.
        assert self.reader is not None
        return list(await self.reader.execute_fetchall(sql, tuple(params)))

    async def meta(self, key: str) -> str | None:
        row = await self.fetch_one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    async def set_meta(self, key: str, value: str) -> None:
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    async def wait_commit(self, timeout: float) -> None:
        """Wait up to `timeout` seconds, less when another process committed (PostgreSQL's LISTEN; SQLite sleeps)."""
        if self._doorbell is None:
            await asyncio.sleep(timeout)
            return
        await self._doorbell.wait(timeout)

    async def health(self) -> dict[str, object]:
        """Whether the database answers now (for /healthz): backend, ok, error, and how long the answer took."""
        started = time.monotonic()
        try:
            if self._pool is not None:
                async with asyncio.timeout(2.0):
                    await self._pool.fetchval("SELECT 1")
            else:
                await self.fetch_one("SELECT 1")
        except Exception as exc:  # any failure is the answer: the database is not usable now
            return {"backend": self.backend, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
        elapsed = round((time.monotonic() - started) * 1000, 1)
        return {"backend": self.backend, "ok": True, "error": "", "ms": elapsed, "where": self.describe()}


async def _prepare(writer: InlineConnection, path: Path) -> str:
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
        "INSERT INTO meta (key, value) VALUES ('epoch', ?), ('seq', '0'), ('horizon', '0') ON CONFLICT DO NOTHING",
        (secrets.token_hex(4),),
    )
    cursor = await writer.execute("SELECT value FROM meta WHERE key = 'epoch'")
    row = await cursor.fetchone()
    assert row is not None
    return str(row[0])
