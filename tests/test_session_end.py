"""A browser whose session ended is told why on the login page; the demo account keeps its password across restarts."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from nvrmon.access import accounts
from nvrmon.application import create_app
from nvrmon.settings import Settings
from nvrmon.store.credentials import Credentials
from tests.conftest import ADMIN, PASSWORD, TOKEN, create_user, login_form_token, run_async

GONE = (
    "Your session ended: signed out elsewhere, expired, or the account was removed or its password changed. "
    "Sign in again to go on."
)
Client = Callable[..., TestClient]


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Client]:
    """Start a hub app with settings overrides and log in as the admin (through the form)."""
    opened: list[TestClient] = []

    def start(**settings: float) -> TestClient:
        create_user(tmp_path / "end.db", ADMIN, "admin", PASSWORD)
        client = TestClient(create_app(Settings(db_path=tmp_path / "end.db", agent_token=TOKEN, **settings)))
        client.__enter__()
        opened.append(client)
        token = login_form_token(client.get("/login").text)
        client.post("/login", data={"username": ADMIN, "password": PASSWORD, "csrf_token": token})
        assert client.get("/").url.path == "/"
        return client

    yield start
    for client in opened:
        client.__exit__(None, None, None)


def notice(html: str) -> str:
    if 'class="form-notice"' not in html:
        return ""
    return " ".join(html.split('class="form-notice" role="status">', 1)[1].split("</div>", 1)[0].split())


def change(db: Path, action: Callable[[Credentials], object]) -> None:
    async def run() -> None:
        credentials = await Credentials.open(db)
        try:
            await action(credentials)  # type: ignore[misc]
        finally:
            await credentials.close()

    run_async(run())


def test_signing_out_says_so(hub: Client) -> None:
    client = hub()
    page = client.get("/")
    csrf = page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    out = client.post("/logout", headers={"X-CSRF-Token": csrf})
    assert out.url.path == "/login" and notice(out.text) == "You signed out."


@pytest.mark.parametrize("how", ["password", "removed"])
def test_a_session_ended_by_its_account_says_the_same_whichever_happened(hub: Client, tmp_path: Path, how: str) -> None:
    client = hub()
    if how == "password":
        change(tmp_path / "end.db", lambda c: accounts.change_password(c, ADMIN, "another passphrase"))
    else:
        change(tmp_path / "end.db", lambda c: c.remove_user(ADMIN))
    page = client.get("/nvrs")
    assert page.url.path == "/login" and notice(page.text) == GONE
    assert notice(client.get("/login").text) == ""  # told once: the stale cookie is gone


def test_an_expired_session_says_it_expired(hub: Client) -> None:
    client = hub(session_idle_timeout=1.0)  # (past the maximum age the browser drops the cookie by itself)
    time.sleep(1.3)
    page = client.get("/cameras")
    assert page.url.path == "/login" and notice(page.text) == "Your session expired. Sign in again to go on."
    assert page.url.params["next"] == "/cameras"


def test_a_fresh_browser_and_a_forged_cookie_see_no_reason(hub: Client) -> None:
    client = hub()
    client.cookies.set("nvrmon_session", "forged.value")
    assert notice(client.get("/").text) == ""


def test_the_demo_password_survives_a_restart_and_so_do_its_sessions(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"

    async def twice() -> tuple[str, str, bool, str]:
        credentials = await Credentials.open(db)
        try:
            _, first = await accounts.ensure_demo_user(credentials)
            user = await credentials.user(accounts.DEMO_USER)
            assert user is not None
            await credentials.create_session("h" * 64, user.id, time.time(), "127.0.0.1")
            _, second = await accounts.ensure_demo_user(credentials)  # the next `serve --demo` on this database
            kept = await credentials.session("h" * 64) is not None
            await accounts.change_password(credentials, accounts.DEMO_USER, "changed by hand 123")
            _, third = await accounts.ensure_demo_user(credentials)
            return first, second, kept, third
        finally:
            await credentials.close()

    first, second, kept, third = run_async(twice())
    assert first == second and kept
    assert third not in (first, "changed by hand 123")  # a password nobody knows any more is replaced and printed
