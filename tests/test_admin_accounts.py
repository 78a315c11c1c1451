"""Accounts on the admin page (over HTTP against a live hub): each change works, is refused by the shared rules when
it must be, ends sessions when it should, and lands in the audit log with who and from where."""

from __future__ import annotations

import csv
import html
import io
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN, PASSWORD, LiveHub, run_cli
from tests.sse import open_stream

NEW_PASSWORD = "a fresh long passphrase"


class AdminPage:
    """The admin page as a logged-in admin's browser uses it: forms posted with the session's CSRF token."""

    def __init__(self, hub: LiveHub) -> None:
        self.hub = hub
        self.client = httpx.Client(base_url=hub.url, headers=hub.headers, follow_redirects=False)

    def __enter__(self) -> AdminPage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def csrf(self) -> str:
        match = re.search(r'<meta name="csrf-token" content="([^"]+)"', self.client.get("/admin").text)
        assert match is not None
        return match.group(1)

    def post(self, path: str, **form: str) -> httpx.Response:
        return self.client.post(path, data={**form, "csrf_token": self.csrf()})

    def audit(self, **filters: str) -> list[dict[str, Any]]:
        response = self.client.get("/admin/audit.json", params=filters)
        assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
        entries: list[dict[str, Any]] = response.json()["entries"]
        return entries


Pages = Callable[[LiveHub], AdminPage]


@pytest.fixture
def admin_page() -> Iterator[Pages]:
    """Opens AdminPages on hubs, closed after the test."""
    opened: list[AdminPage] = []

    def open_page(hub: LiveHub) -> AdminPage:
        opened.append(AdminPage(hub))
        return opened[-1]

    yield open_page
    for page in opened:
        page.__exit__()


def notice(response: httpx.Response) -> str:
    match = re.search(r'<div class="form-(?:note|error)" role="(?:status|alert)"[^>]*>(.*?)</div>', response.text, re.S)
    return html.unescape(match.group(1).strip()) if match else ""


def login(hub: LiveHub, name: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=hub.url) as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
        assert token is not None
        return client.post("/login", data={"username": name, "password": password, "csrf_token": token.group(1)})


def test_admin_page_manages_an_account_through_its_life_and_audits_each_step(
    live_hub: LiveHub, admin_page: Pages
) -> None:
    page = admin_page(live_hub)
    created = page.post("/admin/users", username="bob", role="viewer", password=PASSWORD)
    assert created.status_code == 200 and notice(created) == "Created viewer bob."
    assert 'data-user="bob"' in created.text
    assert notice(page.post("/admin/users/bob/role", role="operator")) == "bob is now operator."
    reset = page.post("/admin/users/bob/password", password=NEW_PASSWORD)
    assert notice(reset) == "Password of bob reset; its sessions have ended."
    assert login(live_hub, "bob", PASSWORD).status_code == 401
    bob = login(live_hub, "bob", NEW_PASSWORD)
    assert bob.status_code == 303
    cookie = {"Cookie": "; ".join(f"{k}={v}" for k, v in bob.cookies.items())}
    assert httpx.get(f"{live_hub.url}/api/summary", headers=cookie).status_code == 200

    disabled = page.post("/admin/users/bob/disable")
    assert "Disabled bob" in notice(disabled)
    assert httpx.get(f"{live_hub.url}/api/summary", headers=cookie).status_code == 401  # its session ended
    assert login(live_hub, "bob", NEW_PASSWORD).status_code == 401  # and it can't log in again
    assert "disabled" in run_cli(live_hub.db_path, "user", "list").stdout
    assert "Enabled bob" in notice(page.post("/admin/users/bob/enable"))
    assert login(live_hub, "bob", NEW_PASSWORD).status_code == 303
    deleted = page.post("/admin/users/bob/delete")
    assert notice(deleted) == "Deleted bob; its sessions have ended." and 'data-user="bob"' not in deleted.text

    entries = [e for e in page.audit(q="bob") if e["action"].startswith("user.")]
    assert [e["action"] for e in reversed(entries)] == [
        "user.create", "user.role", "user.password", "user.disable", "user.enable", "user.delete",
    ]  # fmt: skip
    assert {(e["actor"], e["address"]) for e in entries} == {(ADMIN, "127.0.0.1")}
    assert entries[-1]["detail"] == "role viewer" and entries[-2]["detail"] == "viewer -> operator"


def test_admin_page_refuses_self_harm_and_removing_the_last_admin(live_hub: LiveHub, admin_page: Pages) -> None:
    page = admin_page(live_hub)
    refused = page.post(f"/admin/users/{ADMIN}/disable")
    assert refused.status_code == 409 and "can't disable your own account" in notice(refused)
    assert page.post(f"/admin/users/{ADMIN}/delete").status_code == 409
    last = page.post(f"/admin/users/{ADMIN}/role", role="viewer")
    assert last.status_code == 409 and "last enabled admin" in notice(last)
    assert "last enabled admin" in run_cli(live_hub.db_path, "user", "remove", ADMIN).stderr
    weak = page.post("/admin/users", username="carol", role="viewer", password="short")
    assert weak.status_code == 400 and "a password is 8 to 1024 characters" in notice(weak)
    assert "exists already" in notice(
        page.post("/admin/users", username=ADMIN.upper(), role="viewer", password=PASSWORD)
    )
    assert page.post("/admin/users/nobody/disable").status_code == 404
    assert page.post("/admin/users/carol/role", role="root").status_code in (404, 409)
    # With a second admin the first may step down; nothing of the refused attempts is in the audit log.
    page.post("/admin/users", username="dana", role="admin", password=PASSWORD)
    assert notice(page.post(f"/admin/users/{ADMIN}/role", role="operator")) == f"{ADMIN} is now operator."
    # The demoted account is no admin any more: the admin page (and the audit log) refuse it at once.
    assert page.client.get("/admin").status_code == 403
    with sqlite3.connect(live_hub.db_path) as raw:
        actions = [row[0] for row in raw.execute("SELECT action FROM audit_log WHERE action LIKE 'user.%' ORDER BY id")]
    assert actions == ["user.create", "user.role"]


def test_account_changes_without_csrf_change_nothing(live_hub: LiveHub, admin_page: Pages) -> None:
    page = admin_page(live_hub)
    page.post("/admin/users", username="erin", role="viewer", password=PASSWORD)
    forged = page.client.post("/admin/users/erin/delete")
    assert forged.status_code == 403
    assert "erin" in run_cli(live_hub.db_path, "user", "list").stdout


def test_audit_records_logins_logouts_and_token_changes_and_exports_csv(live_hub: LiveHub, admin_page: Pages) -> None:
    page = admin_page(live_hub)
    assert login(live_hub, ADMIN, "wrong password!").status_code == 401
    with httpx.Client(base_url=live_hub.url) as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
        assert token is not None
        client.post("/login", data={"username": ADMIN, "password": PASSWORD, "csrf_token": token.group(1)})
        csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', client.get("/").text)
        assert csrf is not None
        assert client.post("/logout", data={"csrf_token": csrf.group(1)}).status_code == 303
    created = page.post("/admin/tokens", hostname="nvr-audit-1")
    agent_id = re.search(r"Agent token (\d+)", created.text)
    assert agent_id is not None
    page.post(f"/admin/tokens/{agent_id.group(1)}/revoke")
    embed = page.post("/admin/embeds", view="kpis", expires="1d")
    embed_id = re.search(r"Embed token (\d+)", embed.text)
    assert embed_id is not None
    page.post(f"/admin/embeds/{embed_id.group(1)}/revoke")
    api = page.post("/admin/api-tokens", name="grafana", scope="read")
    assert re.search(r'id="created-api-token">nvrapi_', api.text)
    api_id = re.search(r"API token (\d+) grafana", api.text)
    assert api_id is not None
    assert "Revoked API token grafana" in notice(page.post(f"/admin/api-tokens/{api_id.group(1)}/revoke"))
    assert run_cli(live_hub.db_path, "api-token", "create", "cron", "--scope", "operator").returncode == 0

    actions = [(e["actor"], e["action"], e["target"]) for e in reversed(page.audit())]
    for expected in [
        (ADMIN, "login.failed", ADMIN), (ADMIN, "login", ADMIN), (ADMIN, "logout", ADMIN),
        (ADMIN, "agent_token.create", "nvr-audit-1"), (ADMIN, "agent_token.revoke", agent_id.group(1)),
        (ADMIN, "embed.create", "kpis"), (ADMIN, "embed.revoke", embed_id.group(1)),
        (ADMIN, "api_token.create", "grafana"), (ADMIN, "api_token.revoke", "grafana"),
    ]:  # fmt: skip
        assert expected in actions, expected
    cli = [e for e in page.audit(action="api_token") if e["target"] == "cron"]
    assert len(cli) == 1 and cli[0]["actor"].startswith("cli") and cli[0]["address"] == "local"

    exported = page.client.get("/admin/audit.csv", params={"action": "login"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    # The family: the test's login, its failed one, and LiveHub's own login, newest first.
    assert [r["action"] for r in rows] == ["login", "login.failed", "login"]
    assert all(r["actor"] == ADMIN and r["address"] == "127.0.0.1" and r["time"].endswith("Z") for r in rows)
    assert float(rows[0]["ts"]) >= float(rows[1]["ts"]) >= float(rows[2]["ts"])
    assert rows[1]["detail"] == "wrong user name or password" and rows[1]["target"] == ADMIN
    (export,) = [e for e in page.audit(action="audit.export") if e["target"] == "csv"]  # taking a copy is audited
    assert export["actor"] == ADMIN and export["detail"] == "action=login"
    shown = page.client.get("/admin/audit", params={"action": "login.failed"})
    assert shown.status_code == 200 and shown.text.count("data-audit-id=") == 1
    assert "wrong user name or password" in shown.text


def test_audit_address_is_the_browsers_behind_a_trusted_proxy_only(start_hub: Any, admin_page: Pages) -> None:
    proxied = start_hub(TRUSTED_PROXIES="127.0.0.1")
    forwarded = {"X-Forwarded-For": "203.0.113.9"}
    with httpx.Client(base_url=proxied.url, headers=forwarded) as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
        assert token is not None
        client.post("/login", data={"username": "mallory", "password": "guessing!", "csrf_token": token.group(1)})
    (failed,) = admin_page(proxied).audit(action="login.failed")
    assert failed["address"] == "203.0.113.9" and failed["actor"] == "mallory"


def test_audit_address_ignores_forwarded_headers_from_untrusted_clients(live_hub: LiveHub, admin_page: Pages) -> None:
    with httpx.Client(base_url=live_hub.url, headers={"X-Forwarded-For": "203.0.113.9"}) as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
        assert token is not None
        client.post("/login", data={"username": "mallory", "password": "guessing!", "csrf_token": token.group(1)})
    (failed,) = admin_page(live_hub).audit(action="login.failed")
    assert failed["address"] == "127.0.0.1"


def test_audit_entries_past_the_retention_are_pruned_when_the_hub_runs(
    start_hub: Any, tmp_path: Any, admin_page: Pages
) -> None:
    db = tmp_path / "nvrmon.db"
    run_cli(db, "api-token", "create", "old", "--scope", "read")  # creates the file and an entry of now
    with sqlite3.connect(db) as raw:
        raw.execute("INSERT INTO audit_log (ts, actor, action) VALUES (1000.0, 'ada', 'login')")  # 1970
    hub = start_hub(AUDIT_RETENTION_DAYS="30")
    entries = admin_page(hub).audit()
    assert all(e["ts"] > 1000.0 for e in entries) and any(e["target"] == "old" for e in entries)


@pytest.mark.anyio
async def test_disabling_an_account_ends_its_open_live_stream(live_hub: LiveHub, admin_page: Pages) -> None:
    page = admin_page(live_hub)
    page.post("/admin/users", username="wall", role="viewer", password=PASSWORD)
    signed_in = login(live_hub, "wall", PASSWORD)
    display = SimpleNamespace(
        url=live_hub.url, headers={"Cookie": "; ".join(f"{k}={v}" for k, v in signed_in.cookies.items())}
    )
    async with open_stream(display, "view=dashboard") as stream:
        await stream.next(skip_heartbeats=False)  # connected: its first message came
        started = time.monotonic()
        assert "Disabled wall" in notice(page.post("/admin/users/wall/disable"))
        with pytest.raises(EOFError):
            while True:
                await stream.next(timeout=5)
        assert time.monotonic() - started < 3  # ended by the revocation, not by a timeout


def test_throttled_logins_are_audited_too(start_hub: Any, admin_page: Pages) -> None:
    hub = start_hub(LOGIN_MAX_FAILURES="2")
    assert [login(hub, "mallory", "guess number 1").status_code for _ in range(3)] == [401, 401, 429]
    entries = admin_page(hub).audit(action="login", actor="mallory")
    assert [e["action"] for e in reversed(entries)] == ["login.failed", "login.failed", "login.throttled"]
    assert entries[0]["detail"].startswith("retry in ")
