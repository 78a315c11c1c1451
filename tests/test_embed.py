"""Embeds: scoped pages and streams, framing only by the token's origins, CORS for allowlisted portals, revocation."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from nvrmon.access import embed_tokens as embed
from nvrmon.application import create_app
from nvrmon.settings import Settings
from nvrmon.store.credentials import Credentials
from tests.agent import Agent
from tests.conftest import TOKEN, LiveHub, run_async, run_cli
from tests.sse import open_stream

PORTAL = "https://portal.example"


def make_embed(
    db: Path, view: str, *, nvr_id: int | None = None, region: str | None = None, origins: tuple[str, ...] = (PORTAL,),
    ttl: float = 3600,
) -> str:  # fmt: skip
    async def create() -> str:
        credentials = await Credentials.open(db)
        try:
            scope = embed.Scope.of(view, nvr_id=nvr_id, region=region)
            token, _ = await embed.create(credentials, scope, origins=origins, ttl=ttl, label="test", created_by="t")
            return token
        finally:
            await credentials.close()

    return run_async(create())


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(db_path=tmp_path / "e.db", agent_token=TOKEN))) as client:
        yield client


def register(client: TestClient, hostname: str, region: str) -> int:
    with client.websocket_connect("/ws/agent", headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
        ws.send_json({"type": "hello", "protocol": 1, "nvr": {"hostname": hostname, "region": region},
                      "cameras": [{"id": "c1", "name": f"{hostname} cam", "status": "online"}]})  # fmt: skip
        return int(ws.receive_json()["nvr_id"])


def test_embed_page_shows_only_its_region_and_may_be_framed_by_its_origins(client: TestClient, tmp_path: Path) -> None:
    token = make_embed(tmp_path / "e.db", "kpis", origins=(PORTAL, "http://127.0.0.1:9"))
    response = client.get(f"/embed/{token}")
    assert response.status_code == 200
    html = response.text
    assert 'id="kpis"' in html and 'id="event-list"' not in html and 'id="toasts"' not in html
    assert 'href="/nvrs"' in html and "<nav" not in html and 'action="/logout"' not in html  # no hub chrome
    assert f'hx-sse:connect="/embed/{token}/events?since=' in html
    csp = response.headers["content-security-policy"]
    assert f"frame-ancestors 'self' {PORTAL} http://127.0.0.1:9" in csp and "script-src 'self'" in csp
    assert "x-frame-options" not in response.headers and response.headers["referrer-policy"] == "no-referrer"


def test_nvrs_embed_for_a_region_lists_only_that_regions_nvrs(client: TestClient, tmp_path: Path) -> None:
    north, south = register(client, "nvr-north", "North"), register(client, "nvr-south", "South")
    html = client.get(f"/embed/{make_embed(tmp_path / 'e.db', 'nvrs', region='North')}").text
    assert f'id="nvr-{north}"' in html and f'id="nvr-{south}"' not in html
    assert 'id="nvr-stats"' not in html  # fleet-wide figures would tell about other regions


def test_nvr_embed_shows_its_nvr_and_cameras_only(client: TestClient, tmp_path: Path) -> None:
    mine, other = register(client, "nvr-mine", "North"), register(client, "nvr-other", "North")
    html = client.get(f"/embed/{make_embed(tmp_path / 'e.db', 'nvr', nvr_id=mine)}").text
    assert f'id="nvr-{mine}-facts"' in html and "nvr-mine cam" in html and "nvr-other" not in html
    missing = make_embed(tmp_path / "e.db", "nvr", nvr_id=other + 100)
    assert client.get(f"/embed/{missing}").status_code == 404


@pytest.mark.parametrize("state", ["unknown", "revoked", "expired", "malformed"])
def test_unusable_embed_tokens_show_nothing(client: TestClient, tmp_path: Path, state: str) -> None:
    db = tmp_path / "e.db"
    token = {"unknown": "emb_" + "A" * 43, "malformed": "emb_<script>"}.get(state) or make_embed(
        db, "kpis", ttl=0.5 if state == "expired" else 3600
    )
    if state == "revoked":
        assert run_cli(db, "embed", "revoke", "1").returncode == 0
    if state == "expired":
        time.sleep(0.6)
    for path in (f"/embed/{token}", f"/embed/{token}/fragment", f"/embed/{token}/events"):
        response = client.get(path)
        assert response.status_code == 404 and 'id="kpis"' not in response.text, path


def test_embed_routes_do_not_accept_a_session_in_place_of_a_token(client: TestClient) -> None:
    # Even a logged-in admin's cookie opens nothing under /embed without a valid token.
    assert client.get("/embed/not-a-token", headers={"Cookie": "nvrmon_session=x.y"}).status_code == 404


def test_cors_fragment_answers_allowlisted_origins_only_and_never_with_credentials(
    client: TestClient, tmp_path: Path
) -> None:
    token = make_embed(tmp_path / "e.db", "kpis")
    allowed = client.get(f"/embed/{token}/fragment", headers={"Origin": PORTAL})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == PORTAL
    assert "access-control-allow-credentials" not in allowed.headers and allowed.headers["vary"] == "Origin"
    assert 'id="kpis"' in allowed.text
    assert f'hx-sse:connect="http://testserver/embed/{token}/events?since=' in allowed.text  # absolute: cross-origin
    refused = client.get(f"/embed/{token}/fragment", headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
    same_site = client.get(f"/embed/{token}/fragment")
    assert same_site.status_code == 200 and "access-control-allow-origin" not in same_site.headers


def test_cors_preflight_allows_htmx_headers_from_listed_origins_only(client: TestClient, tmp_path: Path) -> None:
    token = make_embed(tmp_path / "e.db", "kpis")
    ask = {"Origin": PORTAL, "Access-Control-Request-Method": "GET"}
    htmx_headers = "hx-request, hx-source, hx-current-url, hx-request-type, last-event-id"
    ok = client.options(f"/embed/{token}/events", headers={**ask, "Access-Control-Request-Headers": htmx_headers})
    assert ok.status_code == 204 and ok.headers["access-control-allow-origin"] == PORTAL
    assert set(ok.headers["access-control-allow-headers"].split(", ")) == set(htmx_headers.split(", "))
    extra = client.options(f"/embed/{token}/events", headers={**ask, "Access-Control-Request-Headers": "x-evil"})
    assert extra.status_code == 403
    post = client.options(f"/embed/{token}/fragment", headers={**ask, "Access-Control-Request-Method": "POST"})
    assert post.status_code == 403
    stranger = client.options(f"/embed/{token}/fragment", headers={**ask, "Origin": "https://evil.example"})
    assert stranger.status_code == 403


# -- live streams -------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_embed_stream_carries_only_its_scope_never_toasts_or_events(live_hub: LiveHub) -> None:
    token = make_embed(live_hub.db_path, "kpis")
    async with open_stream(live_hub.url, "since=x-0", path=f"/embed/{token}/events") as stream:
        first = await stream.next()  # the full refresh
        assert 'id="kpis"' in first.data and 'data-kpi="nvrs_total">0<' in first.data
        agent, _ = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-secret-name", cameras=2)
        await agent.send({"type": "alert", "severity": "critical", "message": "intruder at gate"})
        update = await stream.until(lambda m: 'data-kpi="nvrs_total">1<' in m.data)
        await agent.send({"type": "camera_status", "camera_id": "cam1", "status": "offline"})
        later = await stream.until(lambda m: 'data-kpi="cameras_online">1<' in m.data)
        for msg in (first, update, later):
            assert msg.event is None and "nvr-secret-name" not in msg.data and "intruder" not in msg.data
            assert 'id="event-list"' not in msg.data and "event-" not in msg.data
        with pytest.raises(TimeoutError):  # and no toast ever follows
            await stream.until(lambda m: m.event == "toast", timeout=0.5)
        await agent.close()


@pytest.mark.anyio
async def test_region_embed_stream_never_shows_another_regions_rows(live_hub: LiveHub) -> None:
    token = make_embed(live_hub.db_path, "nvrs", region="North")
    async with open_stream(live_hub.url, "since=x-0", path=f"/embed/{token}/events") as stream:
        await stream.next()
        south, _ = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-south", region="South")
        north, north_id = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-north", region="North")
        msg = await stream.until(lambda m: f'id="nvr-{north_id}"' in m.data)
        seen = msg.data
        await south.send({"type": "camera_status", "camera_id": "cam1", "status": "offline"})
        await north.send({"type": "camera_status", "camera_id": "cam1", "status": "offline"})
        seen += (await stream.until(lambda m: f'id="nvr-{north_id}"' in m.data)).data
        assert "nvr-south" not in seen
        for agent in (south, north):
            await agent.close()


@pytest.mark.anyio
async def test_revoking_an_embed_ends_its_open_stream_within_seconds(live_hub: LiveHub) -> None:
    token = make_embed(live_hub.db_path, "kpis")
    async with open_stream(live_hub.url, "since=x-0", path=f"/embed/{token}/events") as stream:
        await stream.next()
        revoked = time.monotonic()
        assert run_cli(live_hub.db_path, "embed", "revoke", "1").returncode == 0
        with pytest.raises(EOFError):
            while True:
                await stream.next(timeout=5, skip_heartbeats=False)
        assert time.monotonic() - revoked < 3
    assert live_hub.get(f"/embed/{token}/events").status_code == 404


@pytest.mark.anyio
async def test_embed_stream_ends_when_the_token_expires(live_hub: LiveHub) -> None:
    token = make_embed(live_hub.db_path, "kpis", ttl=1.5)
    async with open_stream(live_hub.url, "since=x-0", path=f"/embed/{token}/events") as stream:
        await stream.next()
        with pytest.raises(EOFError):
            while True:
                await stream.next(timeout=5, skip_heartbeats=False)


@pytest.mark.anyio
async def test_replay_after_reconnect_sends_only_what_changed_in_scope(live_hub: LiveHub) -> None:
    agent, nvr_id = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-replay", cameras=3)
    token = make_embed(live_hub.db_path, "nvr", nvr_id=nvr_id)
    async with open_stream(live_hub.url, "since=x-0", path=f"/embed/{token}/events") as stream:
        await stream.next()
        cursor = stream.last_id
    await agent.send({"type": "camera_status", "camera_id": "cam2", "status": "offline"})
    await asyncio.sleep(0.3)
    async with open_stream(live_hub.url, "since=x-0", path=f"/embed/{token}/events", last_event_id=cursor) as stream:
        replay = await stream.next()
    rows = re.findall(r'<tr id="camera-(\d+)"', replay.data)
    # One camera row (and the NVR's facts, whose "cameras online" changed), not a full refresh of the table.
    assert len(rows) == 1 and 'data-status="offline"' in replay.data and f'id="nvr-{nvr_id}-cameras"' not in replay.data
    await agent.close()


@pytest.mark.anyio
async def test_embed_stream_resumes_from_its_cursor_and_gets_changes_within_a_second(live_hub: LiveHub) -> None:
    agent, nvr_id = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-resume", cameras=3)
    token = make_embed(live_hub.db_path, "nvr", nvr_id=nvr_id)
    async with open_stream(live_hub.url, "since=x-0", path=f"/embed/{token}/events") as stream:
        await stream.next()
        cursor = stream.last_id
    await agent.send({"type": "camera_status", "camera_id": "cam1", "status": "offline"})
    await asyncio.sleep(0.3)
    async with open_stream(live_hub.url, "since=x-0", path=f"/embed/{token}/events", last_event_id=cursor) as stream:
        replay = await stream.next()  # resumed: only what changed after the cursor, not a refresh
        assert replay.data.count('<tr id="camera-') == 1 and f'id="nvr-{nvr_id}-cameras"' not in replay.data
        # Live delivery is the pages' broadcaster: the embed stream is one of its subscribers.
        assert live_hub.get("/healthz").json()["subscribers"] == 1
        sent = time.monotonic()
        await agent.send({"type": "camera_status", "camera_id": "cam2", "status": "offline"})
        pushed = await stream.until(lambda m: m.data.count('data-status="offline"') >= 1, timeout=1.0)
        assert time.monotonic() - sent < 1.0 and pushed.id is not None and pushed.id != replay.id
        assert 'hx-target="#nvr-' + str(nvr_id) + '-cameras"' in pushed.data and "toast" not in pushed.data
    await agent.close()
