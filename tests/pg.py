"""Tests on both backends: `database_url` is a fresh SQLite file or a fresh PostgreSQL database per test."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

# CI starts PostgreSQL (.ci/run); trust auth for user postgres on 127.0.0.1.
SERVER = "postgresql://postgres@127.0.0.1:5432"
_answers: bool | None = None


def _run(coro: object) -> object:
    from tests.conftest import run_async

    return run_async(coro)  # type: ignore[arg-type]


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(f"{SERVER}/postgres", timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def server_answers() -> bool:
    global _answers
    if _answers is None:
        try:
            _run(_admin("SELECT 1"))
            _answers = True
        except (TimeoutError, OSError, asyncpg.PostgresError):
            _answers = False
    return _answers


def create_database() -> str:
    """A new empty database on the test server; its URL."""
    if not server_answers():
        pytest.skip(f"no PostgreSQL server answers at {SERVER} (CI starts one: .ci/run)")
    name = f"nvrmon_t_{secrets.token_hex(6)}"
    _run(_admin(f"CREATE DATABASE {name}"))
    return f"{SERVER}/{name}"


def drop_database(url: str) -> None:
    _run(_admin(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)"))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    url = create_database()
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """What Database.open / Store.open / Credentials.open take, for each backend: a file path or a URL."""
    if request.param == "sqlite":
        yield str(tmp_path / "test.db")
        return
    url = create_database()
    try:
        yield url
    finally:
        drop_database(url)
