"""Who may see what: every route class refuses strangers, roles are enforced, sessions end, CSRF is required."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.testclient import TestClient

from nvrmon.access import accounts, guard, sessions
from nvrmon.application import create_app
from nvrmon.settings import Settings
from nvrmon.store.credentials import Credentials
from tests.conftest import PASSWORD, TOKEN, LiveHub, create_user, login_form_token, run_async, run_cli
from tests.sse import open_stream

PAGES = ["/", "/nvrs", "/cameras", "/nvrs/1", "/cameras/1", "/admin"]
APIS = ["/api/summary", "/api/nvrs", "/api/nvrs/1", "/api/cameras", "/api/cameras/1", "/api/events"]
STREAMS = ["/events?view=dashboard", "/poll?view=dashboard&wait=0"]

Factory = Callable[..., TestClient]


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[Factory]:
    """TestClients on one hub database with a viewer, an operator and an admin (password PASSWORD for each)."""
    db = tmp_path / "auth.db"
    for name, role in (("vera", "viewer"), ("otto", "operator"), ("ada", "admin")):
        create_user(db, name, role, PASSWORD)
    clients: list[TestClient] = []

    def make(base_url: str = "http://testserver", **settings: Any) -> TestClient:
        app = create_app(Settings(db_path=db, agent_token=TOKEN, **settings))
        client = TestClient(app, base_url=base_url, follow_redirects=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def log_in(client: TestClient, name: str, password: str = PASSWORD) -> Any:
    token = login_form_token(client.get("/login").text)
    return client.post("/login", data={"username": name, "password": password, "csrf_token": token})


def csrf_of(client: TestClient) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', client.get("/nvrs").text)
    assert match is not None
    return match.group(1)


def test_every_route_declares_who_may_use_it(make_client: Factory) -> None:
    app: Any = make_client().app
    while not hasattr(app, "routes"):  # inside the security headers and the /events fast path (same rule itself)
        app = app.app
    for route in app.routes:
        if isinstance(route, Mount):
            assert route.path == "/static", route.path  # only static files are mounted without a rule
        elif isinstance(route, WebSocketRoute):
            assert route.path == "/ws/agent"  # agents authenticate with bearer tokens (tests/test_tokens.py)
        else:
            assert isinstance(route, Route)
            assert guard.access_of(route.endpoint) is not None, f"{route.path} skips guard"


@pytest.mark.parametrize("path", PAGES)
def test_pages_send_strangers_to_the_login_page(make_client: Factory, path: str) -> None:
    response = make_client().get(path)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=" + path.replace("/", "%2F")


@pytest.mark.parametrize("path", APIS)
def test_api_refuses_strangers_with_401_json(make_client: Factory, path: str) -> None:
    response = make_client().get(path)
    assert response.status_code == 401
    assert response.json() == {"error": {"code": "unauthenticated", "message": "login required"}}


@pytest.mark.parametrize("path", STREAMS)
def test_streams_and_long_poll_refuse_strangers_before_sending_anything(make_client: Factory, path: str) -> None:
    response = make_client().get(path)
    assert response.status_code == 401
    assert "text/event-stream" not in response.headers["content-type"] and "nvr" not in response.text


def test_healthz_tells_strangers_only_that_the_hub_is_up(make_client: Factory) -> None:
    client = make_client()
    public = client.get("/healthz").json()
    assert set(public) == {"status", "node", "database"}  # which hub answered, and whether its database does
    assert (public["status"], public["database"]) == ("ok", {"ok": True}) and public["node"]
    assert log_in(client, "vera").status_code == 303
    health = client.get("/healthz").json()
    assert {"status", "node", "seq", "epoch", "agents", "subscribers"} <= set(health)
    assert health["database"]["backend"] == "sqlite" and health["node"] == public["node"]


def test_forged_or_unknown_session_cookie_is_a_stranger(make_client: Factory) -> None:
    client = make_client()
    client.cookies.set("nvrmon_session", "made-up.value")
    assert client.get("/api/summary").status_code == 401


def test_viewer_reads_everything_but_admin_pages(make_client: Factory) -> None:
    client = make_client()
    log_in(client, "vera")
    for path in ["/", "/nvrs", "/cameras", *APIS[:1], "/api/nvrs"]:
        assert client.get(path).status_code == 200, path
    assert client.get("/admin").status_code == 403
    refused = client.post("/admin/embeds", data={"view": "kpis", "csrf_token": csrf_of(client)})
    assert refused.status_code == 403 and "admin role" in refused.text


@pytest.mark.parametrize(("name", "admin"), [("otto", False), ("ada", True)])
def test_admin_pages_need_the_admin_role(make_client: Factory, name: str, admin: bool) -> None:
    client = make_client()
    log_in(client, name)
    assert client.get("/admin").status_code == (200 if admin else 403)
    assert ('href="/admin"' in client.get("/").text) is admin


def test_login_with_wrong_password_starts_no_session(make_client: Factory) -> None:
    client = make_client()
    response = log_in(client, "vera", "wrong password")
    assert response.status_code == 401 and "Wrong user name or password." in response.text
    assert "nvrmon_session" not in client.cookies
    assert client.get("/api/summary").status_code == 401


def test_unknown_user_gets_the_same_answer_as_a_wrong_password(make_client: Factory) -> None:
    client = make_client()
    unknown, wrong = log_in(client, "nobody"), log_in(client, "vera", "wrong password")
    assert unknown.status_code == wrong.status_code == 401
    assert "Wrong user name or password." in unknown.text


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "/logout"])
def test_login_redirects_only_to_paths_on_this_hub(make_client: Factory, target: str) -> None:
    client = make_client()
    token = login_form_token(client.get(f"/login?next={target}").text)
    response = client.post(
        "/login", data={"username": "vera", "password": PASSWORD, "csrf_token": token, "next": target}
    )
    assert response.status_code == 303 and response.headers["location"] == "/"


def test_login_returns_to_the_page_that_asked(make_client: Factory) -> None:
    client = make_client()
    next_path = client.get("/cameras?transport=poll").headers["location"].split("next=", 1)[1]
    token = login_form_token(client.get(f"/login?next={next_path}").text)
    form = {"username": "vera", "password": PASSWORD, "csrf_token": token, "next": "/cameras?transport=poll"}
    assert client.post("/login", data=form).headers["location"] == "/cameras?transport=poll"


def test_login_form_without_its_csrf_token_is_refused(make_client: Factory) -> None:
    client = make_client()
    client.get("/login")
    response = client.post("/login", data={"username": "vera", "password": PASSWORD})
    assert response.status_code == 403 and "nvrmon_session" not in client.cookies


def test_login_from_another_site_is_refused_even_with_a_token(make_client: Factory) -> None:
    client = make_client()
    token = login_form_token(client.get("/login").text)
    response = client.post(
        "/login",
        data={"username": "vera", "password": PASSWORD, "csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403


def test_state_changing_requests_need_the_session_csrf_token(make_client: Factory) -> None:
    client = make_client()
    log_in(client, "ada")
    token = csrf_of(client)
    assert client.post("/logout").status_code == 403
    assert client.post("/logout", data={"csrf_token": "x" * len(token)}).status_code == 403
    assert client.post("/logout", headers={"X-CSRF-Token": token, "Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert client.get("/api/summary").status_code == 200  # none of those logged the user out
    assert client.post("/logout", headers={"X-CSRF-Token": token}).status_code == 303  # the htmx way


def test_csrf_token_of_one_session_is_useless_in_another(make_client: Factory) -> None:
    first, second = make_client(), make_client()
    log_in(first, "ada")
    log_in(second, "ada")
    assert second.post("/logout", data={"csrf_token": csrf_of(first)}).status_code == 403


def test_logout_ends_the_session_on_the_server(make_client: Factory) -> None:
    client = make_client()
    log_in(client, "vera")
    stolen = dict(client.cookies)
    response = client.post("/logout", data={"csrf_token": csrf_of(client)})
    assert response.status_code == 303 and response.headers["location"] == "/login?ended=signed-out"
    thief = make_client()
    for name, value in stolen.items():
        thief.cookies.set(name, value)
    assert thief.get("/api/summary").status_code == 401


def test_new_password_or_removed_user_ends_existing_sessions(make_client: Factory, tmp_path: Path) -> None:
    alice, bob = make_client(), make_client()
    log_in(alice, "vera")
    log_in(bob, "otto")

    async def change() -> None:
        credentials = await Credentials.open(tmp_path / "auth.db")
        await accounts.change_password(credentials, "vera", "a new password")
        await credentials.remove_user("otto")
        await credentials.close()

    run_async(change())
    assert alice.get("/api/summary").status_code == 401
    assert bob.get("/api/summary").status_code == 401
    assert log_in(alice, "vera", "a new password").status_code == 303


class Clock(SimpleNamespace):
    """Stands in for the time module inside nvrmon.access.sessions, `offset` seconds in the future."""

    offset: float = 0.0

    def time(self) -> float:
        return time.time() + self.offset


@pytest.mark.parametrize(("idle", "absolute", "away", "still_in"), [(60, 3600, 30, True), (60, 3600, 61, False)])
def test_session_ends_after_the_idle_timeout(
    make_client: Factory, monkeypatch: pytest.MonkeyPatch, idle: int, absolute: int, away: int, still_in: bool
) -> None:
    client = make_client(session_idle_timeout=idle, session_max_age=absolute)
    log_in(client, "vera")
    clock = Clock()
    monkeypatch.setattr(sessions, "time", clock)
    clock.offset = away
    assert (client.get("/api/summary").status_code == 200) is still_in


def test_session_ends_after_the_absolute_timeout_however_busy(
    make_client: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client(session_idle_timeout=100, session_max_age=250)
    log_in(client, "vera")
    clock = Clock()
    monkeypatch.setattr(sessions, "time", clock)
    for offset in (90, 180, 240):  # busy: never idle for 100 s
        clock.offset = offset
        assert client.get("/api/summary").status_code == 200, offset
    clock.offset = 260
    assert client.get("/api/summary").status_code == 401


def test_login_locks_a_user_name_after_repeated_failures(make_client: Factory) -> None:
    client = make_client(login_max_failures=3, login_lockout=600)
    for _ in range(3):
        assert log_in(client, "vera", "guess").status_code == 401
    locked = log_in(client, "vera")  # even the right password waits out the lockout
    assert locked.status_code == 429 and "Too many failed attempts" in locked.text
    assert locked.headers["retry-after"] == "600"
    assert log_in(client, "otto").status_code == 303  # other accounts are unaffected


def test_login_throttles_an_address_that_sprays_many_names(make_client: Factory) -> None:
    client = make_client(login_max_failures=100, login_ip_max_failures=4)
    for name in ("a1", "a2", "a3", "a4"):
        assert log_in(client, name, "guess").status_code == 401
    assert log_in(client, "vera").status_code == 429


def test_session_cookie_is_httponly_lax_and_not_secure_over_plain_http(make_client: Factory) -> None:
    client = make_client()
    cookie = log_in(client, "vera").headers["set-cookie"]
    assert cookie.startswith("nvrmon_session=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie


@pytest.mark.parametrize(
    ("base_url", "setting"), [("https://testserver", "auto"), ("http://testserver", "always")], ids=["https", "proxy"]
)
def test_session_cookie_is_secure_and_host_bound_over_https(make_client: Factory, base_url: str, setting: str) -> None:
    client = make_client(base_url=base_url, secure_cookies=setting)
    login_page = client.get("/login")
    csrf_cookie = login_page.headers["set-cookie"].split(";", 1)[0]
    assert csrf_cookie.startswith("__Host-nvrmon_csrf=") and "Secure" in login_page.headers["set-cookie"]
    token = login_form_token(login_page.text)
    # Sent by hand: behind a TLS proxy the browser speaks https, while this client talks plain http to the hub.
    response = client.post(
        "/login", data={"username": "vera", "password": PASSWORD, "csrf_token": token}, headers={"Cookie": csrf_cookie}
    )
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("__Host-nvrmon_session=") and "Secure" in cookie and "Path=/" in cookie
    assert "Domain" not in cookie


def test_responses_forbid_inline_script_framing_and_sniffing(make_client: Factory) -> None:
    client = make_client()
    log_in(client, "vera")
    for path in ["/", "/login", "/api/summary", "/healthz"]:
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe" not in csp, path
        assert "frame-ancestors 'none'" in csp and headers["x-frame-options"] == "DENY", path
        assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "same-origin", path


def test_templates_have_no_inline_script_style_or_event_handlers() -> None:
    for template in Path(__file__).parent.parent.joinpath("templates").rglob("*.html"):
        html = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), template  # every script is a file
        assert not re.search(r"\sstyle=", html), template  # the CSP allows no inline style
        assert not re.search(r"\son[a-z]+=", html), template


def test_pages_show_who_is_logged_in_with_a_csrf_protected_logout(make_client: Factory) -> None:
    client = make_client()
    log_in(client, "vera")
    html = client.get("/").text
    assert "vera" in html and 'action="/logout"' in html
    assert f'name="csrf_token" value="{csrf_of(client)}"' in html


def test_logged_in_user_visiting_login_goes_on_to_the_page(make_client: Factory) -> None:
    client = make_client()
    log_in(client, "vera")
    response = client.get("/login?next=/cameras")
    assert response.status_code == 303 and response.headers["location"] == "/cameras"


@pytest.mark.anyio
async def test_removing_a_user_ends_their_open_event_stream_at_once(live_hub: LiveHub) -> None:
    create_user(live_hub.db_path, "wally", "viewer", PASSWORD)
    wall = SimpleNamespace(url=live_hub.url, headers={"Cookie": live_hub.login("wally", PASSWORD)})
    async with open_stream(wall, "view=dashboard") as stream:
        assert (await stream.next(skip_heartbeats=False)).event == "ready"
        removed = time.monotonic()
        assert run_cli(live_hub.db_path, "user", "remove", "wally").returncode == 0  # from another process
        with pytest.raises(EOFError):
            while True:
                await stream.next(timeout=5, skip_heartbeats=False)
        assert time.monotonic() - removed < 3
    refused = httpx.get(f"{live_hub.url}/events?view=dashboard", headers=wall.headers)
    assert refused.status_code == 401


def test_steady_requests_keep_a_session_with_a_short_idle_timeout(
    make_client: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client(session_idle_timeout=30, session_max_age=3600)
    log_in(client, "vera")
    clock = Clock()
    monkeypatch.setattr(sessions, "time", clock)
    for offset in (20, 40, 60, 80):  # a request every 20 s never leaves the session idle for 30 s
        clock.offset = offset
        assert client.get("/api/summary").status_code == 200, offset


@pytest.mark.anyio
async def test_an_open_stream_keeps_its_session_alive_however_short_the_idle_timeout(
    start_hub: Callable[..., LiveHub],
) -> None:
    hub = start_hub(SESSION_IDLE_TIMEOUT="3", SSE_HEARTBEAT="1")
    async with open_stream(hub, "view=dashboard") as stream:
        assert (await stream.next(skip_heartbeats=False)).event == "ready"
        opened = time.monotonic()
        while time.monotonic() - opened < 8:  # well past the idle timeout, reading all the while
            await stream.next(timeout=3, skip_heartbeats=False)
        async with httpx.AsyncClient(base_url=hub.url, headers=hub.headers) as client:
            assert (await client.get("/api/summary")).status_code == 200
    await asyncio.sleep(5)  # with the stream closed, the session is idle and ends
    assert hub.get("/api/summary").status_code == 401
