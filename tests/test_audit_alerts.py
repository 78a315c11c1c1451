"""The audit log of what operators do to incidents and maintenance windows on a real hub: by a browser's form, by
JSON with the session's CSRF token and by an operator API token each action writes exactly one entry (who, what,
target, from where); a refused action (read token, no CSRF token, bad input) writes none."""

from __future__ import annotations

import html
import re
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.audit_helpers import AuditTrail, page_csrf
from tests.conftest import LiveHub
from tests.incident_helpers import Agents, active, agents, eventually
from tests.test_api_tokens import bearer, create_token

pytestmark = pytest.mark.anyio
__all__ = ["agents"]  # the fixture

HERE = "127.0.0.1"  # httpx's address as the hub sees it


def iso_in(seconds: float) -> str:
    return datetime.fromtimestamp(time.time() + seconds, UTC).isoformat()


class Operator:
    """One hub's three ways of acting: the admin's browser form, its JSON with CSRF, and API tokens."""

    def __init__(self, hub: LiveHub) -> None:
        self.hub = hub
        self.csrf = page_csrf(hub, "/incidents", hub.headers)
        self.reader = bearer(create_token(hub.db_path, "grafana", "read"))
        self.operator = bearer(create_token(hub.db_path, "runbook", "operator"))

    def form(self, path: str, **fields: str) -> httpx.Response:
        return httpx.post(f"{self.hub.url}{path}", data={"csrf_token": self.csrf, **fields}, headers=self.hub.headers,
                          timeout=5)  # fmt: skip

    def json(self, method: str, path: str, body: Any = None, *, csrf: bool = True) -> httpx.Response:
        headers = {**self.hub.headers, **({"X-CSRF-Token": self.csrf} if csrf else {})}
        return httpx.request(method, f"{self.hub.url}{path}", json=body, headers=headers, timeout=5)

    def token(self, method: str, path: str, who: dict[str, str], body: Any = None) -> httpx.Response:
        return httpx.request(method, f"{self.hub.url}{path}", json=body, headers=who, timeout=5)


async def test_audit_records_each_acknowledgement_and_comment_once_and_no_refused_one(
    live_hub: LiveHub, agents: Agents
) -> None:
    for region in ("Quay", "Pier", "Dock"):
        site = await agents.site(live_hub, [f"{region.lower()}-a", f"{region.lower()}-b"], region)
        await site[f"{region.lower()}-a"][0].close()
    found = await eventually(lambda: len(active(live_hub)) == 3 and active(live_hub))
    by_host = {i["devices"][0]["hostname"]: i for i in found}
    quay, pier, dock = (by_host[f"{r}-a"] for r in ("quay", "pier", "dock"))
    me = Operator(live_hub)
    admin, trail = live_hub.username, AuditTrail(live_hub.db_path)
    trail.mark()

    # Refused: nothing is recorded.
    assert me.token("POST", f"/api/incidents/{quay['id']}/ack", me.reader, {"note": "x"}).status_code == 403
    assert me.json("POST", f"/api/incidents/{quay['id']}/ack", {"note": "x"}, csrf=False).status_code == 403
    assert me.json("POST", f"/api/incidents/{quay['id']}/ack", {"note": "x" * 501}).status_code == 400
    assert me.json("POST", f"/api/incidents/{quay['id']}/comments", {"note": " "}).status_code == 400
    assert me.json("POST", "/api/incidents/999999/ack", {}).status_code == 404
    assert me.form(f"/incidents/{quay['id']}/comments", note="").status_code == 400
    assert me.token("POST", f"/api/incidents/{quay['id']}/comments", me.reader, {"note": "x"}).status_code == 403
    trail.none()

    # The browser's form.
    acked = me.form(f"/incidents/{quay['id']}/ack", note="paged the quay team")
    assert acked.status_code == 303, acked.text
    assert trail.one() == (admin, "incident.ack", f"#{quay['id']} NVR quay-a offline", "paged the quay team", HERE)
    assert me.form(f"/incidents/{quay['id']}/comments", note="crane hit the mast").status_code == 303
    assert trail.one() == (admin, "incident.comment", f"#{quay['id']} NVR quay-a offline", "crane hit the mast", HERE)
    # Acknowledging again is refused (409): the first one stays the only entry.
    assert me.json("POST", f"/api/incidents/{quay['id']}/ack", {}).status_code == 409
    assert me.form(f"/incidents/{quay['id']}/ack").status_code == 409
    trail.none()

    # JSON with the session's CSRF token.
    assert me.json("POST", f"/api/incidents/{pier['id']}/ack", {"note": "on it"}).status_code == 200
    assert trail.one() == (admin, "incident.ack", f"#{pier['id']} NVR pier-a offline", "on it", HERE)
    assert me.json("POST", f"/api/incidents/{pier['id']}/comments", {"note": "fuse"}).status_code == 201
    assert trail.one() == (admin, "incident.comment", f"#{pier['id']} NVR pier-a offline", "fuse", HERE)

    # An operator API token: its name is the actor.
    assert me.token("POST", f"/api/incidents/{dock['id']}/ack", me.operator, {}).status_code == 200
    assert trail.one() == ("token:runbook", "incident.ack", f"#{dock['id']} NVR dock-a offline", "", HERE)
    assert (
        me.token("POST", f"/api/incidents/{dock['id']}/comments", me.operator, {"note": "ticket 7"}).status_code == 201
    )
    assert trail.one() == ("token:runbook", "incident.comment", f"#{dock['id']} NVR dock-a offline", "ticket 7", HERE)

    # The audit page's family filter offers "incident.*" and shows these six entries under it, no others.
    page = httpx.get(f"{live_hub.url}/admin/audit", params={"action": "incident"}, headers=live_hub.headers, timeout=5)
    assert re.search(r'<option value="incident" selected>incident\.\*</option>', page.text), page.text
    rows = re.findall(r'<td class="mono">(incident\.\w+|[\w.]+)</td>\s*<td class="mono">([^<]*)</td>', page.text)
    assert [a for a, _ in rows] == ["incident.comment", "incident.ack"] * 3
    assert f"#{dock['id']} NVR dock-a offline" in html.unescape(page.text)


async def test_audit_records_each_maintenance_window_created_and_deleted_once(live_hub: LiveHub) -> None:
    me = Operator(live_hub)
    admin, trail = live_hub.username, AuditTrail(live_hub.db_path)
    window = {"match": {"site": "Quay 1"}, "reason": "crane work", "ends_at": iso_in(3600)}
    trail.mark()

    # Refused: a read token, no CSRF token, a window without a reason (JSON and form), a window that isn't there.
    assert me.token("POST", "/api/maintenance", me.reader, window).status_code == 403
    assert me.json("POST", "/api/maintenance", window, csrf=False).status_code == 403
    assert me.json("POST", "/api/maintenance", {**window, "reason": ""}).status_code == 400
    assert me.form("/maintenance", site="Quay 1", ends_at=iso_in(3600)[:16]).status_code == 400
    assert me.json("DELETE", "/api/maintenance/424242").status_code == 404
    assert me.form("/maintenance/424242/delete").status_code == 404
    trail.none()

    made = me.form("/maintenance", region="North", reason="power cut", ends_at=iso_in(7200)[:16])
    assert made.status_code == 303, made.text
    actor, action, target, detail, address = trail.one()
    assert (actor, action, target, address) == (admin, "maintenance.create", "region North", HERE)
    assert "power cut" in detail and re.search(r"^id \d+, from \S+ until \S+", detail), detail
    by_json = me.json("POST", "/api/maintenance", window)
    assert by_json.status_code == 201, by_json.text
    assert trail.one()[:3] == (admin, "maintenance.create", "site Quay 1")
    by_token = me.token("POST", "/api/maintenance", me.operator, {**window, "match": {"nvr": "quay-a"}})
    assert by_token.status_code == 201, by_token.text
    assert trail.one()[:3] == ("token:runbook", "maintenance.create", "NVR quay-a")

    ids = {w["reason"] + w["match"].get("site", w["match"].get("nvr", "")): w["id"] for w in
           live_hub.get("/api/maintenance").json()["maintenance"]}  # fmt: skip
    assert me.token("DELETE", f"/api/maintenance/{ids['crane workquay-a']}", me.reader).status_code == 403
    assert me.json("DELETE", f"/api/maintenance/{ids['crane workquay-a']}", csrf=False).status_code == 403
    trail.none()
    assert me.form(f"/maintenance/{ids['power cut']}/delete").status_code == 303
    assert trail.one() == (admin, "maintenance.delete", "region North", f"id {ids['power cut']}, reason: power cut",
                           HERE)  # fmt: skip
    assert me.json("DELETE", f"/api/maintenance/{ids['crane workQuay 1']}").status_code == 204
    assert trail.one()[:3] == (admin, "maintenance.delete", "site Quay 1")
    assert me.token("DELETE", f"/api/maintenance/{ids['crane workquay-a']}", me.operator).status_code == 204
    assert trail.one()[:3] == ("token:runbook", "maintenance.delete", "NVR quay-a")
    assert me.json("DELETE", f"/api/maintenance/{ids['crane workquay-a']}").status_code == 404  # gone already
    trail.none()
