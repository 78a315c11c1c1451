"""Accounts and API tokens on the admin page, in Chromium: forms, the success message, the list changing."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browsing import Browsing, artifacts_dir
from tests.conftest import ADMIN, PASSWORD

pytestmark = pytest.mark.browser


def test_admin_creates_and_disables_an_account_and_sees_the_list_change(browsing: Browsing) -> None:
    page = browsing.open(f"{browsing.hub.url}/admin", live=False)
    page.set_viewport_size({"width": 1400, "height": 1000})
    form = page.locator("#create-user")
    form.get_by_label("User name").fill("olga")
    form.get_by_label("Role").select_option("operator")
    form.get_by_label("Password (8+ characters)").fill(PASSWORD)
    form.get_by_role("button", name="Create account").click()
    expect(page.locator("#admin-notice")).to_have_text("Created operator olga.")
    row = page.locator('#users tr[data-user="olga"]')
    expect(row).to_be_visible()
    expect(row.get_by_label("Role of olga", exact=True)).to_have_value("operator")

    row.get_by_role("button", name="Disable olga").click()
    expect(page.locator("#admin-notice")).to_contain_text("Disabled olga")
    expect(page.locator('#users tr[data-user="olga"]').get_by_text("disabled", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Enable olga")).to_be_visible()

    own = page.locator(f'#users tr[data-user="{ADMIN}"]')
    own.get_by_role("button", name=f"Disable {ADMIN}").click()
    expect(page.get_by_role("alert")).to_contain_text("you can't disable your own account")

    tokens = page.locator("#api-tokens-panel")
    tokens.get_by_label("Name").fill("grafana")
    tokens.get_by_role("button", name="Create API token").click()
    expect(page.locator("#created-api-token")).to_be_visible()
    expect(page.locator("#created-api-token")).to_contain_text("nvrapi_")
    expect(page.locator('#api-tokens tr[data-api-token="grafana"]')).to_contain_text("read")
    page.screenshot(path=artifacts_dir() / "admin-accounts.png", full_page=True)

    page.get_by_role("link", name="audit log").click()
    expect(page.locator("#audit-entries")).to_contain_text("user.disable")
    page.locator("#audit-action").select_option("user.create")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#audit-entries tr")).to_have_count(1)
    expect(page.locator("#audit-entries")).to_contain_text("olga")
    page.screenshot(path=artifacts_dir() / "admin-audit.png", full_page=True)
