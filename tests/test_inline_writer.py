"""The SQLite writer on the loop's thread: a busy lock never blocks the loop, a failed COMMIT leaves nothing open,
and the WAL is checkpointed by the reader."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nvrmon.store import database as database_module
from nvrmon.store.database import Database

pytestmark = pytest.mark.anyio


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "inline.db")
    yield database
    await database.close()


def hold_write_lock(path: Path, seconds: float, started: threading.Event) -> None:
    """Another process's writer (e.g. the CLI): its own connection holding the write lock for a while."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    started.set()
    time.sleep(seconds)
    other.execute("COMMIT")
    other.close()


async def longest_stall_while(task: asyncio.Task[None]) -> float:
    """The longest the loop went without running a 10 ms sleeper while `task` ran."""
    longest, last = 0.0, time.monotonic()
    while not task.done():
        await asyncio.sleep(0.01)
        now = time.monotonic()
        longest, last = max(longest, now - last), now
    return longest


async def test_inline_writer_waits_for_another_writers_lock_on_the_loop_not_in_sqlite(database: Database) -> None:
    started = threading.Event()
    holder = threading.Thread(target=hold_write_lock, args=(database.path, 0.6, started))
    holder.start()
    started.wait(5)

    async def write() -> None:
        async with database.transaction() as db:
            await db.execute("INSERT INTO meta (key, value) VALUES ('waited', 'yes')")

    began = time.monotonic()
    task = asyncio.create_task(write())
    stall = await longest_stall_while(task)
    await task
    holder.join()
    waited = time.monotonic() - began
    assert waited >= 0.5  # it did wait for the lock ...
    assert stall < 0.3  # ... while the loop went on (waiting inside SQLite would have stalled it for 0.6 s)
    assert await database.meta("waited") == "yes"


async def test_inline_writer_gives_up_on_a_lock_held_too_long(database: Database) -> None:
    started = threading.Event()
    holder = threading.Thread(target=hold_write_lock, args=(database.path, 0.8, started))
    holder.start()
    started.wait(5)
    writer = database._writer
    with pytest.raises(sqlite3.OperationalError, match="locked|busy"):
        await writer.begin(wait=0.2)
    holder.join()
    await writer.begin()  # free again: nothing was left half-open
    await writer.rollback()


async def test_inline_writer_rolls_back_a_transaction_whose_commit_failed(database: Database) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        async with database.transaction() as db:
            # A deferred foreign key is checked at COMMIT: the COMMIT fails and SQLite keeps the transaction open.
            await db.execute("PRAGMA defer_foreign_keys = ON")
            await db.execute(
                "INSERT INTO cameras (nvr_id, ext_id, name, status, updated_seq)"
                " VALUES (999999, 'orphan', 'x', 'online', 0)"
            )
    async with database.transaction() as db:  # the next transaction begins (no "transaction within a transaction")
        await db.execute("INSERT INTO meta (key, value) VALUES ('after', 'ok')")
    assert await database.meta("after") == "ok"
    assert await database.fetch_all("SELECT id FROM cameras WHERE ext_id = 'orphan'") == []


async def test_inline_writer_leaves_checkpoints_to_the_reader(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database_module, "CHECKPOINT_BYTES", 64 * 1024)
    monkeypatch.setattr(database_module, "CHECKPOINT_CHECK_EVERY", 1)
    wal = database.path.with_name(database.path.name + "-wal")
    before = database.path.stat().st_size
    for index in range(40):
        async with database.transaction() as db:
            await db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (f"filler-{index}", "x" * 4000))
    assert wal.stat().st_size >= 64 * 1024
    checkpoint = database._checkpoint
    assert checkpoint is not None
    await checkpoint
    assert database.path.stat().st_size > before + 100 * 1024  # the WAL's pages were copied into the database
    assert await database.meta("filler-39") == "x" * 4000
