"""/metrics: a real Prometheus scrapes a real hub with its bearer token; who may scrape; the hub's internals."""

from __future__ import annotations

import asyncio
import gc
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from nvrmon.application import create_app
from nvrmon.settings import Settings
from tests.agent import Agent, hello
from tests.conftest import PASSWORD, TOKEN, LiveHub, create_user, login_form_token
from tests.incident_helpers import Agents, active, agents, eventually
from tests.prometheus import Prometheus
from tests.sse import open_stream

__all__ = ["agents"]  # the fixture

SCRAPE_TOKEN = "scrape-token-for-tests"
DOCS = Path(__file__).resolve().parent.parent / "docs"
NVR_STATUSES = ("online", "stale", "offline", "unknown")
CAMERA_STATUSES = ("online", "offline", "nvr_offline", "unknown")
SEVERITIES = ("critical", "major", "minor")
OPEN_STATES = ("open", "acknowledged")


def expected_from_api(hub: LiveHub) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], float]]:
    """What /api says, counted the way the gauges are labelled: {(status, region): count}, zeros included."""
    nvrs = hub.get("/api/nvrs").json()["nvrs"]
    cameras = hub.get("/api/cameras").json()["cameras"]
    regions = {n["region"] for n in nvrs}
    nvr_counts = Counter((n["status"], n["region"]) for n in nvrs)
    camera_counts = Counter((c["display_status"], c["region"]) for c in cameras)
    return (
        {(s, r): float(nvr_counts[(s, r)]) for s in NVR_STATUSES for r in regions},
        {(s, r): float(camera_counts[(s, r)]) for s in CAMERA_STATUSES for r in regions},
    )


def incidents_from_api(hub: LiveHub) -> dict[tuple[str, str], float]:
    """/api/incidents?state=active counted the way nvrmon_incidents_open is labelled: {(severity, state): n}."""
    counts = Counter((i["severity"], i["state"]) for i in active(hub))
    return {(level, state): float(counts[(level, state)]) for level in SEVERITIES for state in OPEN_STATES}


def wait_for(check: Callable[[], Any], timeout: float = 15) -> Any:
    """Poll until check() is truthy (Prometheus scrapes once a second); returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.25)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[dict[str, tuple[str, str]]], Prometheus]]:
    started: list[Prometheus] = []

    def start(jobs: dict[str, tuple[str, str]]) -> Prometheus:
        started.append(Prometheus.start(tmp_path / "prometheus", jobs))
        return started[-1]

    yield start
    for instance in started:
        instance.stop()


@pytest.mark.anyio
async def test_metrics_prometheus_sees_the_fleet_api_shows(
    start_hub: Callable[..., LiveHub], prometheus: Callable[[dict[str, tuple[str, str]]], Prometheus]
) -> None:
    hub = start_hub(METRICS_TOKEN=SCRAPE_TOKEN)
    north1, _ = await Agent.register(hub.ws_url, hub.token, "nvr-north-1", cameras=3, offline=(2,))
    north2, _ = await Agent.register(hub.ws_url, hub.token, "nvr-north-2", cameras=2)
    south, _ = await Agent.register(hub.ws_url, hub.token, "nvr-south-1", cameras=4, region="South", offline=(1, 3))
    target = f"127.0.0.1:{hub.port}"
    # A second job with a wrong token: Prometheus must fail to scrape it (up == 0), not read the fleet.
    prom = prometheus({"nvrmon": (target, SCRAPE_TOKEN), "wrong": (target, "not-the-token")})

    def agrees() -> bool:
        nvrs, cameras = expected_from_api(hub)
        return (
            prom.values("nvrmon_nvrs", "status", "region") == nvrs
            and prom.values("nvrmon_cameras", "status", "region") == cameras
            and prom.values("nvrmon_incidents_open", "severity", "state") == incidents_from_api(hub)
        )

    assert await asyncio.to_thread(wait_for, agrees), (prom.query("nvrmon_cameras"), expected_from_api(hub))
    assert prom.values('nvrmon_cameras{status="online",region="North"}') == {(): 4.0}
    assert prom.values('nvrmon_cameras{status="offline",region="South"}') == {(): 2.0}
    assert prom.values('nvrmon_nvrs{status="online",region="South"}') == {(): 1.0}
    assert prom.values("nvrmon_agents_connected") == {(): 3.0}
    assert prom.values('nvrmon_incidents_open{severity="major",state="open"}') == {(): 3.0}  # the offline cameras
    both_scraped = {("nvrmon",): 1.0, ("wrong",): 0.0}  # each job is scraped at its own offset within the second
    assert await asyncio.to_thread(wait_for, lambda: prom.values("up", "job") == both_scraped), prom.query("up")
    assert prom.values("nvrmon_commit_seconds_count")[()] >= 3  # the hellos, at least, were committed
    assert prom.values("process_resident_memory_bytes")[()] > 0

    # The gauges are read at scrape time: a change on the hub shows up without anything kept by hand.
    await north1.send({"type": "camera_status", "camera_id": "cam2", "status": "online"})
    await south.close()
    assert await asyncio.to_thread(
        wait_for, lambda: agrees() and prom.values('nvrmon_cameras{status="online",region="North"}') == {(): 5.0}
    ), (prom.query("nvrmon_cameras"), expected_from_api(hub))
    assert prom.values('nvrmon_cameras{status="nvr_offline",region="South"}') == {(): 4.0}
    assert prom.values('nvrmon_nvrs{status="offline",region="South"}') == {(): 1.0}
    assert prom.values("nvrmon_agents_connected") == {(): 2.0}
    assert prom.values('nvrmon_incidents_open{severity="critical",state="open"}') == {(): 1.0}  # nvr-south-1 is down
    # The Grafana dashboard's queries are PromQL this Prometheus accepts and finds data for (rates need two scrapes).
    for panel in json.loads((DOCS / "grafana-dashboard.json").read_text())["panels"]:
        for target in panel["targets"]:
            assert await asyncio.to_thread(wait_for, lambda e=target["expr"]: prom.query(e)), target["expr"]
    await north1.close()
    await north2.close()


@pytest.fixture
def app_client(tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """In-process apps (each with its own registry) on one database holding an admin and a viewer."""
    db = tmp_path / "metrics.db"
    create_user(db, "ada", "admin", PASSWORD)
    create_user(db, "vera", "viewer", PASSWORD)
    clients: list[TestClient] = []

    def make(**settings: Any) -> TestClient:
        client = TestClient(create_app(Settings(db_path=db, agent_token=TOKEN, **settings)), follow_redirects=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def log_in(client: TestClient, name: str) -> None:
    token = login_form_token(client.get("/login").text)
    response = client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 303


def families(text: str) -> set[str]:
    return {family.name for family in text_string_to_metric_families(text)}


def test_metrics_token_admits_prometheus_and_refuses_others(app_client: Callable[..., TestClient]) -> None:
    client = app_client(metrics_token=SCRAPE_TOKEN)
    scraped = client.get("/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain; version=")
    # Every metric docs/metrics.md lists is served (counters under their _total name), and nothing unlisted.
    documented = set(re.findall(r"^\| `(nvrmon_\w+)` \|", (DOCS / "metrics.md").read_text(), re.MULTILINE))
    served = {n for n in families(scraped.text) if n.startswith("nvrmon_") and not n.endswith("_created")}
    assert {name.removesuffix("_total") for name in documented} == served
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert (wrong.status_code, wrong.json()) == (403, {"error": "wrong metrics token"})
    missing = client.get("/metrics")
    assert missing.status_code == 401
    assert missing.json() == {
        "error": "/metrics needs Authorization: Bearer <NVRMON_METRICS_TOKEN> or an admin session"
    }


def test_metrics_without_a_token_need_an_admin_session(app_client: Callable[..., TestClient]) -> None:
    client = app_client()
    bearer = client.get("/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})
    assert bearer.status_code == 401
    assert bearer.json() == {"error": "this hub has no NVRMON_METRICS_TOKEN set: /metrics needs an admin session"}
    assert client.get("/metrics").json() == {"error": "/metrics needs an admin session"}
    log_in(client, "vera")
    viewer = client.get("/metrics")
    assert (viewer.status_code, viewer.json()) == (403, {"error": "/metrics needs the admin role; you are viewer"})
    admin = app_client()  # a second app in the same process: a global registry would refuse its metrics twice
    log_in(admin, "ada")
    scraped = admin.get("/metrics")
    assert scraped.status_code == 200 and "nvrmon_agents_connected 0.0" in scraped.text


def test_metrics_count_commits_and_gc_pauses(app_client: Callable[..., TestClient]) -> None:
    client = app_client(metrics_token=SCRAPE_TOKEN)
    headers = {"Authorization": f"Bearer {SCRAPE_TOKEN}"}

    def samples() -> dict[tuple[str, str], float]:
        text = client.get("/metrics", headers=headers).text
        found = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                found[(sample.name, sample.labels.get("generation", ""))] = sample.value
        return found

    before = samples()
    with client.websocket_connect("/ws/agent", headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
        ws.send_json(hello("nvr-metrics-1", cameras=2))
        assert ws.receive_json()["type"] == "welcome"
        gc.collect(2)  # the hub's loop runs in TestClient's thread: the callback sees this collection too
        after = samples()
    assert after[("nvrmon_commit_seconds_count", "")] > before[("nvrmon_commit_seconds_count", "")]
    assert after[("nvrmon_commit_batch_size_sum", "")] > before[("nvrmon_commit_batch_size_sum", "")]
    assert after[("nvrmon_gc_pause_seconds_count", "2")] > before[("nvrmon_gc_pause_seconds_count", "2")]
    assert after[("nvrmon_agents_connected", "")] == 1.0


def scrape(hub: LiveHub) -> dict[str, float]:
    """One scrape of a live hub with the token: {sample name with labels: value}."""
    text = httpx.get(f"{hub.url}/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"}, timeout=5).text
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


@pytest.mark.anyio
async def test_metrics_count_browsers_by_transport_and_deliveries(start_hub: Callable[..., LiveHub]) -> None:
    hub = start_hub(METRICS_TOKEN=SCRAPE_TOKEN)
    agent, _ = await Agent.register(hub.ws_url, hub.token, "nvr-watched", cameras=2)
    health = hub.get("/healthz").json()
    cursor = f"{health['epoch']}-{health['seq']}"
    async with (
        open_stream(hub, f"view=cameras&since={cursor}") as stream,
        httpx.AsyncClient(base_url=hub.url, headers=hub.headers, timeout=30) as client,
    ):
        held = asyncio.create_task(client.get(f"/poll?view=nvrs&since={cursor}"))  # held until something changes
        counts = await asyncio.to_thread(
            wait_for, lambda: (s := scrape(hub))["nvrmon_browsers_connected{transport=poll}"] == 1 and s
        )
        assert counts and counts["nvrmon_browsers_connected{transport=sse}"] == 1
        await agent.send({"type": "camera_status", "camera_id": "cam1", "status": "offline"})
        await stream.until(lambda m: "camera-" in m.data)
        assert (await held).status_code == 200
        after = scrape(hub)
    assert after["nvrmon_deliveries_total"] > counts["nvrmon_deliveries_total"]
    assert after["nvrmon_delivered_bytes_total"] > counts["nvrmon_delivered_bytes_total"]
    assert after["nvrmon_browsers_connected{transport=poll}"] == 0
    await agent.close()


@pytest.mark.anyio
async def test_metrics_count_incidents_not_resolved_by_severity_and_state(
    start_hub: Callable[..., LiveHub], agents: Agents
) -> None:
    hub = start_hub(METRICS_TOKEN=SCRAPE_TOKEN)

    def gauge() -> dict[tuple[str, str], float]:
        found = scrape(hub)
        return {(level, state): found[f"nvrmon_incidents_open{{severity={level},state={state}}}"]
                for level in SEVERITIES for state in OPEN_STATES}  # fmt: skip

    zeros = dict.fromkeys(((level, state) for level in SEVERITIES for state in OPEN_STATES), 0.0)
    assert gauge() == zeros  # every pair is reported before any incident exists
    site = await agents.site(hub, ["yard-a", "yard-b"], "Yard")
    await site["yard-a"][0].close()
    await site["yard-b"][0].send({"type": "camera_status", "camera_id": "cam2", "status": "offline"})
    await eventually(lambda: len(active(hub)) == 2)
    assert gauge() == {**zeros, ("critical", "open"): 1.0, ("major", "open"): 1.0} == incidents_from_api(hub)

    nvr_incident = next(i for i in active(hub) if i["scope"] == "nvr")
    token = re.search(r'name="csrf-token" content="([^"]+)"', hub.get("/incidents").text)
    assert token is not None
    acked = httpx.post(f"{hub.url}/api/incidents/{nvr_incident['id']}/ack", json={},
                       headers={**hub.headers, "X-CSRF-Token": token.group(1)}, timeout=5)  # fmt: skip
    assert acked.status_code == 200, acked.text
    assert gauge() == {**zeros, ("critical", "acknowledged"): 1.0, ("major", "open"): 1.0}

    await site["yard-b"][0].send({"type": "camera_status", "camera_id": "cam2", "status": "online"})
    await agents.register(hub, "yard-a", region="Yard")
    await eventually(lambda: not active(hub))
    assert gauge() == zeros  # resolved incidents are not counted
