"""The /reports page in Chromium: range and grouping from the form, the table and the bar chart visible, the CSV
download holding the table's rows; and the same page with JavaScript off."""

from __future__ import annotations

import csv
import io
import re
import time

from playwright.sync_api import expect

from tests.browsing import Browsing, Fleet, api, artifacts_dir, nvr_offline, wait_until


def test_reports_page_shows_table_chart_and_downloads_the_csv(browsing: Browsing, fleet: Fleet) -> None:
    hub = browsing.hub
    lobby, lobby_id = fleet.register("lobby-nvr", cameras=3, region="Harbour")
    gate, gate_id = fleet.register("gate-nvr", cameras=2, region="Airport")
    fleet.register("yard-nvr", cameras=2, region="Airport")
    camera = api(hub, f"nvrs/{lobby_id}")["cameras"][0]
    fleet.send(lobby, {"type": "camera_status", "camera_id": camera["ext_id"], "status": "offline"})
    fleet.close(gate)
    wait_until(nvr_offline(hub, gate_id))
    time.sleep(1.5)

    page = browsing.open(f"{hub.url}/reports", live=False)
    expect(page.get_by_role("link", name="Reports")).to_have_attribute("aria-current", "page")
    table = page.locator("#availability-table")
    expect(table).to_be_visible()
    expect(table.locator("tbody tr")).to_have_count(2)  # two sites
    expect(table).to_contain_text("Airport 1")
    expect(table).to_contain_text("Harbour 1")
    figures = [float(t.rstrip("%")) for t in table.locator("tbody td.strong").all_inner_texts()]
    assert figures == sorted(figures) and figures[0] < 100, "worst first"
    expect(page.locator("#availability-chart svg.hbar")).to_have_count(2)
    expect(page.locator("#availability-chart .seg-down").first).to_be_visible()
    expect(page.locator("#fleet-availability")).to_contain_text("%")
    page.screenshot(path=str(artifacts_dir() / "reports-sites.png"), full_page=True)

    page.select_option("#report-scope", "camera")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/reports?*scope=camera*")
    rows = page.locator("#availability-table tbody tr")
    expect(rows).to_have_count(7)
    worst = rows.first
    expect(worst).to_contain_text(camera["name"])
    expect(worst).to_contain_text("on lobby-nvr")
    gate_camera = rows.filter(has_text="on gate-nvr").first
    # Its NVR's outage is shown in the NVR-offline column and leaves the camera's own figure alone.
    expect(gate_camera.locator("td").nth(1)).to_have_text("100.00%")
    expect(gate_camera.locator("td").nth(2)).to_have_text("–")
    expect(gate_camera.locator("td").nth(4)).to_have_text(re.compile(r"^\d+ s$"))
    page.screenshot(path=str(artifacts_dir() / "reports-cameras.png"), full_page=True)

    with page.expect_download() as caught:
        page.get_by_role("link", name="Download CSV").click()
    download = caught.value
    assert download.suggested_filename.startswith("availability-camera-24h-")
    with open(download.path(), encoding="utf-8") as handle:
        lines = list(csv.DictReader(io.StringIO(handle.read())))
    assert len(lines) == 7
    shown = [(rows.nth(i).get_attribute("data-key"), rows.nth(i).locator("th a").inner_text()) for i in range(7)]
    assert [(line["key"], line["name"]) for line in lines] == shown, "the CSV holds the table's rows, in its order"
    mine = next(line for line in lines if line["key"] == f"camera:{camera['id']}")
    assert float(mine["down_s"]) > 1 and float(mine["availability_percent"]) < 100


def test_reports_page_works_with_javascript_off(browsing: Browsing, fleet: Fleet) -> None:
    hub = browsing.hub
    fleet.register("quay-nvr", cameras=2, region="Harbour")
    time.sleep(0.5)
    page = browsing.context(java_script_enabled=False).new_page()
    page.goto(f"{hub.url}/reports?range=7d&scope=nvr")
    expect(page.locator("#availability-table tbody tr")).to_have_count(1)
    expect(page.locator("#availability-table")).to_contain_text("quay-nvr")
    expect(page.locator("#availability-table")).to_contain_text("100.00%")
    expect(page.locator("#availability-chart svg.hbar")).to_be_visible()
    page.fill("input[name=from]", "2026-01-01T00:00:00")
    page.fill("input[name=to]", "2025-01-01T00:00:00")
    page.select_option("#report-range", "custom")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("alert")).to_contain_text("to must be after from")
