"""Availability on a real hub: raw agents drive transitions, a maintenance window goes through the API, and the
figures of /api/reports equal the ones worked out by hand from the events' own timestamps; restarts and pruning."""

from __future__ import annotations

import asyncio
import csv
import io
import math
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.conftest import LiveHub
from tests.incident_helpers import Agents, agents, eventually, incidents
from tests.test_maintenance_api import send

pytestmark = pytest.mark.anyio
__all__ = ["agents"]  # the fixture
SLACK = 0.25  # seconds: a maintenance edge is applied by the hub's timer a few ms after it falls


def at(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def event_time(hub: LiveHub, match: Callable[[dict[str, Any]], bool]) -> float:
    found = [e for e in hub.get("/api/events", params={"limit": "500"}).json()["events"] if match(e)]
    assert len(found) == 1, found
    return float(found[0]["ts"])


async def event_at(hub: LiveHub, match: Callable[[dict[str, Any]], bool]) -> float:
    await eventually(lambda: [e for e in hub.get("/api/events", params={"limit": "500"}).json()["events"] if match(e)])
    return event_time(hub, match)


def figures(hub: LiveHub, scope: str, start: float, end: float) -> dict[str, dict[str, Any]]:
    response = hub.get("/api/reports/availability", params={"scope": scope, "from": at(start), "to": at(end)})
    assert response.status_code == 200, response.text
    return {g["key"]: g for g in response.json()["groups"]}


def history(hub: LiveHub, device: str, start: float, end: float) -> list[dict[str, Any]]:
    response = hub.get("/api/reports/history", params={"device": device, "from": at(start), "to": at(end)})
    assert response.status_code == 200, response.text
    return list(response.json()["intervals"])


async def test_report_equals_the_figures_worked_out_from_the_transition_times(
    live_hub: LiveHub, agents: Agents
) -> None:
    hub = live_hub
    agent, nvr_id = await agents.register(hub, "avail-a", cameras=2, region="North")
    await agents.register(hub, "avail-b", cameras=1, region="North")
    camera = hub.get(f"/api/nvrs/{nvr_id}").json()["cameras"][0]
    t0 = event_time(hub, lambda e: e["message"] == "NVR avail-a registered")
    await asyncio.sleep(1.5)
    await agent.send({"type": "camera_status", "camera_id": camera["ext_id"], "status": "offline"})
    t1 = await event_at(hub, lambda e: e["camera_id"] == camera["id"] and e["message"].endswith("is offline"))
    await asyncio.sleep(1.0)
    ends = math.ceil(time.time()) + 2  # whole seconds: the API gives instants to the second
    before = time.time()
    window = send(hub, "POST", "/api/maintenance",
                  {"match": {"camera": camera["id"]}, "ends_at": at(ends), "reason": "lens cleaning"})  # fmt: skip
    after = time.time()
    assert window.status_code == 201, window.text
    await asyncio.sleep(ends - time.time() + 1.0)  # the window ends while the camera is still down
    await agent.close()
    t4 = await event_at(hub, lambda e: e["message"].startswith("NVR avail-a is offline"))
    await asyncio.sleep(1.0)
    await agents.register(hub, "avail-a", cameras=2, region="North")  # back, with the camera online again
    t5 = await event_at(hub, lambda e: e["message"].startswith("NVR avail-a is online"))
    await asyncio.sleep(1.0)
    end = time.time()

    # The camera's intervals open and close at the transitions' own timestamps; the window at its edges.
    recorded = history(hub, f"camera:{camera['id']}", t0 - 5, end)
    assert [(i["state"], i["maintenance"]) for i in recorded] == [
        ("up", False), ("down", False), ("down", True), ("down", False), ("parent_down", False), ("up", False),
    ]  # fmt: skip
    edges = [recorded[0]["start"], *(i["end"] for i in recorded[:-1])]
    assert edges[0] == t0 and edges[1] == t1 and edges[4] == t4 and edges[5] == t5
    assert before <= edges[2] <= after
    assert ends <= edges[3] <= ends + SLACK
    assert recorded[-1]["end"] is None
    t2, t3 = (before + after) / 2, ends

    cam = figures(hub, "camera", t0 - 5, end)[f"camera:{camera['id']}"]
    up, down = (t1 - t0) + (end - t5), (t2 - t1) + (t4 - t3)
    assert cam["up_s"] == pytest.approx(up, abs=0.01)
    assert cam["down_s"] == pytest.approx(down, abs=SLACK)
    assert cam["maintenance_s"] == pytest.approx(t3 - t2, abs=SLACK)
    assert cam["parent_down_s"] == pytest.approx(t5 - t4, abs=0.01)
    assert cam["availability"] == pytest.approx(100 * up / (up + down), abs=3.0)
    assert cam["availability"] == pytest.approx(100 * cam["up_s"] / (cam["up_s"] + cam["down_s"]), abs=0.02)

    nvr = figures(hub, "nvr", t0 - 5, end)[f"nvr:{nvr_id}"]
    assert nvr["up_s"] == pytest.approx((t4 - t0) + (end - t5), abs=0.01)
    assert nvr["down_s"] == pytest.approx(t5 - t4, abs=0.01)
    assert nvr["availability"] == pytest.approx(100 * nvr["up_s"] / (nvr["up_s"] + nvr["down_s"]), abs=0.02)

    # The site: both NVRs and their three cameras, and the incidents opened there (the camera's, then the NVR's).
    site = figures(hub, "site", t0 - 5, end)["North/North 1"]
    assert site["devices"] == 5
    found = incidents(hub)
    assert sorted(i["scope"] for i in found) == ["camera", "nvr"] and all(i["state"] == "resolved" for i in found)
    assert site["incidents"] == 2
    assert site["mttr_s"] == pytest.approx(sum(i["duration_s"] for i in found) / 2, abs=0.1)
    assert site["mttr_s"] == pytest.approx(((t5 - t1) + (t5 - t4)) / 2, abs=0.1)

    csv_text = hub.get("/api/reports/availability", params={"scope": "camera", "from": at(t0 - 5), "to": at(end),
                                                            "format": "csv"}).text  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert len(rows) == 3
    mine = next(r for r in rows if r["key"] == f"camera:{camera['id']}")
    assert (mine["name"], mine["hostname"], mine["site"]) == (camera["name"], "avail-a", "North 1")
    assert float(mine["availability_percent"]) == pytest.approx(cam["availability"], abs=1e-3)


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["graceful", "kill-9"])
async def test_hub_restart_loses_no_time_and_counts_it_as_hub_down(
    start_hub: Callable[..., LiveHub], agents: Agents, how: signal.Signals
) -> None:
    hub = start_hub(HISTORY_MARK_INTERVAL="0.5")
    _, nvr_id = await agents.register(hub, "restart-a", cameras=1, region="East")
    camera_id = hub.get(f"/api/nvrs/{nvr_id}").json()["cameras"][0]["id"]
    t0 = event_time(hub, lambda e: e["message"] == "NVR restart-a registered")
    await asyncio.sleep(1.5)
    stopped = time.time()
    hub.stop(how)
    gone = time.time()  # the process has exited
    await asyncio.sleep(1.5)
    hub.start()
    started = time.time()
    await agents.register(hub, "restart-a", cameras=1, region="East")
    await asyncio.sleep(1.0)
    end = time.time()

    for device in (f"nvr:{nvr_id}", f"camera:{camera_id}"):
        recorded = history(hub, device, t0 - 5, end)
        states = [i["state"] for i in recorded]
        assert states == ["up", "hub_down", "unknown", "up"], (device, recorded)
        assert all(a["end"] == b["start"] for a, b in zip(recorded, recorded[1:], strict=False)), "no gap, no overlap"
        assert recorded[0]["start"] == t0 and recorded[-1]["end"] is None
        gap = recorded[1]
        # Graceful: the last mark at the stop itself; kill -9: at most one mark interval (and a commit) before it.
        assert stopped - (0.0 if how == signal.SIGTERM else 0.7) <= gap["start"] <= gone
        assert gone < gap["end"] <= started
        total = sum(i["seconds_in_range"] for i in recorded)
        assert total == pytest.approx(end - t0, abs=0.01)  # nothing lost, nothing twice
    nvr = figures(hub, "nvr", t0 - 5, end)[f"nvr:{nvr_id}"]
    assert nvr["down_s"] == 0 and nvr["availability"] == 100.0, "a hub restart is not the NVR's downtime"
    assert nvr["hub_down_s"] == pytest.approx(recorded[1]["end"] - recorded[1]["start"], abs=0.01)
    assert nvr["hub_down_s"] > 1.4


async def test_history_is_pruned_with_the_event_retention(start_hub: Callable[..., LiveHub], agents: Agents) -> None:
    hub = start_hub(EVENT_RETENTION_DAYS=str(2 / 86400))  # two seconds; pruned every second
    agent, nvr_id = await agents.register(hub, "prune-a", cameras=1, region="West")
    device = f"camera:{hub.get(f'/api/nvrs/{nvr_id}').json()['cameras'][0]['id']}"
    for status in ("offline", "online", "offline"):
        await agent.send({"type": "camera_status", "camera_id": "cam1", "status": status})
        await asyncio.sleep(0.1)
    await eventually(lambda: len(history(hub, device, time.time() - 60, time.time())) == 4)
    await eventually(lambda: len(history(hub, device, time.time() - 60, time.time())) == 1, timeout=8)
    kept = history(hub, device, time.time() - 60, time.time())
    assert (kept[0]["state"], kept[0]["end"]) == ("down", None), "the current interval stays"
    assert len(history(hub, f"nvr:{nvr_id}", time.time() - 60, time.time())) == 1


def test_report_api_refuses_bad_queries_in_words(live_hub: LiveHub) -> None:
    def error(**params: str) -> str:
        response = live_hub.get("/api/reports/availability", params=params)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "bad_request"
        return str(response.json()["error"]["message"])

    assert "scope must be one of" in error(scope="building")
    assert "format must be json or csv" in error(format="xml")
    assert "range must be one of" in error(range="1y")
    assert "needs from" in error(range="custom")
    assert "is not an ISO 8601" in error(**{"from": "yesterday"})
    assert "to must be after from" in error(**{"from": "2026-12-01T10:00:00Z", "to": "2026-12-01T09:00:00Z"})
    assert "at most 366 days" in error(**{"from": "2024-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"})
    bad = live_hub.get("/api/reports/history", params={"device": "camera:x"})
    assert bad.status_code == 400 and "device must be" in bad.json()["error"]["message"]
    # Only ASCII digits are an id (a regex's \d takes any script's), and a named range still checks from and to.
    other_digits = live_hub.get("/api/reports/history", params={"device": "nvr:\u0661"})
    assert other_digits.status_code == 400 and "device must be" in other_digits.json()["error"]["message"]
    assert "is not an ISO 8601" in error(range="24h", to="tomorrow")
    assert httpx.get(f"{live_hub.url}/api/reports/availability", timeout=5).status_code == 401
    empty = live_hub.get("/api/reports/availability", params={"range": "7d"}).json()
    assert (empty["scope"], empty["range"], empty["groups"], empty["fleet"]["availability"]) == ("site", "7d", [], None)
