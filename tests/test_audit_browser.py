"""The audit log as an admin sees it in Chromium: a maintenance window added on its page shows under the audit
page's "maintenance.*" family, with who and from where (screenshot under artifacts/)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from tests.browsing import Browsing, artifacts_dir
from tests.conftest import ADMIN

pytestmark = pytest.mark.browser


def test_audit_page_filters_by_family_and_shows_a_maintenance_window_added(browsing: Browsing) -> None:
    page = browsing.open(browsing.hub.url + "/maintenance", live=False)
    page.get_by_label("Region").fill("North")
    page.get_by_label("Ends").fill(datetime.fromtimestamp(time.time() + 7200, UTC).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Reason").fill("generator test")
    page.get_by_role("button", name="Add window").click()
    expect(page.locator("#maintenance-windows")).to_contain_text("generator test")

    page.goto(browsing.hub.url + "/admin/audit")
    page.locator("#audit-action").select_option(label="maintenance.*")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("#audit-entries tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_be_visible()
    for text in (ADMIN, "maintenance.create", "region North", "generator test", "127.0.0.1"):
        expect(rows.first).to_contain_text(text)
    page.screenshot(path=artifacts_dir() / "audit-maintenance.png", full_page=True)
