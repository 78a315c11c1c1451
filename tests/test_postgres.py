"""The PostgreSQL backend: hubs sharing one database (seqs in commit order, the commit doorbell, concurrent schema
setup), upgrades from schema 6 on both backends, the URL forms, and a real hub with an agent on PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import asyncpg
import pytest

from nvrmon.protocol import NvrInfo
from nvrmon.settings import Settings
from nvrmon.store import dialect, postgres
from nvrmon.store.database import ADDED_COLUMNS, SCHEMA_VERSION, SCRIPTS, Database
from nvrmon.store.errors import is_storage_failure
from nvrmon.store.fleet import Store
from tests.agent import Agent
from tests.conftest import LiveHub, run_cli

pytestmark = pytest.mark.anyio


async def test_two_hubs_on_one_database_get_seqs_in_commit_order_without_gaps(postgres_url: str) -> None:
    hubs = [await Store.open(postgres_url, pool_size=2), await Store.open(postgres_url, pool_size=2)]
    committed: list[tuple[int, int]] = []  # (hub, seq) in the order the commits returned

    async def write(hub: int, rounds: int) -> None:
        for i in range(rounds):
            async with hubs[hub].transaction(time.time()) as tx:
                await tx.register_nvr(NvrInfo(f"nvr-{hub}-{i % 3}"))
                await asyncio.sleep(random.uniform(0, 0.003))  # hold the transaction open a little
                seq = tx.changes.seq
            committed.append((hub, seq))

    try:
        await asyncio.gather(write(0, 40), write(1, 40))
        seqs = [seq for _, seq in committed]
        assert sorted(seqs) == list(range(1, 81))  # strictly increasing, no gaps, none twice
        assert seqs == sorted(seqs)  # handed out in commit order: a later commit never has an earlier seq
        assert {hub for hub, _ in committed} == {0, 1}
        # Each hub sees every seq the other committed, in order: rows stamped 1..80, the head at 80.
        for store in hubs:
            assert await store.current_seq() == 80
            stamped = sorted(n.updated_seq for n in await store.nvrs())
            assert stamped == sorted(stamped) and stamped[-1] == 80
    finally:
        for store in hubs:
            await store.close()


async def test_a_commit_of_one_hub_rings_the_other_hubs_doorbell(postgres_url: str) -> None:
    listener, writer = await Database.open(postgres_url), await Store.open(postgres_url)
    try:
        await listener.wait_commit(0.01)  # starts listening
        waiting = asyncio.create_task(listener.wait_commit(10.0))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        async with writer.transaction(time.time()) as tx:
            await tx.register_nvr(NvrInfo("nvr-bell"))
        await asyncio.wait_for(waiting, 5.0)
        assert time.monotonic() - started < 2.0  # woken by the commit, not by its 10 s timeout
        assert listener._doorbell is not None and listener._doorbell.last == 1
        started = time.monotonic()
        await listener.wait_commit(0.3)  # nothing committed: the whole timeout
        assert time.monotonic() - started >= 0.25
    finally:
        await listener.close()
        await writer.close()


async def test_the_doorbell_listens_again_after_its_connection_is_killed(postgres_url: str) -> None:
    listener, writer = await Database.open(postgres_url), await Store.open(postgres_url)
    try:
        await listener.wait_commit(0.01)
        assert listener._doorbell is not None and listener._doorbell._conn is not None
        pid = listener._doorbell._conn.get_server_pid()
        admin = await asyncpg.connect(postgres_url)
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
        await admin.close()
        await listener.wait_commit(0.5)  # notices the loss (or the check does) and reconnects
        await listener.wait_commit(0.01)
        waiting = asyncio.create_task(listener.wait_commit(10.0))
        await asyncio.sleep(0.2)
        async with writer.transaction(time.time()) as tx:
            await tx.register_nvr(NvrInfo("nvr-bell-2"))
        await asyncio.wait_for(waiting, 5.0)
        assert listener._doorbell.last >= 1
    finally:
        await listener.close()
        await writer.close()


async def test_three_concurrent_opens_of_an_empty_database_set_up_one_schema(postgres_url: str) -> None:
    databases = await asyncio.gather(*(Database.open(postgres_url) for _ in range(3)))
    try:
        assert len({d.epoch for d in databases}) == 1
        assert await databases[0].meta("schema_version") == str(SCHEMA_VERSION)
        assert all(d.backend == "postgresql" for d in databases)
    finally:
        for database in databases:
            await database.close()


def _v6_postgres_ddl() -> str:
    """The schema as version 6 had it: no cluster.sql, no nvrs.hub."""
    scripts = [s for s in SCRIPTS if s != "cluster.sql"]
    added = [c for c in ADDED_COLUMNS if c[1] != "hub"]
    from nvrmon.store import inventory_rows

    script = postgres.schema_script(scripts, [*added, *inventory_rows.COLUMNS])
    return (
        script
        + "\nINSERT INTO meta (key, value) VALUES ('epoch', 'v6epoch0'), ('seq', '41'), ('horizon', '0'),"
        + ("('schema_version', '6');\nINSERT INTO nvrs (hostname, updated_seq) VALUES ('nvr-v6', 41);")
    )


async def test_a_version_6_postgresql_database_upgrades_in_place(postgres_url: str) -> None:
    raw = await asyncpg.connect(postgres_url)
    try:
        await raw.execute(_v6_postgres_ddl())
        assert await raw.fetchval("SELECT to_regclass('hubs')") is None
    finally:
        await raw.close()
    store = await Store.open(postgres_url)
    try:
        assert store.epoch == "v6epoch0" and await store.current_seq() == 41  # its history kept
        assert [n.hostname for n in await store.nvrs()] == ["nvr-v6"]
        assert await store.meta("schema_version") == str(SCHEMA_VERSION)
        assert await store.database.fetch_all("SELECT hub FROM nvrs") == [("",)]
        assert await store.database.fetch_all("SELECT node, address, started, heartbeat FROM hubs") == []
        async with store.transaction(1.0) as tx:
            await tx.register_nvr(NvrInfo("nvr-v7"))
        assert tx.changes.seq == 42
    finally:
        await store.close()


async def test_a_newer_postgresql_schema_is_refused(postgres_url: str) -> None:
    await (await Database.open(postgres_url)).close()
    raw = await asyncpg.connect(postgres_url)
    await raw.execute("UPDATE meta SET value = $1 WHERE key = 'schema_version'", str(SCHEMA_VERSION + 1))
    await raw.close()
    with pytest.raises(RuntimeError, match="schema version"):
        await Database.open(postgres_url)


async def test_a_version_6_sqlite_file_upgrades_to_7(tmp_path: Path) -> None:
    path = tmp_path / "v6.db"
    package = resources.files("nvrmon.store")
    with sqlite3.connect(path) as db:  # the v6 schema exactly: its scripts, without cluster.sql and nvrs.hub
        for script in SCRIPTS:
            if script != "cluster.sql":
                db.executescript(package.joinpath(script).read_text())
        for table, column in (("cameras", "declared"), ("cameras", "tags"), ("cameras", "missing")):
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0")
        for column in ("declared", "expected_cameras"):
            db.execute(f"ALTER TABLE nvrs ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0")
        db.execute("ALTER TABLE nvrs ADD COLUMN tags TEXT NOT NULL DEFAULT ''")
        db.execute("INSERT INTO meta VALUES ('epoch', 'v6file00'), ('seq', '9'), ('horizon', '0')")
        db.execute("INSERT INTO nvrs (hostname, updated_seq) VALUES ('nvr-v6', 9)")
        db.execute("PRAGMA user_version = 6")
        assert "hub" not in {r[1] for r in db.execute("PRAGMA table_info(nvrs)")}
    store = await Store.open(path)
    try:
        assert store.epoch == "v6file00" and await store.current_seq() == 9
        assert [n.hostname for n in await store.nvrs()] == ["nvr-v6"]
        assert await store.database.fetch_all("SELECT hub FROM nvrs") == [("",)]
        assert await store.database.fetch_all("SELECT * FROM hubs") == []
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 7


def test_database_urls_choose_the_backend(tmp_path: Path) -> None:
    assert Settings(db_path=tmp_path / "a.db").database == tmp_path / "a.db"
    assert Settings(database_url=f"sqlite:///{tmp_path}/b.db").database == tmp_path / "b.db"
    assert Settings(database_url=str(tmp_path / "c.db")).database == tmp_path / "c.db"
    assert Settings(database_url="postgres://u:p@h/db").database == "postgres://u:p@h/db"
    assert Settings.from_env({"NVRMON_DATABASE_URL": "postgresql://h/db"}).database == "postgresql://h/db"
    with pytest.raises(ValueError, match="NVRMON_DATABASE_URL"):
        _ = Settings(database_url="mysql://h/db").database
    assert postgres.masked("postgresql://nvrmon:s3cret@db.example:5433/fleet") == (
        "postgresql://nvrmon:***@db.example:5433/fleet"
    )


async def test_describe_and_health_name_the_backend_without_the_password(postgres_url: str, tmp_path: Path) -> None:
    with_password = postgres_url.replace("postgres@", "postgres:hunter2@")  # trust auth ignores it
    database = await Database.open(with_password)
    try:
        assert database.backend == "postgresql" and "hunter2" not in database.describe()
        health = await database.health()
        assert health["ok"] is True and health["backend"] == "postgresql" and health["error"] == ""
    finally:
        await database.close()
    health = await database.health()  # closed pool: not ok, and says why
    assert health["ok"] is False and health["error"]
    sqlite = await Database.open(tmp_path / "h.db")
    try:
        assert sqlite.backend == "sqlite" and sqlite.describe() == str(tmp_path / "h.db")
        assert (await sqlite.health())["ok"] is True
        started = time.monotonic()
        await sqlite.wait_commit(0.2)
        assert time.monotonic() - started >= 0.18
    finally:
        await sqlite.close()


async def test_an_unreachable_postgresql_is_a_storage_failure_and_the_writer_recovers(postgres_url: str) -> None:
    store = await Store.open(postgres_url)
    try:
        async with store.transaction(time.time()) as tx:
            await tx.register_nvr(NvrInfo("nvr-before"))
        admin = await asyncpg.connect(postgres_url)
        # Every connection of the store dies, as in a PostgreSQL restart.
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        await admin.close()
        failures = 0
        for _ in range(5):
            try:
                async with store.transaction(time.time()) as tx:
                    await tx.register_nvr(NvrInfo("nvr-after"))
                break
            except Exception as exc:  # the hub's writer classifies and retries exactly like this
                assert is_storage_failure(exc), repr(exc)
                failures += 1
        assert failures < 5
        for _ in range(5):  # the pool's dead connections are replaced as they fail
            try:
                names = {n.hostname for n in await store.nvrs()}
                break
            except Exception as exc:
                assert is_storage_failure(exc), repr(exc)
        assert names == {"nvr-before", "nvr-after"}
    finally:
        await store.close()


def test_dialect_translates_parameters_lists_and_scalar_max() -> None:
    assert dialect.postgres("SELECT ? , ?3, '?' FROM t WHERE a = ?") == "SELECT $1 , $3, '?' FROM t WHERE a = $4"
    assert dialect.postgres("x WHERE c.id IN (SELECT value FROM json_each(?))") == "x WHERE c.id = ANY($1)"
    assert dialect.postgres("SET v = max(CAST(v AS INTEGER), ?), m = max(id)") == (
        "SET v = GREATEST(CAST(v AS BIGINT), $1), m = max(id)"
    )
    assert dialect.coerce(["int8[]", "text", "float8"], ["[1, 2]", 5, 3]) == [[1, 2], "5", 3.0]


def test_backup_on_postgresql_points_to_pg_dump(tmp_path: Path) -> None:
    result = run_cli("postgresql://postgres@127.0.0.1/none", "backup", str(tmp_path / "copy.db"))
    assert result.returncode == 1 and "pg_dump" in result.stderr
    assert not (tmp_path / "copy.db").exists()


async def test_a_hub_on_postgresql_shows_its_agents_nvr(start_hub: Callable[..., LiveHub], postgres_url: str) -> None:
    hub = start_hub(DATABASE_URL=postgres_url)
    assert not hub.db_path.exists()  # nothing went to a SQLite file
    agent, nvr_id = await Agent.register(hub.ws_url, hub.token, "nvr-on-postgres", cameras=3)
    deadline = time.monotonic() + 10
    while "nvr-on-postgres" not in (page := hub.get("/nvrs").text):
        assert time.monotonic() < deadline, "the NVR never showed on the page"
        await asyncio.sleep(0.1)
    assert f'id="nvr-{nvr_id}"' in page
    assert hub.get(f"/api/nvrs/{nvr_id}").json()["cameras_total"] == 3
    # The CLI next to it works on the same database.
    listed = run_cli(postgres_url, "nvr", "list")
    assert listed.returncode == 0 and "nvr-on-postgres" in listed.stdout, listed.stderr
    await agent.close()
    raw = await asyncpg.connect(postgres_url)
    try:
        assert await raw.fetchval("SELECT count(*) FROM cameras WHERE nvr_id = $1", nvr_id) == 3
    finally:
        await raw.close()
