"""The admin page's Remove button, in Chromium: the NVR leaves the open NVR list live, without a reload."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browsing import Browsing, Fleet, api, not_reloaded

pytestmark = pytest.mark.browser


def test_remove_button_drops_the_nvr_from_open_pages(browsing: Browsing, fleet: Fleet) -> None:
    _, kept = fleet.register("nvr-in-service", 2)
    _, retired = fleet.register("nvr-retired", 2)
    watching = browsing.open(f"{browsing.hub.url}/nvrs")
    expect(watching.locator(f"#nvr-{retired}")).to_be_visible()
    admin = browsing.open(f"{browsing.hub.url}/admin", live=False)
    admin.get_by_role("button", name="Remove nvr-retired").click()
    expect(admin.locator("#admin-notice")).to_contain_text("Removed NVR nvr-retired")
    expect(admin.get_by_role("button", name="Remove nvr-retired")).to_have_count(0)
    expect(watching.locator(f"#nvr-{retired}")).to_have_count(0)
    expect(watching.locator(f"#nvr-{kept}")).to_be_visible()
    not_reloaded(watching)
    assert [n["hostname"] for n in api(browsing.hub, "nvrs")["nvrs"]] == ["nvr-in-service"]
