"""Stage 3, the PostgreSQL backend: the store's connection protocol over asyncpg, its schema, pool and doorbell."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from nvrmon.store import dialect

if TYPE_CHECKING:
    import asyncpg

log = logging.getLogger(__name__)
CHANNEL = "nvrmon_commit"
# Every hub opening one database takes this lock around its schema setup, so concurrent first starts don't race.
SCHEMA_LOCK = 0x6E76726D6F6E  # "nvrmon"
_STATUS_COUNT = re.compile(r"(\d+)$")
_TYPES: dict[str, list[str]] = {}  # translated statement -> its parameters' type names (the same on every connection)
_CACHE_MAX = 2000  # statements built from filters vary; the caches are dropped whole past this many


def driver() -> Any:
    """asyncpg, imported on first use: a hub on SQLite never loads it (about 3 MB of memory)."""
    import asyncpg

    return asyncpg


def masked(url: str) -> str:
    """The URL with its password (if any) replaced, for logs and describe()."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}{port}"))


async def _types(conn: Any, sql: str) -> list[str]:
    found = _TYPES.get(sql)
    if found is None:
        if len(_TYPES) > _CACHE_MAX:
            _TYPES.clear()
        statement = await conn.prepare(sql)
        found = _TYPES[sql] = [t.name for t in statement.get_parameters()]
    return found


class PgCursor:
    """A finished statement's rows and row count, read like aiosqlite's cursor."""

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int) -> None:
        self._rows = rows
        self._next = 0
        self.rowcount = rowcount

    async def fetchone(self) -> Any:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    async def fetchall(self) -> list[tuple[Any, ...]]:
        rest, self._next = self._rows[self._next :], len(self._rows)
        return rest


class PgConnection:
    """One asyncpg connection speaking the store's SQLite statements (translated by dialect.postgres)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.raw = conn
        self._statements: dict[str, Any] = {}

    def is_closed(self) -> bool:
        return bool(self.raw.is_closed())

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> PgCursor:
        text = dialect.postgres(sql)
        statement = self._statements.get(text)
        if statement is None:
            if len(self._statements) > _CACHE_MAX:
                self._statements.clear()
            statement = self._statements[text] = await self.raw.prepare(text)
        types = [t.name for t in statement.get_parameters()]
        try:
            records = await statement.fetch(*dialect.coerce(types, tuple(parameters or ())))
        except driver().exceptions.InvalidCachedStatementError:
            # Another process changed the schema under the prepared statement: prepare it again on the retry.
            self._statements.pop(text, None)
            raise
        match = _STATUS_COUNT.search(statement.get_statusmsg() or "")
        return PgCursor([dialect.row(r) for r in records], int(match.group(1)) if match else -1)

    async def executemany(self, sql: str, parameters: Iterable[Iterable[Any]]) -> None:
        text = dialect.postgres(sql)
        types = await _types(self.raw, text)
        rows = [dialect.coerce(types, tuple(p)) for p in parameters]
        if rows:
            await self.raw.executemany(text, rows)

    async def executescript(self, sql_script: str) -> None:
        await self.raw.execute(sql_script)


async def fetch(pool: asyncpg.Pool, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """A read through the pool (asyncpg caches the prepared statement per connection)."""
    text = dialect.postgres(sql)
    async with pool.acquire() as conn:
        types = await _types(conn, text)
        return [dialect.row(r) for r in await conn.fetch(text, *dialect.coerce(types, params))]


def schema_script(scripts: Sequence[str], added: Sequence[tuple[str, str, str]]) -> str:
    """The whole PostgreSQL schema: the SQLite scripts translated, the added columns, then postgres.sql."""
    package = resources.files("nvrmon.store")
    parts = [
        "CREATE COLLATION IF NOT EXISTS nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false);"
    ]
    parts += [dialect.postgres_ddl(package.joinpath(script).read_text()) for script in scripts]
    parts += [
        f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {dialect.column_type(definition)};"
        for table, column, definition in added
    ]
    parts.append(package.joinpath("postgres.sql").read_text())
    return "\n".join(parts)


async def prepare(conn: asyncpg.Connection, url: str, script: str, version: int, steps: dict[int, str]) -> str:
    """Create or upgrade the schema under an advisory lock (several hubs may start at once); returns the epoch.

    `steps` maps a stored version to what upgrading from it needs beyond `script` (which only adds what is missing)."""
    async with conn.transaction():
        await conn.execute(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK})")
        has_meta = await conn.fetchval("SELECT to_regclass('meta') IS NOT NULL")
        stored = 0
        if has_meta:
            value = await conn.fetchval("SELECT value FROM meta WHERE key = 'schema_version'")
            stored = int(value) if value is not None else 0
        if stored > version:
            raise RuntimeError(f"{masked(url)} has schema version {stored}; this nvrmon knows up to {version}")
        if stored == version:
            # Set up already: no DDL, whose table locks (ALTER TABLE takes ACCESS EXCLUSIVE even when the column
            # exists) would stall, or deadlock with, the hubs writing meanwhile.
            return str(await conn.fetchval("SELECT value FROM meta WHERE key = 'epoch'"))
        await conn.execute(script)
        for since in sorted(steps):
            if stored and stored <= since:
                await conn.execute(steps[since])
        await conn.execute(
            "INSERT INTO meta (key, value) VALUES ('epoch', $1), ('seq', '0'), ('horizon', '0') ON CONFLICT DO NOTHING",
            secrets.token_hex(4),
        )
        await conn.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', $1) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            str(version),
        )
        return str(await conn.fetchval("SELECT value FROM meta WHERE key = 'epoch'"))


class Doorbell:
    """LISTEN nvrmon_commit on a connection of its own, reconnected when lost (asyncpg does not notice a dead
    listening connection by itself, asyncpg #519: wait() checks it every `check_every` seconds)."""

    def __init__(self, url: str, check_every: float = 10.0) -> None:
        self._url = url
        self._conn: asyncpg.Connection | None = None
        self._rang = asyncio.Event()
        self._check_every = check_every
        self._checked = 0.0
        self.last: int = 0  # the newest seq announced

    def _ring(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        with contextlib.suppress(ValueError):
            self.last = max(self.last, int(payload))
        self._rang.set()

    def _lost(self, _conn: Any) -> None:
        self._conn = None
        self._rang.set()  # whoever waits re-reads: a commit may have gone unheard

    async def _ensure(self) -> None:
        loop = asyncio.get_running_loop()
        if self._conn is not None and not self._conn.is_closed():
            if loop.time() - self._checked < self._check_every:
                return
            try:
                await self._conn.execute("SELECT 1", timeout=2.0)
                self._checked = loop.time()
                return
            except (TimeoutError, driver().PostgresError, driver().InterfaceError, OSError):
                await self.close()
        conn = await driver().connect(self._url, timeout=5.0)
        conn.add_termination_listener(self._lost)
        await conn.add_listener(CHANNEL, self._ring)
        self._conn, self._checked = conn, loop.time()

    async def wait(self, timeout: float) -> None:
        try:
            await self._ensure()
        except (TimeoutError, driver().PostgresError, driver().InterfaceError, OSError) as exc:
            log.warning("nvrmon: cannot listen for commits on %s: %s", masked(self._url), exc)
            await asyncio.sleep(timeout)
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._rang.wait(), timeout)
        self._rang.clear()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2.0)
