"""deploy/: a real hub behind a real nginx running deploy/nginx.conf (SSE, long-poll, agents' WebSockets, forwarded
addresses, a dead upstream skipped), the compose example, and the private PostgreSQL server of tests/cluster.py."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import httpx
import pytest
import yaml
from anyio.from_thread import BlockingPortal
from playwright.sync_api import Browser, expect

from tests.agent import Agent
from tests.browsing import Browsing, Fleet, api, wait_until
from tests.cluster import ROOT, Nginx, PrivatePostgres, nginx_binary, render_nginx
from tests.conftest import PASSWORD, LiveHub, create_user, free_port, login_form_token, run_async
from tests.sse import open_stream

# Not 127.0.0.1: a browser's address the hub can tell from nginx's own (all of 127/8 is this machine's loopback).
BROWSER_ADDRESS = "127.0.0.2"
SPOOFED = "198.51.100.9"


@pytest.fixture
def behind_nginx(
    start_hub: Callable[..., LiveHub], start_nginx: Callable[[list[int]], Nginx]
) -> tuple[LiveHub, Nginx, LiveHub]:
    """(the hub, nginx, the hub as seen through nginx). The upstream lists a dead hub first: nothing listens on its
    port, so every request nginx sends there has to be passed on to the live one."""
    hub = start_hub(TRUSTED_PROXIES="127.0.0.1", SSE_HEARTBEAT="1")
    nginx = start_nginx([free_port(), hub.port])
    return hub, nginx, nginx.front(hub)


def cursor_of(hub: LiveHub) -> str:
    health = hub.get("/healthz").json()
    return f"{health['epoch']}-{health['seq']}"


def test_nginx_config_passes_nginx_t(behind_nginx: tuple[LiveHub, Nginx, LiveHub]) -> None:
    _, nginx, _ = behind_nginx
    here = nginx.directory
    command = [nginx_binary(), "-t", "-p", str(here), "-c", str(nginx.conf), "-e", str(here / "t.log"),
               "-g", f"pid {here / 't.pid'};"]  # fmt: skip
    checked = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    assert checked.returncode == 0 and "test is successful" in checked.stderr, checked.stderr
    assert "[warn]" not in checked.stderr, checked.stderr


def test_nginx_skips_a_hub_that_refuses_connections(behind_nginx: tuple[LiveHub, Nginx, LiveHub]) -> None:
    _, nginx, front = behind_nginx
    statuses = [httpx.get(f"{front.url}/healthz", timeout=5).status_code for _ in range(20)]
    assert statuses == [200] * 20
    # nginx did try the dead hub, and took the next one instead of answering 502.
    assert "connect() failed (111: Connection refused) while connecting to upstream" in nginx.log()


def test_browser_through_nginx_shows_a_live_change_within_a_second(
    behind_nginx: tuple[LiveHub, Nginx, LiveHub], browser: Browser, portal: BlockingPortal
) -> None:
    _, _, front = behind_nginx
    fleet, browsing = Fleet(portal, front), Browsing(browser, front)
    try:
        agent, nvr_id = fleet.register("nvr-behind-nginx", cameras=2)  # its WebSocket goes through nginx too
        camera = next(c["id"] for c in api(front, f"nvrs/{nvr_id}")["cameras"] if c["ext_id"] == "cam1")
        page = browsing.open(f"{front.url}/cameras")
        row = page.locator(f"#camera-{camera}")
        expect(row).to_have_attribute("data-status", "online")
        time.sleep(2.5)  # a couple of heartbeats first: the stream stays open and unbuffered behind nginx
        sent = time.monotonic()
        fleet.send(agent, {"type": "camera_status", "camera_id": "cam1", "status": "offline"})
        expect(row).to_have_attribute("data-status", "offline", timeout=1_000)
        took = time.monotonic() - sent
        # Over SSE, not the long-poll fallback a buffering proxy would have forced.
        expect(page.locator("#live")).to_have_attribute("data-transport", "sse")
        print(f"\nbehind nginx: a camera change reached the page in {took * 1000:.0f} ms")
    finally:
        browsing.close()
        fleet.close_all()
    assert not browsing.errors, browsing.errors


# The browser test shares this module, and Playwright's sync API holds the main thread's event loop: the coroutines
# below run on a loop of their own (conftest.run_async).


def test_sse_heartbeats_pass_nginx_as_they_are_sent(behind_nginx: tuple[LiveHub, Nginx, LiveHub]) -> None:
    _, _, front = behind_nginx
    arrived: list[tuple[str | None, float]] = []

    async def read() -> None:
        async with open_stream(front, f"view=nvrs&since={cursor_of(front)}") as stream:
            await stream.next(skip_heartbeats=False)  # ready
            for _ in range(3):
                message = await stream.next(timeout=3, skip_heartbeats=False)
                arrived.append((message.event, time.monotonic()))

    run_async(read())
    assert [event for event, _ in arrived] == ["heartbeat"] * 3
    gaps = [b - a for (_, a), (_, b) in zip(arrived, arrived[1:], strict=False)]
    assert all(0.5 < gap < 1.6 for gap in gaps), gaps  # one a second, each as it was sent: nothing held back


def test_long_poll_through_nginx_holds_then_returns_the_change(behind_nginx: tuple[LiveHub, Nginx, LiveHub]) -> None:
    run_async(long_poll(behind_nginx[2]))


async def long_poll(front: LiveHub) -> None:
    agent, nvr_id = await Agent.register(front.ws_url, front.token, "nvr-poll-nginx", cameras=1)
    since = cursor_of(front)
    async with httpx.AsyncClient(base_url=front.url, headers=front.headers, timeout=30) as client:
        pending = asyncio.create_task(client.get(f"/poll?view=nvrs&since={since}"))
        await asyncio.sleep(1.0)
        assert not pending.done()  # held open by the hub, through nginx
        sent = time.monotonic()
        await agent.send({"type": "camera_status", "camera_id": "cam1", "status": "offline"})
        response = await asyncio.wait_for(pending, 5)
        took = time.monotonic() - sent
    assert response.status_code == 200 and f'id="nvr-{nvr_id}"' in response.text
    assert f'data-cursor="{cursor_of(front)}"' in response.text
    assert took < 1.0, took
    await agent.close()


def test_agent_websocket_through_nginx_registers_and_its_close_reaches_the_hub(
    start_hub: Callable[..., LiveHub], start_nginx: Callable[[list[int]], Nginx]
) -> None:
    hub = start_hub(TRUSTED_PROXIES="127.0.0.1", HEARTBEAT_TIMEOUT="30")
    run_async(agent_through(hub, start_nginx([hub.port]).front(hub)))


async def agent_through(hub: LiveHub, front: LiveHub) -> None:
    agent, nvr_id = await Agent.register(front.ws_url, front.token, "nvr-ws-nginx", cameras=3)
    assert hub.get(f"/api/nvrs/{nvr_id}").json()["status"] == "online"
    await agent.send({"type": "camera_status", "camera_id": "cam2", "status": "offline"})
    await agent.send({"type": "heartbeat"})

    def cam2() -> str:
        cameras = hub.get(f"/api/nvrs/{nvr_id}").json()["cameras"]
        return str(next(c["status"] for c in cameras if c["ext_id"] == "cam2"))

    wait_until(lambda: cam2() == "offline", timeout=3)
    await agent.close()
    # The close went through nginx to the hub: offline at once, not after the 30 s heartbeat timeout.
    wait_until(lambda: hub.get(f"/api/nvrs/{nvr_id}").json()["status"] == "offline", timeout=3)


def login_from(base_url: str, user: str, headers: dict[str, str]) -> httpx.Response:
    """A login through the form from BROWSER_ADDRESS, with `headers` on the post (an Origin, a forged header)."""
    transport = httpx.HTTPTransport(local_address=BROWSER_ADDRESS)
    with httpx.Client(base_url=base_url, transport=transport, timeout=10) as client:
        token = login_form_token(client.get("/login").text)
        form = {"username": user, "password": PASSWORD, "csrf_token": token}
        return client.post("/login", data=form, headers=headers)


def login_address(hub: LiveHub, user: str) -> str:
    entries = hub.get("/admin/audit.json", params={"action": "login", "actor": user}).json()["entries"]
    assert entries, f"no login of {user} in the audit log"
    return str(entries[0]["address"])  # newest first


def test_trusted_hub_sees_the_browser_address_nginx_forwards_and_no_forged_one(
    behind_nginx: tuple[LiveHub, Nginx, LiveHub],
) -> None:
    hub, _, front = behind_nginx
    create_user(hub.db_path, "carol", "viewer", PASSWORD)
    # The post carries the Origin a browser sends: the hub compares it with Host, which nginx must pass whole.
    forged = {"Origin": front.url, "X-Forwarded-For": SPOOFED}
    response = login_from(front.url, "carol", forged)
    assert response.status_code == 303, response.text[:300]
    assert login_address(hub, "carol") == BROWSER_ADDRESS  # nginx's $remote_addr, not what the browser claimed
    # Straight to the hub, bypassing nginx: the sender is not a trusted proxy, so its header means nothing.
    create_user(hub.db_path, "dave", "viewer", PASSWORD)
    assert login_from(hub.url, "dave", {"X-Forwarded-For": SPOOFED}).status_code == 303
    assert login_address(hub, "dave") == BROWSER_ADDRESS


def test_hub_without_trusted_proxies_sees_nginx_not_the_browser(
    start_hub: Callable[..., LiveHub], start_nginx: Callable[[list[int]], Nginx]
) -> None:
    hub = start_hub()  # NVRMON_TRUSTED_PROXIES unset
    front = start_nginx([hub.port]).front(hub)
    create_user(hub.db_path, "erin", "viewer", PASSWORD)
    assert login_from(front.url, "erin", {"Origin": front.url}).status_code == 303
    assert login_address(hub, "erin") == "127.0.0.1"  # the proxy's address: X-Forwarded-For ignored


def test_compose_example_runs_three_hubs_on_one_database_behind_nginx() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    services = compose["services"]
    hubs = {name: s for name, s in services.items() if name.startswith("hub")}
    assert len(hubs) == 3 and "postgres" in services and "nginx" in services
    envs = [s["environment"] for s in hubs.values()]
    assert len({e["NVRMON_DATABASE_URL"] for e in envs}) == 1  # one database
    assert {e["NVRMON_DATABASE_URL"].split(":", 1)[0] for e in envs} == {"postgresql"}
    assert len({e["NVRMON_SECRET_KEY"] for e in envs}) == 1  # a login on one hub is valid on the others
    assert len({e["NVRMON_AGENT_TOKEN"] for e in envs}) == 1
    assert len({e["NVRMON_NODE_ID"] for e in envs}) == 3
    # Each hub listens where deploy/nginx.conf's upstream expects it.
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    for env in envs:
        assert f"server 127.0.0.1:{env['NVRMON_PORT']} " in conf
    assert any("deploy/nginx.conf" in volume or "./nginx.conf" in volume for volume in services["nginx"]["volumes"])


def test_private_postgres_starts_accepts_stops_and_restarts(private_postgres: PrivatePostgres) -> None:
    async def query(statement: str) -> object:
        connection = await asyncpg.connect(private_postgres.url, timeout=5)
        try:
            return await connection.fetchval(statement)
        finally:
            await connection.close()

    assert run_async(query("SELECT 1")) == 1
    run_async(query("CREATE TABLE kept (n int)"))
    run_async(query("INSERT INTO kept VALUES (42)"))
    private_postgres.stop()
    assert not private_postgres.running()
    with pytest.raises(OSError):
        run_async(query("SELECT 1"))
    private_postgres.start()
    assert run_async(query("SELECT n FROM kept")) == 42  # the same server and data, on the same port
    assert run_async(query("SHOW port")) == str(private_postgres.port)


def test_nginx_conf_in_repository_is_what_the_tests_run(tmp_path: Path) -> None:
    template = (ROOT / "deploy" / "nginx.conf").read_text()
    rendered = render_nginx(template, [1111, 2222], 3333, tmp_path)
    # Only the upstream servers, the listen port and log paths differ from the file as shipped.
    changed = {line.strip() for line in set(rendered.splitlines()) ^ set(template.splitlines())}
    assert all(line.startswith(("server 127.0.0.1:", "listen ", "error_log ", "access_log ")) for line in changed)
    assert "server 127.0.0.1:1111 max_fails=1 fail_timeout=5s;" in rendered and "listen 127.0.0.1:3333;" in rendered
