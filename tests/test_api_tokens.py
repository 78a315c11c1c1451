"""API tokens: created once from the CLI, sent as Bearer on /api only, read vs operator scope, revoked at once."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.testclient import TestClient

from nvrmon.access import api_tokens
from nvrmon.access.guard import api_error
from nvrmon.access.sessions import Auth
from nvrmon.settings import Settings
from nvrmon.store.credentials import Credentials
from nvrmon.store.database import Database
from nvrmon.web.login import error_page
from nvrmon.web.openapi import ApiSection, Operation
from tests.conftest import LiveHub, run_async, run_cli


def create_token(db: Path, name: str, scope: str) -> str:
    result = run_cli(db, "api-token", "create", name, "--scope", scope)
    assert result.returncode == 0, result.stderr
    assert "shown once" in result.stderr
    token = result.stdout.strip()
    assert token.startswith("nvrapi_") and len(token.splitlines()) == 1  # stdout is the token alone, for scripts
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_api_token_cli_prints_once_lists_and_keeps_only_a_hash(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    token = create_token(db, "grafana", "read")
    create_token(db, "cmdb-sync", "operator")
    listing = run_cli(db, "api-token", "list")
    assert listing.returncode == 0
    assert "grafana" in listing.stdout and "cmdb-sync" in listing.stdout and "operator" in listing.stdout
    assert token not in listing.stdout and token[:11] + "…" in listing.stdout  # the prefix, never the token
    with sqlite3.connect(db) as raw:
        stored = [row[0] for row in raw.execute("SELECT token_hash FROM api_tokens")]
    assert token not in " ".join(stored) and all(len(h) == 64 for h in stored)
    again = run_cli(db, "api-token", "create", "grafana", "--scope", "read")
    assert again.returncode == 1 and "exists already" in again.stderr
    bad = run_cli(db, "api-token", "create", "grafana", "--scope", "admin")
    assert bad.returncode != 0 and "invalid choice" in bad.stderr
    assert run_cli(db, "api-token", "revoke", "grafana").returncode == 0
    assert "revoked" in run_cli(db, "api-token", "list").stdout
    assert run_cli(db, "api-token", "revoke", "grafana").returncode == 1  # nothing live left by that name
    assert run_cli(db, "api-token", "create", "grafana", "--scope", "read").returncode == 0  # the name is free again


def test_bearer_token_reads_the_api_and_revocation_refuses_the_next_request(live_hub: LiveHub) -> None:
    token = create_token(live_hub.db_path, "grafana", "read")
    ok = httpx.get(f"{live_hub.url}/api/summary", headers=bearer(token))
    assert ok.status_code == 200 and "nvrs_total" in ok.json()
    assert httpx.get(f"{live_hub.url}/api/nvrs", headers=bearer(token)).json()["total"] == 0
    assert run_cli(live_hub.db_path, "api-token", "revoke", "grafana").returncode == 0
    gone = httpx.get(f"{live_hub.url}/api/summary", headers=bearer(token))
    assert gone.status_code == 401 and gone.json()["error"]["code"] == "invalid_token"
    assert gone.headers["www-authenticate"].startswith("Bearer")


def test_api_refuses_no_token_and_malformed_tokens_with_the_error_shape(live_hub: LiveHub) -> None:
    none = httpx.get(f"{live_hub.url}/api/nvrs")
    assert none.status_code == 401 and none.json() == {
        "error": {"code": "unauthenticated", "message": "login required"}
    }
    for header in ("Bearer nvrapi_" + "x" * 43, "Bearer not-a-token", "bearer  nvrapi_"):
        response = httpx.get(f"{live_hub.url}/api/nvrs", headers={"Authorization": header})
        assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_token", header
    # Another scheme is a proxy's (nginx auth_basic passes it on): not a token, so the session cookie decides.
    basic = {"Authorization": "Basic YWRtaW46YWRtaW4="}
    assert httpx.get(f"{live_hub.url}/api/nvrs", headers=basic).json()["error"]["code"] == "unauthenticated"
    assert httpx.get(f"{live_hub.url}/api/nvrs", headers={**basic, **live_hub.headers}).status_code == 200
    # A bad token is refused even with a good session cookie alongside: the request said who it is.
    mixed = httpx.get(f"{live_hub.url}/api/nvrs", headers={**live_hub.headers, "Authorization": "Bearer nope"})
    assert mixed.status_code == 401


def test_bearer_tokens_open_no_pages_or_admin(live_hub: LiveHub) -> None:
    token = create_token(live_hub.db_path, "ops", "operator")
    for path in ("/", "/nvrs", "/admin"):
        response = httpx.get(f"{live_hub.url}{path}", headers=bearer(token))
        assert response.status_code == 303 and response.headers["location"].startswith("/login"), path


def test_last_used_is_written_at_most_once_a_minute(live_hub: LiveHub) -> None:
    token = create_token(live_hub.db_path, "poller", "read")

    def last_used() -> float:
        with sqlite3.connect(live_hub.db_path) as raw:
            return float(raw.execute("SELECT last_used FROM api_tokens WHERE name = 'poller'").fetchone()[0])

    assert last_used() == 0.0
    for _ in range(5):
        assert httpx.get(f"{live_hub.url}/api/summary", headers=bearer(token)).status_code == 200
    first = last_used()
    assert first > 0
    for _ in range(5):
        httpx.get(f"{live_hub.url}/api/summary", headers=bearer(token))
    assert last_used() == first  # five more reads, no write
    with sqlite3.connect(live_hub.db_path) as raw:  # as if the last write were a minute ago
        raw.execute("UPDATE api_tokens SET last_used = last_used - 61 WHERE name = 'poller'")
    httpx.get(f"{live_hub.url}/api/summary", headers=bearer(token))
    assert last_used() > first - 61 + 1
    listing = run_cli(live_hub.db_path, "api-token", "list").stdout
    assert "never" not in listing.splitlines()[1]


# -- the guard on a write route: read tokens refused before anything else ------------------------------------------

seen: list[str] = []  # what the write handler got to see (nothing, for a refused request)


async def rename(request: Request) -> JSONResponse:
    body = await request.body()
    seen.append(body.decode())
    if not body.startswith(b"{"):
        return api_error(422, "the body must be a JSON object")
    return JSONResponse({"renamed": True, "by": request.state.identity.name})


WRITE = ApiSection((Operation("PATCH", "/api/things/{thing_id:int}", rename, "operator", "Rename", {}),))


@pytest.fixture
def write_app(database_url: str) -> Iterator[tuple[TestClient, str]]:
    """A Starlette app with one operator write route behind the real guard, auth and database."""
    db = database_url

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        database = await Database.open(db)
        auth = await Auth.open(Settings(database_url=db), Credentials(database))
        yield {"auth": auth, "error_page": error_page}
        await database.close()

    seen.clear()
    with TestClient(Starlette(routes=WRITE.routes(), lifespan=lifespan)) as client:
        yield client, db


def make_token(db: Path | str, name: str, scope: str) -> str:
    async def make() -> str:
        database = await Database.open(db)
        try:
            token, _ = await api_tokens.create(database, name, scope, actor="test", address="local")
            return token
        finally:
            await database.close()

    return run_async(make())


def test_read_token_gets_403_on_a_write_before_its_body_is_read(write_app: tuple[TestClient, str]) -> None:
    client, db = write_app
    read = make_token(db, "reader", "read")
    for body in (b"not json at all", b'{"name": "x"}', b"x" * 10_000):
        response = client.patch("/api/things/1", content=body, headers=bearer(read))
        assert response.status_code == 403
        assert response.json() == {"error": {"code": "read_only_token", "message": "this API token is read-only"}}
    response = client.patch("/api/things/99999999999999999999", headers=bearer(read))
    assert response.status_code == 403  # not even the path's id is looked at
    assert seen == []


def test_operator_token_writes_without_csrf_and_gets_body_validation(write_app: tuple[TestClient, str]) -> None:
    client, db = write_app
    operator = make_token(db, "deployer", "operator")
    invalid = client.patch("/api/things/1", content=b"nope", headers=bearer(operator))
    assert invalid.status_code == 422 and invalid.json()["error"]["code"] == "invalid"
    done = client.patch("/api/things/1", content=b'{"name": "x"}', headers=bearer(operator))
    assert done.status_code == 200 and done.json() == {"renamed": True, "by": "token:deployer"}
    # Without a token the same write needs a session and its CSRF token.
    assert client.patch("/api/things/1", content=b"{}").status_code == 401
