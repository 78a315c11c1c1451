"""Incidents as people see them: Chromium on a real hub with real agents; acknowledgement live in another browser,
the /incidents list, the dashboard panel and maintenance shown in words (screenshots under artifacts/)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from playwright.sync_api import expect

from tests.browsing import Browsing, Fleet, api, artifacts_dir, not_reloaded, wait_until
from tests.conftest import LiveHub, create_user

OPERATOR, OPERATOR_PASSWORD = "alice", "alice's long operator password"


def nvr_hello(hostname: str, site: str, region: str, cameras: tuple[str, ...]) -> dict[str, Any]:
    return {
        "type": "hello", "protocol": 1,
        "nvr": {"hostname": hostname, "device_name": f"{site} recorder", "region": region, "site": site,
                "model": "DS-7616NI", "firmware": "4.62.210", "ip_address": "10.20.0.2"},
        "cameras": [{"id": f"ch{i}", "name": name, "ip_address": f"10.20.0.{10 + i}", "status": "online"}
                    for i, name in enumerate(cameras, 1)],
    }  # fmt: skip


def tomorrow() -> str:
    return datetime.fromtimestamp(time.time() + 86400, UTC).isoformat()


def active(hub: LiveHub) -> list[dict[str, Any]]:
    return list(api(hub, "incidents?state=active")["incidents"])


def csrf(hub: LiveHub) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', hub.get("/incidents").text)
    assert match is not None
    return match.group(1)


def post(hub: LiveHub, path: str, body: dict[str, Any]) -> httpx.Response:
    headers = {**hub.headers, "X-CSRF-Token": csrf(hub)}
    return httpx.post(f"{hub.url}{path}", json=body, headers=headers, timeout=5)


def depot(fleet: Fleet) -> list[Any]:
    """A site of two NVRs with named cameras, as a screenshot should show it."""
    cams = ("Loading Bay 1", "Loading Bay 2", "Gate 3", "Yard North")
    return [fleet.hello(nvr_hello(f"depot-nvr-0{n}", "Leeds Depot", "North", cams))[0] for n in (1, 2)]


def test_acknowledgement_shows_in_another_browser_within_a_second(
    browsing: Browsing, fleet: Fleet, live_hub: LiveHub
) -> None:
    create_user(live_hub.db_path, OPERATOR, "operator", OPERATOR_PASSWORD)
    first, _ = depot(fleet)
    fleet.close(first)
    wait_until(lambda: len(active(live_hub)) == 1)
    incident = active(live_hub)[0]
    alice = browsing.context()
    name, _, value = live_hub.login(OPERATOR, OPERATOR_PASSWORD).partition("=")
    alice.add_cookies([{"name": name, "value": value, "url": live_hub.url}])
    acking = browsing.open(f"{live_hub.url}/incidents/{incident['id']}", alice)
    watching = browsing.open(f"{live_hub.url}/incidents/{incident['id']}")
    expect(watching.locator("#incident-summary")).to_contain_text("NVR depot-nvr-01 offline")
    expect(watching.locator(".ack-form")).to_be_visible()
    watching.screenshot(path=str(artifacts_dir() / "incident-open.png"))

    acking.fill("#ack-note", "technician on the way")
    started = time.monotonic()
    acking.get_by_role("button", name="Acknowledge").click()
    line = watching.locator("#incident-summary .ack-line")
    expect(line).to_be_visible(timeout=1_000)
    assert time.monotonic() - started < 1.0
    expect(line).to_contain_text("acknowledged by alice")
    expect(line).to_contain_text("technician on the way")
    expect(watching.locator(".ack-form")).to_be_hidden()  # nothing left to acknowledge
    expect(watching.locator("#incident-timeline")).to_contain_text("alice: technician on the way")
    not_reloaded(watching)
    assert api(live_hub, f"incidents/{incident['id']}")["acknowledged_by"] == OPERATOR

    acking.fill("#comment-note", "power restored to cabinet B, waiting for the NVR to boot")
    acking.get_by_role("button", name="Add comment").click()
    expect(watching.locator("#incident-timeline")).to_contain_text("power restored to cabinet B", timeout=2_000)
    watching.screenshot(path=str(artifacts_dir() / "incident-detail.png"), full_page=True)
    assert "Traceback" not in live_hub.log()


def test_incident_list_and_dashboard_panel_update_live(browsing: Browsing, fleet: Fleet, live_hub: LiveHub) -> None:
    first, second = depot(fleet)
    shop, shop_id = fleet.hello(nvr_hello("mall-nvr-01", "Arndale Mall", "North", ("Entrance", "Food Court")))
    listing = browsing.open(live_hub.url + "/incidents")
    dashboard = browsing.open(live_hub.url + "/")
    expect(listing.locator("#incident-rows")).to_contain_text("No incidents")
    expect(dashboard.locator("#incident-panel")).to_contain_text("No open incidents")

    entrance = api(live_hub, f"nvrs/{shop_id}")["cameras"][0]
    fleet.send(shop, {"type": "camera_status", "camera_id": entrance["ext_id"], "status": "offline"})
    fleet.close(first)
    fleet.close(second)
    site_row = listing.locator("#incident-rows tr[data-scope='site']")
    expect(site_row).to_contain_text("Site Leeds Depot down", timeout=3_000)
    expect(site_row).to_contain_text("2 of 2 down")
    expect(listing.locator("#incident-rows tr[data-scope='camera']")).to_contain_text("Camera Entrance on mall-nvr-01")
    expect(dashboard.locator("#incident-panel")).to_contain_text("Site Leeds Depot down")
    expect(dashboard.locator("#incident-panel")).to_contain_text("Critical")
    not_reloaded(listing)
    not_reloaded(dashboard)
    listing.screenshot(path=str(artifacts_dir() / "incidents-list.png"), full_page=True)
    dashboard.locator("#incident-panel").screenshot(path=str(artifacts_dir() / "dashboard-incidents-panel.png"))
    dashboard.screenshot(path=str(artifacts_dir() / "dashboard.png"))

    critical = browsing.open(live_hub.url + "/incidents?severity=critical&state=active")
    expect(critical.locator("#incident-rows tr")).to_have_count(1)
    fleet.hello(nvr_hello("depot-nvr-01", "Leeds Depot", "North", ("Loading Bay 1",)))
    fleet.hello(nvr_hello("depot-nvr-02", "Leeds Depot", "North", ("Loading Bay 1",)))
    expect(dashboard.locator("#incident-panel")).not_to_contain_text("Leeds Depot", timeout=3_000)
    expect(listing.locator("#incident-rows tr[data-scope='site']")).to_contain_text("Resolved")
    expect(critical.locator("#incident-rows")).to_contain_text("No incidents match these filters")
    assert "Traceback" not in live_hub.log()


def test_devices_in_maintenance_say_so_and_the_page_lists_windows(
    browsing: Browsing, fleet: Fleet, live_hub: LiveHub
) -> None:
    depot(fleet)
    nvrs = browsing.open(live_hub.url + "/nvrs")
    cameras = browsing.open(live_hub.url + "/cameras?layout=grid")
    created = post(live_hub, "/api/maintenance", {"match": {"site": "Leeds Depot"}, "reason": "UPS replacement",
                                                  "ends_at": tomorrow()})  # fmt: skip
    assert created.status_code == 201, created.text
    row = nvrs.locator("#nvr-rows tr", has_text="depot-nvr-01")
    expect(row.locator(".badge-maintenance")).to_be_visible(timeout=2_000)
    expect(row).to_contain_text("Maintenance")
    expect(cameras.locator("article", has_text="Gate 3").first).to_contain_text("Maintenance")
    not_reloaded(nvrs)
    nvrs.screenshot(path=str(artifacts_dir() / "nvrs-maintenance.png"))

    page = browsing.open(live_hub.url + "/maintenance", live=False)
    expect(page.locator("#maintenance-windows")).to_contain_text("site Leeds Depot")
    expect(page.locator("#maintenance-windows")).to_contain_text("UPS replacement")
    expect(page.locator("#maintenance-windows")).to_contain_text("Active now")
    page.screenshot(path=str(artifacts_dir() / "maintenance.png"), full_page=True)
    page.get_by_role("button", name="Delete").click()
    expect(page.locator("#maintenance-windows")).to_contain_text("No maintenance windows")
    expect(row.locator(".badge-maintenance")).to_have_count(0, timeout=2_000)

    # The page's own form: a camera for an hour, in UTC as the form says.
    gate = next(c for c in api(live_hub, "cameras")["cameras"] if c["name"] == "Gate 3")
    page.fill("#mw-camera", str(gate["id"]))
    page.fill("#mw-end", datetime.fromtimestamp(time.time() + 3600, UTC).strftime("%Y-%m-%dT%H:%M"))
    page.fill("#mw-reason", "lens cleaning")
    page.get_by_role("button", name="Add window").click()
    expect(page.locator("#maintenance-windows")).to_contain_text(f"camera #{gate['id']}")
    expect(page.locator("#maintenance-windows")).to_contain_text("lens cleaning")
    page.fill("#mw-site", "Leeds Depot")
    page.fill("#mw-reason", "forgot the end")
    page.get_by_role("button", name="Add window").click()
    expect(page.locator(".form-error")).to_contain_text("ends_at is required")
    expect(page.locator("#mw-site")).to_have_value("Leeds Depot")  # what was typed is kept
    expect(cameras.locator(f"#camera-{gate['id']} .badge-maintenance")).to_be_visible()
    assert "Traceback" not in live_hub.log()
