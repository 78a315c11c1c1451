"""The fleet's write endpoints on a real hub: who may write (checked first), CSRF, 404/409/422, missing devices."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.agent import Agent, hello
from tests.browsing import api, wait_until
from tests.conftest import LiveHub, create_user, run_cli
from tests.sse import open_stream
from tests.test_api_tokens import bearer, create_token

pytestmark = pytest.mark.anyio
PASSWORD = "a long test password"


def session(hub: LiveHub, role: str) -> dict[str, str]:
    """Cookie and CSRF headers of a fresh account with `role`, as a logged-in browser would send them."""
    create_user(hub.db_path, role, role, PASSWORD)
    cookie = hub.login(role, PASSWORD)
    page = httpx.get(f"{hub.url}/nvrs", headers={"Cookie": cookie}, timeout=5).text
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert match is not None
    return {"Cookie": cookie, "X-CSRF-Token": match.group(1)}


def write(hub: LiveHub, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
          raw: str | None = None) -> httpx.Response:  # fmt: skip
    content = raw if raw is not None else None if body is None else httpx.Request("POST", "/", json=body).content
    sent = {"Content-Type": "application/json", **(headers or {})}
    return httpx.request(method, f"{hub.url}{path}", content=content, headers=sent, timeout=5)


def audited(hub: LiveHub) -> list[tuple[str, str, str, str]]:
    """The audit log's (actor, action, target, address) entries of inventory writes, oldest first."""
    with sqlite3.connect(hub.db_path) as db:
        rows = db.execute(
            "SELECT actor, action, target, address FROM audit_log WHERE action LIKE 'nvr.%' OR action LIKE 'camera.%' "
            "OR action LIKE 'inventory.%' ORDER BY id"
        ).fetchall()
    return [tuple(row) for row in rows]


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()["error"]
    return response.status_code, body["code"], body["message"]


def test_inventory_writes_check_who_asks_before_reading_anything(live_hub: LiveHub) -> None:
    viewer, operator = session(live_hub, "viewer"), session(live_hub, "operator")
    assert write(live_hub, "POST", "/api/nvrs", raw="not json").status_code == 401
    # A viewer is refused before the body is read: garbage and unknown ids give 403, not 422 or 404.
    for method, path in (
        ("POST", "/api/nvrs"),
        ("PATCH", "/api/nvrs/999"),
        ("DELETE", "/api/nvrs/999"),
        ("POST", "/api/cameras"),
        ("PATCH", "/api/cameras/999"),
        ("DELETE", "/api/cameras/999"),
    ):
        refused = write(live_hub, method, path, raw="{{{", headers=viewer)
        assert refused.status_code == 403, (method, path, refused.text)
    no_csrf = {"Cookie": operator["Cookie"]}
    assert write(live_hub, "POST", "/api/nvrs", {"hostname": "nvr-x"}, headers=no_csrf).status_code == 403
    assert error_of(write(live_hub, "POST", "/api/nvrs", raw="{{{", headers=operator))[:2] == (422, "invalid_json")
    wrong_type = write(
        live_hub, "POST", "/api/nvrs", raw="hostname=x", headers={**operator, "Content-Type": "text/plain"}
    )
    assert error_of(wrong_type)[:2] == (415, "unsupported_media_type")
    assert api(live_hub, "nvrs")["count"] == 0  # nothing was declared by any of it


async def test_inventory_declared_nvr_is_missing_until_its_agent_connects(live_hub: LiveHub) -> None:
    operator = session(live_hub, "operator")
    body = {"hostname": "nvr-lis-1", "device_name": "Lobby recorder", "region": "eu-west", "site": "Lisbon HQ",
            "tags": ["lobby"], "expected_cameras": 3}  # fmt: skip
    created = write(live_hub, "POST", "/api/nvrs", body, headers=operator)
    assert created.status_code == 201, created.text
    nvr = created.json()
    assert created.headers["location"] == f"/api/nvrs/{nvr['id']}"
    assert (nvr["status"], nvr["declared"], nvr["tags"], nvr["cameras_expected"]) == ("missing", True, ["lobby"], 3)
    assert [n["hostname"] for n in api(live_hub, "nvrs?status=missing")["nvrs"]] == ["nvr-lis-1"]
    assert api(live_hub, "summary")["nvrs_missing"] == 1
    assert (
        api(live_hub, "events")["events"][0]["message"]
        == "NVR nvr-lis-1 declared by operator; missing until it connects"
    )
    # The same hostname again, or one that can't be told apart from it, is a conflict; a bad field names itself.
    assert error_of(write(live_hub, "POST", "/api/nvrs", {"hostname": "nvr-lis-1"}, headers=operator))[:2] == (
        409,
        "exists",
    )
    assert error_of(write(live_hub, "POST", "/api/nvrs", {"hostname": "nvr-Iis-1"}, headers=operator))[0] == 409
    bad = error_of(write(live_hub, "POST", "/api/nvrs", {"hostname": "nvr 2"}, headers=operator))
    assert bad[:2] == (422, "invalid_field") and "field 'hostname'" in bad[2]
    long = error_of(write(live_hub, "POST", "/api/nvrs", {"hostname": "n2", "region": "r" * 129}, headers=operator))
    assert long == (422, "invalid_field", "field 'region' is longer than 128 characters")
    assert (
        error_of(write(live_hub, "POST", "/api/nvrs", {"hostname": "n2", "colour": "red"}, headers=operator))[0] == 422
    )
    # Audited with who and from where, in the declaring transaction; the refused attempts left no entry.
    assert audited(live_hub) == [("operator", "nvr.declare", "nvr-lis-1", "127.0.0.1")]

    agent, nvr_id = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-lis-1", 2)
    try:
        assert nvr_id == nvr["id"]
        shown = api(live_hub, f"nvrs/{nvr_id}")
        # Online now; the declared name and place win over what the agent reports; one camera short of the three.
        assert (shown["status"], shown["device_name"], shown["region"]) == ("online", "Lobby recorder", "eu-west")
        assert (shown["cameras_total"], shown["cameras_short"]) == (2, 1)
        assert api(live_hub, "summary")["nvrs_missing"] == 0
        assert "NVR nvr-lis-1 registered" in [e["message"] for e in api(live_hub, "events")["events"]]
    finally:
        await agent.close()


async def test_inventory_camera_vanishing_from_its_nvr_list_shows_missing(live_hub: LiveHub) -> None:
    agent, nvr_id = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-a", 3)
    try:
        await agent.send(
            {
                "type": "cameras",
                "cameras": [
                    {"id": "cam1", "name": "Cam 1", "status": "online"},
                    {"id": "cam2", "name": "Cam 2", "status": "online"},
                ],
            }
        )

        def missing() -> list[dict[str, Any]]:
            return list(api(live_hub, "cameras?status=missing")["cameras"])

        wait_until(lambda: len(missing()) == 1)
        (gone,) = missing()
        assert (gone["ext_id"], gone["display_status"], gone["missing"]) == ("cam3", "missing", True)
        shown = api(live_hub, f"nvrs/{nvr_id}")
        assert (shown["cameras_total"], shown["cameras_missing"], shown["cameras_online"]) == (3, 1, 2)
        assert api(live_hub, "summary")["cameras_missing"] == 1
        assert "Camera Cam 3 is missing: nvr-a no longer lists it" in [
            e["message"] for e in api(live_hub, "events")["events"]
        ]
        # Its status frames are refused: the NVR doesn't list it.
        reply = await agent.request({"type": "camera_status", "camera_id": "cam3", "status": "online"})
        assert reply["type"] == "error" and reply["code"] == "unknown_camera"
    finally:
        await agent.close()


async def test_inventory_camera_writes_declare_patch_and_decommission(live_hub: LiveHub) -> None:
    operator = session(live_hub, "operator")
    agent, nvr_id = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-b", 1)
    try:
        created = write(
            live_hub, "POST", "/api/cameras", {"nvr_id": nvr_id, "id": "gate-2", "name": "Gate 2"}, headers=operator
        )
        assert created.status_code == 201, created.text
        camera = created.json()
        assert (camera["display_status"], camera["declared"], camera["name"]) == ("missing", True, "Gate 2")
        again = write(live_hub, "POST", "/api/cameras", {"nvr_id": nvr_id, "id": "gate-2"}, headers=operator)
        assert error_of(again)[:2] == (409, "exists")
        listed = write(live_hub, "POST", "/api/cameras", {"nvr_id": nvr_id, "id": "cam1"}, headers=operator)
        assert error_of(listed)[0] == 409  # its NVR lists it already
        assert error_of(write(live_hub, "POST", "/api/cameras", {"nvr_id": 999, "id": "x"}, headers=operator))[:2] == (
            404,
            "not_found",
        )
        assert (
            error_of(write(live_hub, "POST", "/api/cameras", {"nvr_id": "one", "id": "x"}, headers=operator))[0] == 422
        )
        renamed = write(
            live_hub,
            "PATCH",
            f"/api/cameras/{camera['id']}",
            {"name": "North gate", "tags": "gate, outdoor"},
            headers=operator,
        )
        assert renamed.status_code == 200 and (renamed.json()["name"], renamed.json()["tags"]) == (
            "North gate",
            ["gate", "outdoor"],
        )
        assert error_of(write(live_hub, "PATCH", f"/api/cameras/{camera['id']}", {}, headers=operator))[0] == 422
        assert error_of(write(live_hub, "PATCH", "/api/cameras/999", {"name": "x"}, headers=operator))[0] == 404
        # The NVR now lists it: no longer missing, and the declared name stays.
        await agent.send(
            {
                "type": "cameras",
                "cameras": [
                    {"id": "cam1", "status": "online"},
                    {"id": "gate-2", "name": "CAM-0002", "status": "online"},
                ],
            }
        )
        wait_until(lambda: api(live_hub, f"cameras/{camera['id']}")["display_status"] == "online")
        assert api(live_hub, f"cameras/{camera['id']}")["name"] == "North gate"
        deleted = write(live_hub, "DELETE", f"/api/cameras/{camera['id']}", headers=operator)
        assert deleted.status_code == 204
        assert live_hub.get(f"/api/cameras/{camera['id']}").status_code == 404
        assert error_of(write(live_hub, "DELETE", f"/api/cameras/{camera['id']}", headers=operator))[0] == 404
        assert api(live_hub, f"nvrs/{nvr_id}")["cameras_total"] == 1
    finally:
        await agent.close()


async def test_inventory_nvr_patch_moves_renames_and_delete_decommissions(live_hub: LiveHub) -> None:
    operator = session(live_hub, "operator")
    agent, nvr_id = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-c", 2)
    try:
        moved = write(live_hub, "PATCH", f"/api/nvrs/{nvr_id}",
                      {"device_name": "Dock recorder", "region": "South", "site": "Dock 4", "expected_cameras": 4},
                      headers=operator)  # fmt: skip
        assert moved.status_code == 200, moved.text
        assert (moved.json()["region"], moved.json()["site"], moved.json()["cameras_short"]) == ("South", "Dock 4", 2)
        assert all(c["region"] == "South" for c in api(live_hub, f"cameras?nvr={nvr_id}")["cameras"])
        assert error_of(write(live_hub, "PATCH", "/api/nvrs/999", {"region": "x"}, headers=operator))[:2] == (
            404,
            "not_found",
        )
        assert (
            error_of(write(live_hub, "PATCH", f"/api/nvrs/{nvr_id}", {"expected_cameras": -1}, headers=operator))[0]
            == 422
        )
        cleared = write(live_hub, "PATCH", f"/api/nvrs/{nvr_id}", {"expected_cameras": None}, headers=operator)
        assert cleared.json()["cameras_expected"] is None and cleared.json()["cameras_short"] == 0
        assert write(live_hub, "DELETE", f"/api/nvrs/{nvr_id}", headers=operator).status_code == 204
        assert live_hub.get(f"/api/nvrs/{nvr_id}").status_code == 404
        with pytest.raises(
            websockets.ConnectionClosed
        ) as closed:  # decommissioned: its agent is closed, as removal does
            for _ in range(50):
                await agent.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4004
        assert error_of(write(live_hub, "DELETE", f"/api/nvrs/{nvr_id}", headers=operator))[0] == 404
        assert [entry[1] for entry in audited(live_hub)] == ["nvr.edit", "nvr.edit", "nvr.remove"]
    finally:
        await agent.close()


def test_inventory_writes_take_an_operator_token_and_refuse_a_read_token_first(live_hub: LiveHub) -> None:
    read = bearer(create_token(live_hub.db_path, "dashboards", "read"))
    script = bearer(create_token(live_hub.db_path, "cmdb-sync", "operator"))
    refused = write(live_hub, "POST", "/api/nvrs", raw="{{{", headers=read)
    assert refused.status_code == 403 and refused.json()["error"]["code"]
    assert write(live_hub, "DELETE", "/api/cameras/999", headers=read).status_code == 403  # not 404: nothing checked
    # A script needs no CSRF token: a bearer token is not sent by browsers on their own.
    created = write(live_hub, "POST", "/api/nvrs", {"hostname": "nvr-cmdb-1", "region": "eu-west"}, headers=script)
    assert created.status_code == 201, created.text
    assert api(live_hub, f"nvrs/{created.json()['id']}")["status"] == "missing"
    assert audited(live_hub) == [("token:cmdb-sync", "nvr.declare", "nvr-cmdb-1", "127.0.0.1")]


async def test_inventory_nvr_declared_by_the_cli_keeps_lookalike_agents_out(live_hub: LiveHub, tmp_path: Path) -> None:
    source = tmp_path / "fleet.csv"
    source.write_text("hostname,region\npn-a,North\n")
    before = f"{api(live_hub, 'summary')['epoch']}-{api(live_hub, 'summary')['seq']}"
    async with open_stream(live_hub, f"view=nvrs&since={before}") as page:
        imported = await asyncio.to_thread(run_cli, live_hub.db_path, "inventory", "import", str(source))
        assert imported.returncode == 0, imported.stderr  # next to the running hub
        await page.until(lambda m: 'data-key="pn-a"' in m.data)  # the hub has published it (and learnt its name)
    assert [n["status"] for n in api(live_hub, "nvrs")["nvrs"]] == ["missing"]
    lookalike = await Agent.connect(live_hub.ws_url, live_hub.token)
    try:
        answer = await lookalike.request(hello("pn-\u0430", 1))  # a Cyrillic а: looks the same on every page
        assert answer["type"] == "error" and answer["code"] == "hostname_not_allowed", answer
    finally:
        await lookalike.close()
    agent, nvr_id = await Agent.register(live_hub.ws_url, live_hub.token, "pn-a", 1)
    try:
        assert api(live_hub, f"nvrs/{nvr_id}")["status"] == "online"
    finally:
        await agent.close()
