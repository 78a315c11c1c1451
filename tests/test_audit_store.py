"""The audit log's store: entries are appended and filtered, never updated, and deleted only by pruning."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator

import asyncpg
import pytest

from nvrmon.store.audit import AuditLog, AuditQuery, record
from nvrmon.store.database import Database
from nvrmon.store.errors import conflicts

pytestmark = pytest.mark.anyio


@pytest.fixture
async def audit(database_url: str) -> AsyncIterator[AuditLog]:
    database = await Database.open(database_url)
    yield AuditLog(database)
    await database.close()


async def test_audit_record_commits_with_the_callers_transaction(audit: AuditLog) -> None:
    async with audit.database.transaction() as tx:
        await record(tx, "ada", "user.disable", "bob", {"why": "left"}, "10.0.0.7", now=100.0)
    with pytest.raises(RuntimeError):
        async with audit.database.transaction() as tx:
            await record(tx, "ada", "user.delete", "bob", "", "10.0.0.7")
            raise RuntimeError("the change failed")  # its entry rolls back with it
    entries = await audit.entries(AuditQuery())
    assert [(e.actor, e.action, e.target, e.detail, e.address) for e in entries] == [
        ("ada", "user.disable", "bob", '{"why": "left"}', "10.0.0.7")
    ]


async def test_audit_query_filters_by_actor_action_family_text_and_time(audit: AuditLog) -> None:
    await audit.add("ada", "user.create", "bob", "role viewer", "1.1.1.1", now=10.0)
    await audit.add("ada", "login", "", "", "1.1.1.1", now=20.0)
    await audit.add("token:deploy", "user.role", "bob", "operator", "2.2.2.2", now=30.0)
    await audit.add("eve", "user_x", "", "", "", now=40.0)  # "user" must not match it: not the user.* family
    assert [e.ts for e in await audit.entries(AuditQuery(action="user"))] == [30.0, 10.0]
    assert [e.ts for e in await audit.entries(AuditQuery(actor="ada"))] == [20.0, 10.0]
    assert [e.ts for e in await audit.entries(AuditQuery(q="OPERATOR"))] == [30.0]
    assert [e.ts for e in await audit.entries(AuditQuery(since=15.0, until=35.0))] == [30.0, 20.0]
    assert [e.ts for e in await audit.entries(AuditQuery(limit=2, offset=1))] == [30.0, 20.0]
    assert await audit.count(AuditQuery(action="user")) == 2


async def test_audit_entries_cannot_be_changed_or_deleted_except_by_pruning(audit: AuditLog, database_url: str) -> None:
    await audit.add("ada", "login", now=100.0)
    await audit.add("ada", "logout", now=200.0)
    # Another program on the same database (sqlite3 shell, psql, a script): the triggers refuse it too.
    if audit.database.backend == "postgresql":
        raw_pg = await asyncpg.connect(database_url)
        try:
            with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="append-only"):
                await raw_pg.execute("UPDATE audit_log SET actor = 'mallory'")
            with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="only by pruning"):
                await raw_pg.execute("DELETE FROM audit_log")
        finally:
            await raw_pg.close()
    else:
        with sqlite3.connect(database_url) as raw:
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                raw.execute("UPDATE audit_log SET actor = 'mallory'")
            with pytest.raises(sqlite3.IntegrityError, match="only by pruning"):
                raw.execute("DELETE FROM audit_log")
    assert await audit.prune(150.0) == 1
    assert [e.action for e in await audit.entries(AuditQuery())] == ["logout"]
    assert await audit.prune(50.0) == 0  # the horizon never moves back
    with pytest.raises(conflicts()):
        async with audit.database.transaction() as tx:
            await tx.execute("DELETE FROM audit_log WHERE ts = 200.0")


async def test_audit_fields_are_cut_to_their_bounds_and_printable(audit: AuditLog) -> None:
    await audit.add("a" * 500, "x" * 500, "t" * 500, "line1\nline2" + "d" * 5000, "9" * 500)
    (entry,) = await audit.entries(AuditQuery())
    assert (len(entry.actor), len(entry.action), len(entry.target), len(entry.address)) == (80, 64, 200, 64)
    assert len(entry.detail) == 1000 and "\n" not in entry.detail
