"""Maintenance windows and the incidents API on a real hub: suppression, the window's end, shapes, roles, refusals."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.conftest import LiveHub, create_user
from tests.incident_helpers import Agents, active, agents, engine_failures, eventually, incidents
from tests.sse import open_stream
from tests.test_api_tokens import bearer, create_token

pytestmark = pytest.mark.anyio
__all__ = ["agents"]  # the fixture


def csrf(hub: LiveHub, headers: dict[str, str] | None = None) -> str:
    page = httpx.get(f"{hub.url}/incidents", headers=headers or hub.headers, timeout=5).text
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert match is not None
    return match.group(1)


def send(
    hub: LiveHub, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    who = headers or hub.headers
    return httpx.request(method, f"{hub.url}{path}", json=body, headers={**who, "X-CSRF-Token": csrf(hub, who)},
                         timeout=5)  # fmt: skip


def iso_in(seconds: float) -> str:
    return datetime.fromtimestamp(time.time() + seconds, UTC).isoformat()


async def test_maintenance_suppresses_and_its_end_opens_one_incident_if_still_down(
    live_hub: LiveHub, agents: Agents
) -> None:
    site = await agents.site(live_hub, ["dock-a", "dock-b"], "Dock")
    window = send(live_hub, "POST", "/api/maintenance",
                  {"match": {"nvr": "dock-a"}, "ends_at": iso_in(3), "reason": "firmware upgrade"})  # fmt: skip
    assert window.status_code == 201, window.text
    assert window.json()["active"] is True and window.json()["match"] == {"nvr": "dock-a"}
    assert 'data-maintenance="true"' in live_hub.get("/nvrs").text  # the row says so, in words
    agent, nvr_id = site["dock-a"]
    await agent.close()
    await eventually(lambda: live_hub.get(f"/api/nvrs/{nvr_id}").json()["status"] == "offline")
    await asyncio.sleep(1.0)
    assert incidents(live_hub) == [], "a device in maintenance raises no incident"

    found = await eventually(lambda: active(live_hub), timeout=6)  # the window ends, dock-a is still down
    assert [(i["scope"], i["title"]) for i in found] == [("nvr", "NVR dock-a offline")]
    await asyncio.sleep(1.5)
    assert len(incidents(live_hub)) == 1, "once"
    assert send(live_hub, "GET", "/api/maintenance").json()["maintenance"][0]["active"] is False
    assert not engine_failures(live_hub)


async def test_deleting_a_window_opens_the_incident_of_a_device_still_down(live_hub: LiveHub, agents: Agents) -> None:
    site = await agents.site(live_hub, ["quay-a", "quay-b"], "Quay")
    created = send(live_hub, "POST", "/api/maintenance", {"match": {"region": "Quay", "site": "Quay 1"},
                                                          "ends_at": iso_in(3600), "reason": "mains work"})  # fmt: skip
    for agent, _ in site.values():
        await agent.close()
    await asyncio.sleep(1.0)
    assert incidents(live_hub) == []
    assert send(live_hub, "DELETE", f"/api/maintenance/{created.json()['id']}").status_code == 204
    found = await eventually(lambda: active(live_hub))
    assert [(i["scope"], len(i["devices"])) for i in found] == [("site", 2)]
    assert send(live_hub, "DELETE", f"/api/maintenance/{created.json()['id']}").status_code == 404


async def test_recurring_window_covers_its_weekly_hours(live_hub: LiveHub) -> None:
    now = datetime.now(UTC)
    today = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[now.weekday()]
    start, end = f"{(now.hour - 1) % 24:02d}:00", f"{(now.hour + 1) % 24:02d}:00"
    body = {"match": {"site": "Depot"}, "reason": "nightly backup", "recurring": {"days": [today], "from": start,
                                                                                  "to": end}}  # fmt: skip
    made = send(live_hub, "POST", "/api/maintenance", body)
    assert made.status_code == 201, made.text
    assert made.json()["active"] is True and made.json()["recurring"]["days"] == [today]
    other = [d for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun") if d != today][:1]
    later = send(live_hub, "POST", "/api/maintenance", {**body, "recurring": {**body["recurring"], "days": other}})
    assert later.status_code == 201 and later.json()["active"] is False


async def test_incident_api_shapes_and_acknowledge(live_hub: LiveHub, agents: Agents) -> None:
    site = await agents.site(live_hub, ["pier-a", "pier-b"], "Pier")
    await site["pier-a"][0].close()
    incident = (await eventually(lambda: active(live_hub)))[0]
    assert {"id", "state", "severity", "site", "devices", "opened_at", "acknowledged_by"} <= set(incident)
    assert incident["state"] == "open" and incident["acknowledged_by"] is None
    assert datetime.fromisoformat(incident["opened_at"]).tzinfo is not None
    device = incident["devices"][0]
    assert {"nvr_id", "camera_id", "name", "hostname", "status"} <= set(device)

    acked = send(live_hub, "POST", f"/api/incidents/{incident['id']}/ack", {"note": "on site in 20 min"})
    assert acked.status_code == 200, acked.text
    assert (acked.json()["state"], acked.json()["acknowledged_by"]) == ("acknowledged", "admin")
    again = send(live_hub, "POST", f"/api/incidents/{incident['id']}/ack", {})
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    assert "already acknowledged by admin" in again.json()["error"]["message"]
    detail = live_hub.get(f"/api/incidents/{incident['id']}").json()
    assert [e["kind"] for e in detail["timeline"]][:3] == ["opened", "devices", "acknowledged"]
    assert detail["timeline"][2] | {"id": 0, "ts": ""} == {
        "id": 0, "ts": "", "incident_id": incident["id"], "kind": "acknowledged", "actor": "admin",
        "note": "on site in 20 min",
    }  # fmt: skip
    assert incidents(live_hub, state="acknowledged")[0]["id"] == incident["id"]
    assert incidents(live_hub, state="open") == []
    assert incidents(live_hub, site="Pier 1", severity="critical")[0]["id"] == incident["id"]
    assert live_hub.get("/api/incidents?state=bogus").status_code == 400
    missing = live_hub.get("/api/incidents/999999")
    assert missing.status_code == 404 and missing.json() == {
        "error": {"code": "not_found", "message": "no such incident"}
    }
    assert send(live_hub, "POST", "/api/incidents/999999/ack", {}).status_code == 404
    # Past SQLite's integers and past int()'s digit limit: a refusal, not a server error.
    assert live_hub.get("/api/incidents/" + "9" * 20).json()["error"]["code"] == "not_found"
    assert send(live_hub, "POST", "/api/incidents/" + "9" * 20 + "/ack", {}).status_code == 404
    assert live_hub.get("/api/incidents?limit=" + "9" * 5000).json()["error"]["code"] == "bad_request"

    await agents.register(live_hub, "pier-a", region="Pier")
    await eventually(lambda: incidents(live_hub, state="resolved"))
    late = send(live_hub, "POST", f"/api/incidents/{incident['id']}/ack", {})
    assert late.status_code == 409 and "resolved" in late.json()["error"]["message"]


async def test_operator_token_acknowledges_and_schedules_and_a_read_token_only_reads(
    live_hub: LiveHub, agents: Agents
) -> None:
    site = await agents.site(live_hub, ["quay-a", "quay-b"], "Quay")
    await site["quay-a"][0].close()
    incident = (await eventually(lambda: active(live_hub)))[0]
    reader = bearer(create_token(live_hub.db_path, "grafana", "read"))
    operator = bearer(create_token(live_hub.db_path, "runbook", "operator"))

    def call(method: str, path: str, who: dict[str, str], body: Any = None) -> httpx.Response:
        # No CSRF header: a bearer token is not a browser's credential (access/guard.py).
        return httpx.request(method, f"{live_hub.url}{path}", json=body, headers=who, timeout=5)

    ack = f"/api/incidents/{incident['id']}/ack"
    refused = call("POST", ack, reader, {"note": "seen"})
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "read_only_token")
    assert call("GET", f"/api/incidents/{incident['id']}", reader).json()["state"] == "open"
    acked = call("POST", ack, operator, {"note": "paged the quay"})
    assert acked.status_code == 200, acked.text
    assert (acked.json()["state"], acked.json()["acknowledged_by"]) == ("acknowledged", "token:runbook")

    window = {"match": {"site": "Quay 1"}, "reason": "crane work", "ends_at": iso_in(3600)}
    assert call("POST", "/api/maintenance", reader, window).json()["error"]["code"] == "read_only_token"
    made = call("POST", "/api/maintenance", operator, window)
    assert made.status_code == 201, made.text
    assert (made.json()["created_by"], made.json()["reason"]) == ("token:runbook", "crane work")
    assert [w["id"] for w in call("GET", "/api/maintenance", reader).json()["maintenance"]] == [made.json()["id"]]
    assert call("DELETE", f"/api/maintenance/{made.json()['id']}", reader).status_code == 403
    assert call("DELETE", f"/api/maintenance/{made.json()['id']}", operator).status_code == 204
    assert call("GET", "/api/maintenance", reader).json()["count"] == 0
    # Channels are administration: no token is an admin.
    assert call("GET", "/api/channels", operator).json()["error"]["code"] == "forbidden"


async def test_acknowledge_needs_the_operator_role_and_a_csrf_token(live_hub: LiveHub, agents: Agents) -> None:
    site = await agents.site(live_hub, ["mast-a", "mast-b"], "Mast")
    await site["mast-a"][0].close()
    incident = (await eventually(lambda: active(live_hub)))[0]
    path = f"/api/incidents/{incident['id']}/ack"
    assert httpx.post(f"{live_hub.url}{path}", json={}, headers=live_hub.headers).status_code == 403  # no token
    create_user(live_hub.db_path, "vera", "viewer", "vera's long viewer password")
    viewer = {"Cookie": live_hub.login("vera", "vera's long viewer password")}
    assert send(live_hub, "POST", path, {}, headers=viewer).status_code == 403
    assert send(live_hub, "POST", "/api/maintenance", {"match": {"site": "x"}, "reason": "r", "ends_at": iso_in(60)},
                headers=viewer).status_code == 403  # fmt: skip
    assert live_hub.get(f"/api/incidents/{incident['id']}").json()["state"] == "open"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"match": {}, "reason": "r", "ends_at": "2099-01-01T00:00:00Z"}, "at least one of"),
        ({"match": {"building": "B"}, "reason": "r", "ends_at": "2099-01-01T00:00:00Z"}, "unknown keys building"),
        ({"match": {"site": "S"}, "ends_at": "2099-01-01T00:00:00Z"}, "reason is required"),
        ({"match": {"site": "S"}, "reason": "r"}, "ends_at is required"),
        ({"match": {"site": "S"}, "reason": "r", "ends_at": "next tuesday"}, "ISO 8601"),
        ({"match": {"site": "S"}, "reason": "r", "starts_at": "2099-01-02T00:00Z", "ends_at": "2099-01-01T00:00Z"},
         "after starts_at"),
        ({"match": {"camera": "front door"}, "reason": "r", "ends_at": "2099-01-01T00:00:00Z"}, "camera id"),
        ({"match": {"site": "S"}, "reason": "r", "recurring": {"days": ["someday"], "from": "22:00", "to": "06:00"}},
         "recurring.days"),
        ({"match": {"site": "S"}, "reason": "r", "recurring": {"days": ["mon"], "from": "22:00", "to": "06:00",
                                                                 "tz": "Mars/Olympus"}}, "unknown time zone"),
        ({"match": {"site": "S"}, "reason": "r", "recurring": {"days": ["mon"], "from": "25:00", "to": "02:00"}},
         "HH:MM"),
        ({"match": {"site": "S"}, "reason": "r", "recurring": {"days": ["mon"], "from": "22:00", "to": "06:00",
                                                                 "cron": "0 22 * * 1"}}, "cron schedules are not"),
    ],
)  # fmt: skip
async def test_bad_maintenance_windows_are_refused_with_a_reason(
    live_hub: LiveHub, body: dict[str, Any], message: str
) -> None:
    refused = send(live_hub, "POST", "/api/maintenance", body)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "bad_request", refused.text
    assert message in refused.json()["error"]["message"], refused.text
    assert send(live_hub, "GET", "/api/maintenance").json()["count"] == 0


async def test_rows_leave_maintenance_live_when_the_window_ends(live_hub: LiveHub, agents: Agents) -> None:
    _, nvr_id = await agents.register(live_hub, "pump-a", region="Pump")
    row = f'id="nvr-{nvr_id}"'
    async with open_stream(live_hub, "view=nvrs") as page:
        made = send(live_hub, "POST", "/api/maintenance",
                    {"match": {"nvr": "pump-a"}, "ends_at": iso_in(2), "reason": "valve swap"})  # fmt: skip
        assert made.status_code == 201
        started = await page.until(lambda m: row in m.data and 'data-maintenance="true"' in m.data)
        assert "Maintenance" in started.data
        # No request of anyone's: the hub's own timer ends the window and the row is pushed again, without it.
        ended = await page.until(lambda m: row in m.data and "data-maintenance" not in m.data, timeout=6)
        assert 'data-status="online"' in ended.data
    assert "data-maintenance" not in live_hub.get("/nvrs").text


async def test_a_camera_window_silences_that_camera_only(live_hub: LiveHub, agents: Agents) -> None:
    agent, nvr_id = await agents.register(live_hub, "lobby-a", region="Lobby")
    first, second = live_hub.get(f"/api/nvrs/{nvr_id}").json()["cameras"][:2]
    window = send(live_hub, "POST", "/api/maintenance",
                  {"match": {"camera": first["id"]}, "ends_at": iso_in(3600), "reason": "lens swap"})  # fmt: skip
    for camera in (first, second):
        await agent.send({"type": "camera_status", "camera_id": camera["ext_id"], "status": "offline"})
    found = await eventually(lambda: active(live_hub))
    await asyncio.sleep(0.5)
    assert [d["camera_id"] for i in active(live_hub) for d in i["devices"]] == [second["id"]]
    assert len(found) == 1
    assert send(live_hub, "DELETE", f"/api/maintenance/{window.json()['id']}").status_code == 204
    both = await eventually(lambda: len(active(live_hub)) == 2 and active(live_hub))
    assert sorted(d["camera_id"] for i in both for d in i["devices"]) == sorted([first["id"], second["id"]])
