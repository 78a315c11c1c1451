"""The database owner: one writer lock for fleet and security writes, PRAGMAs and schema applied once per process."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from starlette.testclient import TestClient

from nvrmon.application import create_app
from nvrmon.protocol import NvrInfo
from nvrmon.settings import Settings
from nvrmon.store.credentials import Credentials
from nvrmon.store.database import SCHEMA_VERSION, SCRIPTS, Database
from nvrmon.store.fleet import Store
from nvrmon.store.inline import InlineConnection
from tests.conftest import ADMIN, PASSWORD, TOKEN, create_user, login_form_token

pytestmark = pytest.mark.anyio


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = await Database.open(database_url)
    yield database
    await database.close()


async def test_credentials_write_waits_for_an_open_store_transaction_and_survives_its_rollback(
    database: Database,
) -> None:
    store, credentials = Store(database), Credentials(database)
    with pytest.raises(RuntimeError):
        async with store.transaction(time.time()) as tx:
            await tx.register_nvr(NvrInfo("nvr-doomed"))
            adding = asyncio.create_task(credentials.add_user("ada", "admin", "hash", 0))
            await asyncio.sleep(0.05)
            assert not adding.done()  # it waits for the batch instead of running its statements inside it
            raise RuntimeError("the batch fails")
    await adding
    assert await store.nvrs() == []
    user = await credentials.user("ada")
    assert user is not None and user.role == "admin"


async def test_store_set_meta_during_an_open_transaction_is_not_rolled_back_with_it(database: Database) -> None:
    store = Store(database)
    with pytest.raises(RuntimeError):
        async with store.transaction(time.time()) as tx:
            await tx.register_nvr(NvrInfo("nvr-doomed"))
            setting = asyncio.create_task(store.set_meta("agent_token", "kept"))
            await asyncio.sleep(0.05)
            raise RuntimeError("the batch fails")
    await setting
    assert await store.meta("agent_token") == "kept" and await store.nvrs() == []


async def test_database_read_after_a_commit_sees_it_while_other_reads_are_in_flight(database: Database) -> None:
    """The publisher renders a commit's rows right after it: a read interleaving with another (still open) read on
    the shared reader connection once saw the store as it was before that commit, and stale rows went out under
    the commit's seq, so open pages skipped the change for good."""
    async with database.transaction() as db:
        for index in range(20):
            await db.execute("INSERT INTO meta (key, value) VALUES (?, '0')", (f"row-{index}",))
    stop = False

    async def other_reads() -> None:
        while not stop:
            await database.fetch_one("SELECT key FROM meta WHERE key LIKE 'row-%' ORDER BY key")  # many rows, one read
            await database.fetch_all("SELECT key, value FROM meta")

    readers = [asyncio.create_task(other_reads()) for _ in range(3)]
    stale = 0
    try:
        for value in range(1, 301):
            async with database.transaction() as db:
                await db.execute("UPDATE meta SET value = ? WHERE key = 'row-1'", (str(value),))
            if await database.meta("row-1") != str(value):
                stale += 1
    finally:
        stop = True
        await asyncio.gather(*readers)
    assert stale == 0


async def test_both_connections_get_their_pragmas(tmp_path: Path) -> None:
    database = await Database.open(tmp_path / "shared.db")

    async def pragma(db: aiosqlite.Connection, name: str) -> Any:
        cursor = await db.execute(f"PRAGMA {name}")
        row = await cursor.fetchone()
        assert row is not None
        return row[0]

    async with database.transaction() as writer:
        assert await pragma(writer, "journal_mode") == "wal"
        assert await pragma(writer, "synchronous") == 1  # NORMAL
        # The writer never waits inside SQLite (it runs on the loop's thread): begin() retries a busy lock instead,
        # and the reader runs the checkpoints.
        assert await pragma(writer, "busy_timeout") == 0
        assert await pragma(writer, "wal_autocheckpoint") == 0
        assert await pragma(writer, "foreign_keys") == 1
        assert await pragma(writer, "user_version") == SCHEMA_VERSION
    assert await pragma(database.reader, "busy_timeout") == 5000
    assert await pragma(database.reader, "query_only") == 1
    with pytest.raises(sqlite3.OperationalError):
        await database.reader.execute("DELETE FROM meta")
    await database.close()


async def test_a_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RuntimeError, match="schema version"):
        await Database.open(path)


def test_the_hub_opens_one_writer_and_one_reader_and_runs_the_schema_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "hub.db"
    create_user(path, ADMIN, "admin", PASSWORD)  # before counting: as the CLI would, in its own process
    connects: list[str] = []
    scripts: list[str] = []
    connect, connect_inline = aiosqlite.connect, InlineConnection.connect
    executescript = InlineConnection.executescript

    def counting_connect(database: Any, **kwargs: Any) -> aiosqlite.Connection:
        connects.append(str(database))
        return connect(database, **kwargs)

    def counting_connect_inline(path: Path) -> InlineConnection:
        connects.append(str(path))
        return connect_inline(path)

    async def counting_executescript(self: InlineConnection, sql: str) -> Any:
        scripts.append(sql.split("\n", 1)[0])
        return await executescript(self, sql)

    monkeypatch.setattr(aiosqlite, "connect", counting_connect)
    monkeypatch.setattr(InlineConnection, "connect", counting_connect_inline)
    monkeypatch.setattr(InlineConnection, "executescript", counting_executescript)
    with TestClient(create_app(Settings(db_path=path, agent_token=TOKEN))) as client:
        token = login_form_token(client.get("/login").text)
        login = client.post("/login", data={"username": ADMIN, "password": PASSWORD, "csrf_token": token})
        assert login.status_code == 200 and login.url.path == "/"  # a session write and reads of the security tables
        assert client.get("/api/summary").status_code == 200
    assert connects == [str(path), str(path)]
    assert len(scripts) == len(SCRIPTS) and scripts[0].startswith("-- nvrmon schema") and "security" in scripts[1]


async def test_a_version_2_database_gets_the_device_health_columns_and_tables(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    await (await Database.open(path)).close()
    with sqlite3.connect(path) as db:  # back to version 2: no camera reasons, detail or degraded, no health tables
        db.execute("DROP TABLE camera_health")
        db.execute("DROP TABLE nvr_health")
        # … nor the inventory's columns (schema 5), which came later still.
        later = (
            ("nvrs", {"degraded", "declared", "tags", "expected_cameras", "hub"}),  # hub: schema 7
            ("cameras", {"status_reason", "detail", "degraded", "missing", "declared", "tags"}),
        )
        for table, dropped in later:
            kept = ", ".join(row[1] for row in db.execute(f"PRAGMA table_info({table})") if row[1] not in dropped)
            db.execute(f"CREATE TABLE old AS SELECT {kept} FROM {table}")
            db.execute(f"DROP TABLE {table}")
            db.execute(f"ALTER TABLE old RENAME TO {table}")
        # CREATE TABLE … AS keeps no defaults: every column gets its value.
        db.execute(
            "INSERT INTO nvrs VALUES (1, 'nvr-v2', '', '', '', '', '', '', 'online', '', 0, 0, '{}', 0, '', 0, 1, 0)"
        )
        db.execute("INSERT INTO cameras VALUES (1, 1, 'cam1', 'Gate', '', 'offline', 0, 0, 1)")
        db.execute("PRAGMA user_version = 2")
    store = await Store.open(path)
    try:
        [camera] = await store.cameras()
        assert (camera.ext_id, camera.status, camera.status_reason, camera.degraded) == ("cam1", "offline", "", "")
        assert camera.display == "offline" and camera.health is None
        [nvr] = await store.nvrs([camera.nvr_id])
        assert nvr.hostname == "nvr-v2" and nvr.degraded == "" and nvr.health is None
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
            assert db.execute("SELECT count(*) FROM camera_health").fetchone()[0] == 0
    finally:
        await store.close()
