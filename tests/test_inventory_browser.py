"""The fleet inventory in Chromium: declared devices that never connected read "Missing" in rows, KPIs and filters;
an NVR connecting, a camera vanishing and API edits reach open pages live; the admin page imports a file."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.browsing import Browsing, Fleet, api, artifacts_dir, not_reloaded, wait_until
from tests.conftest import create_user, run_cli
from tests.test_inventory_api import PASSWORD, session, write

pytestmark = pytest.mark.browser

FLEET = """\
sites:
  - name: Lisbon HQ
    region: eu-west
nvrs:
  - hostname: nvr-lis-lobby
    name: Lobby recorder
    site: Lisbon HQ
    tags: [lobby]
    expected_cameras: 3
    cameras:
      - id: cam1
        name: Lobby entrance
  - hostname: nvr-lis-dock
    name: Loading dock
    site: Lisbon HQ
    expected_cameras: 6
"""


def test_inventory_missing_nvr_shows_in_words_and_goes_online_live(
    browsing: Browsing, fleet: Fleet, tmp_path: Path
) -> None:
    hub = browsing.hub
    fleet.register("nvr-porto-1", 4)
    nvrs = browsing.open(f"{hub.url}/nvrs")
    dashboard = browsing.open(f"{hub.url}/")
    source = tmp_path / "fleet.yaml"
    source.write_text(FLEET)
    imported = run_cli(hub.db_path, "inventory", "import", str(source))  # next to the running hub, as operators do
    assert imported.returncode == 0, imported.stderr
    # The import reaches the open pages live (published as an outside commit): never-connected NVRs, in words.
    lobby = nvrs.locator("#nvr-rows tr", has_text="nvr-lis-lobby")
    expect(lobby.locator('[data-status="missing"]')).to_have_text(re.compile(r"Missing"))
    expect(lobby).to_contain_text("never connected")
    expect(nvrs.locator("#nvr-rows tr", has_text="nvr-lis-dock")).to_contain_text("Missing")
    expect(nvrs.locator('[data-stat="missing"]')).to_have_text("2")
    expect(nvrs.locator('#nvr-facets [data-facet="status:missing"]')).to_contain_text("Missing 2")
    card = dashboard.locator('[data-kpi-card="missing"]')
    expect(card).to_be_visible()
    expect(card).to_contain_text("2")
    expect(card).to_contain_text("NVRs never connected · 1 camera missing")
    dashboard.screenshot(path=str(artifacts_dir() / "inventory-dashboard-missing.png"), full_page=True)
    nvrs.screenshot(path=str(artifacts_dir() / "inventory-nvrs-missing.png"), full_page=True)
    # The filter shows only them.
    filtered = browsing.open(f"{hub.url}/nvrs?status=missing")
    expect(filtered.locator("#nvr-rows tr[id]")).to_have_count(2)

    # The lobby recorder's agent connects: Online, live, with the declared name and one camera short of three.
    fleet.register("nvr-lis-lobby", 2)
    expect(lobby.locator('[data-status="online"]')).to_have_text(re.compile("Online"))
    expect(lobby).to_contain_text("Lobby recorder")
    expect(lobby).to_contain_text("1 missing")  # three expected, two listed (cam1, the declared one, among them)
    expect(nvrs.locator('[data-stat="missing"]')).to_have_text("1")
    expect(filtered.locator("#nvr-rows tr[id]")).to_have_count(1)
    not_reloaded(nvrs)
    not_reloaded(dashboard)
    assert api(hub, "summary")["nvrs_missing"] == 1


def test_inventory_vanished_camera_and_api_edits_update_open_pages(browsing: Browsing, fleet: Fleet) -> None:
    hub = browsing.hub
    agent, nvr_id = fleet.register("nvr-gate", 3)
    cameras = browsing.open(f"{hub.url}/cameras")
    nvrs = browsing.open(f"{hub.url}/nvrs")
    fleet.send(agent, {"type": "cameras", "cameras": [{"id": "cam1", "name": "Cam 1", "status": "online"},
                                                     {"id": "cam2", "name": "Cam 2", "status": "online"}]})  # fmt: skip
    row = cameras.locator("#camera-rows tr", has_text="Cam 3")
    expect(row.locator('[data-status="missing"]')).to_have_text(re.compile("Missing"))
    expect(cameras.locator('[data-stat="missing"]')).to_have_text("1")
    expect(cameras.locator("#toasts .toast", has_text="Camera Cam 3 missing")).to_be_visible()
    cameras.screenshot(path=str(artifacts_dir() / "inventory-camera-missing.png"), full_page=True)

    operator = session(hub, "operator")
    moved = write(hub, "PATCH", f"/api/nvrs/{nvr_id}", {"region": "Harbour", "site": "Gate 7", "tags": ["perimeter"]},
                  headers=operator)  # fmt: skip
    assert moved.status_code == 200, moved.text
    gate = nvrs.locator(f"#nvr-{nvr_id}")
    expect(gate).to_contain_text("Harbour")
    expect(gate).to_contain_text("Gate 7")
    expect(gate.locator(".tag")).to_have_text("perimeter")
    expect(row).to_contain_text("Harbour")  # its cameras moved with it
    tiles = browsing.open(f"{hub.url}/cameras?layout=grid")
    expect(tiles.locator("article.tile", has_text="Cam 3").locator('[data-status="missing"]')).to_be_visible()
    detail = browsing.open(f"{hub.url}/nvrs/{nvr_id}")
    write(hub, "PATCH", f"/api/nvrs/{nvr_id}", {"expected_cameras": 5}, headers=operator)
    expect(detail.locator('[data-stat="inventory"]')).to_contain_text("declared, 5 cameras expected")
    expect(detail.locator('[data-stat="inventory"]')).to_contain_text("3 fewer listed")
    tiles.screenshot(path=str(artifacts_dir() / "inventory-camera-tiles.png"), full_page=True)
    detail.screenshot(path=str(artifacts_dir() / "inventory-nvr-detail.png"), full_page=True)
    declared = write(
        hub, "POST", "/api/cameras", {"nvr_id": nvr_id, "id": "cam9", "name": "Back gate"}, headers=operator
    )
    assert declared.status_code == 201, declared.text
    expect(cameras.locator("#camera-rows tr", has_text="Back gate")).to_contain_text("Missing")
    gone = write(hub, "DELETE", f"/api/cameras/{declared.json()['id']}", headers=operator)
    assert gone.status_code == 204
    expect(cameras.locator("#camera-rows tr", has_text="Back gate")).to_have_count(0)
    assert write(hub, "DELETE", f"/api/nvrs/{nvr_id}", headers=operator).status_code == 204
    expect(gate).to_have_count(0)
    not_reloaded(cameras)
    not_reloaded(nvrs)


def test_inventory_admin_section_previews_imports_and_exports(browsing: Browsing, tmp_path: Path) -> None:
    hub = browsing.hub
    admin = browsing.open(f"{hub.url}/admin", live=False)
    section = admin.locator("#inventory")
    expect(section.get_by_role("heading", name="Fleet inventory")).to_be_visible()
    section.get_by_label("Contents").fill(FLEET.replace("expected_cameras: 6", "expected_cameras: six"))
    section.get_by_role("button", name="Import").click()
    problems = admin.locator("#inventory-problems")
    expect(problems).to_contain_text("Nothing was imported")
    expect(problems).to_contain_text("line 16: field 'expected_cameras' must be a whole number")
    assert api(hub, "nvrs")["count"] == 0

    # Picking a file reads it into the form (and its name sets the format); one too large for the form says so.
    big = tmp_path / "huge.csv"
    big.write_text("hostname\n" + "".join(f"nvr-{i:05}\n" for i in range(3000)))
    section.get_by_label("File (YAML or CSV)").set_input_files(str(big))
    expect(admin.locator("#inventory-too-large")).to_be_visible()
    picked = tmp_path / "fleet.yaml"
    picked.write_text(FLEET)
    section.get_by_label("File (YAML or CSV)").set_input_files(str(picked))
    expect(admin.locator("#inventory-too-large")).to_be_hidden()
    expect(admin.locator("#inventory-content")).to_have_value(FLEET)
    expect(admin.locator("#inventory-format")).to_have_value("yaml")
    admin.get_by_role("button", name="Preview changes").click()
    result = admin.locator("#inventory-result")
    expect(result).to_contain_text("Preview: importing would make 4 changes")
    expect(result).to_contain_text("NVR nvr-lis-dock: declared (missing until its agent connects)")
    assert api(hub, "nvrs")["count"] == 0  # a preview changes nothing
    admin.screenshot(path=str(artifacts_dir() / "inventory-admin-preview.png"), full_page=True)
    admin.get_by_role("button", name="Import").click()
    expect(admin.locator("#inventory-result")).to_contain_text("Imported: 4 changes")
    assert [n["status"] for n in api(hub, "nvrs")["nvrs"]] == ["missing", "missing"]
    admin.get_by_role("button", name="Import").click()
    expect(admin.locator("#inventory-result")).to_contain_text("Nothing to change")
    admin.locator("#inventory").screenshot(path=str(artifacts_dir() / "inventory-admin-section.png"))

    exported = hub.get("/admin/inventory/export?format=csv")
    assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
    assert exported.text == run_cli(hub.db_path, "inventory", "export", "--format", "csv").stdout
    assert "nvr-lis-lobby,Lobby recorder,eu-west,Lisbon HQ,lobby,3" in exported.text
    # An operator may not import (admin role); without the form's CSRF token nobody may.
    create_user(hub.db_path, "oscar", "operator", PASSWORD)
    cookie = hub.login("oscar", PASSWORD)
    refused = httpx.post(f"{hub.url}/admin/inventory", data={"content": FLEET}, headers={"Cookie": cookie}, timeout=5)
    assert refused.status_code == 403
    no_token = httpx.post(f"{hub.url}/admin/inventory", data={"content": FLEET, "action": "import"},
                          headers=hub.headers, timeout=5)  # fmt: skip
    assert no_token.status_code == 403
    wait_until(lambda: api(hub, "summary")["nvrs_missing"] == 2)
