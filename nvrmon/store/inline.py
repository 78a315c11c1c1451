"""Stage 3, the SQLite writer: statements run on the event loop's own thread, with no thread hop per statement.

A status change is one write transaction of some fifty statements (the change, its events, the incident engine's
reads and writes, history), each a few microseconds of SQLite work. Through aiosqlite each statement is a round trip
to a worker thread and back (a queue put, a thread wake-up, call_soon_threadsafe, a loop wake-up): that hop cost
several times the statement itself, and it was most of the hub's CPU per change (bench/RESULTS.md). Here they run
inline. What could make an inline statement wait is kept off the loop thread:

- another process holding the write lock (the CLI next to a running hub): BEGIN IMMEDIATE does not wait in SQLite
  (busy_timeout 0 on this connection) but retries with asyncio.sleep, so the loop serves everything else meanwhile;
- fsync: with WAL and synchronous=NORMAL a commit only appends to the WAL file; the checkpoint, which syncs, is not
  done at commit (wal_autocheckpoint 0) but by `Database` on its reader, in aiosqlite's thread.

Reads outside a transaction stay on the reader connection (aiosqlite): a page of thousands of rows doesn't hold
the loop any longer than its rows' conversion does.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# How long BEGIN IMMEDIATE keeps trying while another process writes (the reader's busy_timeout is the same).
BUSY_WAIT = 5.0


class InlineCursor:
    """A statement's result, read like aiosqlite's cursor (the store awaits fetchone/fetchall)."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()


class InlineConnection:
    """The store's write connection (dialect.Connection) over a plain sqlite3 connection in autocommit mode."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection
        self.commits = 0  # since the last checkpoint (Database decides when the next is due)

    @classmethod
    def connect(cls, path: Path) -> InlineConnection:
        # check_same_thread: closed from the loop's thread too, but never used from two threads at once.
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            connection.execute("PRAGMA busy_timeout = 0")
        except BaseException:
            connection.close()
            raise
        return cls(connection)

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None, /) -> InlineCursor:
        return InlineCursor(self._db.execute(sql, tuple(parameters) if parameters is not None else ()))

    async def executemany(self, sql: str, parameters: Iterable[Iterable[Any]], /) -> InlineCursor:
        return InlineCursor(self._db.executemany(sql, [tuple(row) for row in parameters]))

    async def executescript(self, sql_script: str, /) -> InlineCursor:
        return InlineCursor(self._db.executescript(sql_script))

    async def begin(self, wait: float = BUSY_WAIT) -> None:
        """BEGIN IMMEDIATE; while another process holds the write lock, retry without blocking the loop."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        pause = 0.001
        while True:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not _busy(exc) or loop.time() >= deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    async def commit(self) -> None:
        self._db.execute("COMMIT")
        self.commits += 1

    async def rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    async def close(self) -> None:
        self._db.close()


def _busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text
