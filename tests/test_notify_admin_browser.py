"""The admin page's Notification channels, in Chromium: add a channel, test it against a real webhook sink and a
dead address, see the deliveries with their status and error, remove it; secrets are never shown back."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browsing import Browsing, Fleet, api, not_reloaded
from tests.conftest import run_cli
from tests.sinks import HttpSink, SmtpSink, free_port, wait_for

pytestmark = pytest.mark.browser


def test_admin_channels_add_test_and_remove(browsing: Browsing, webhook: HttpSink, smtp: SmtpSink) -> None:
    page = browsing.open(f"{browsing.hub.url}/admin", live=False)
    page.get_by_label("Apprise URL").fill(f"json://ops:hunter22@127.0.0.1:{webhook.port}/nvrmon")
    page.get_by_label("Channel name").fill("ops webhook")
    page.get_by_label("Only region").fill("North")
    page.get_by_label("Only severity").select_option("critical")
    page.get_by_role("button", name="Add channel").click()
    expect(page.locator("#admin-notice")).to_contain_text("Added channel ops webhook")
    row = page.locator("#channels tr", has_text="ops webhook")
    expect(row).to_contain_text("region=North severity=critical")
    expect(row).to_contain_text("ops:****@127.0.0.1")
    assert "hunter22" not in page.content()

    page.get_by_role("button", name="Send a test message to ops webhook").click()
    expect(page.locator("#admin-notice")).to_have_text("Test message sent to ops webhook.")
    assert wait_for(lambda: webhook.received())[0].json()["title"] == "nvrmon test message for channel ops webhook"
    delivery = page.locator("#deliveries tr").first
    expect(delivery).to_contain_text("ops webhook")
    expect(delivery.locator(".badge")).to_have_text("sent")

    page.get_by_label("Apprise URL").fill(smtp.url)
    page.get_by_label("Channel name").fill("ops mail")
    page.get_by_role("button", name="Add channel").click()
    page.get_by_role("button", name="Send a test message to ops mail").click()
    expect(page.locator("#admin-notice")).to_have_text("Test message sent to ops mail.")
    assert "Subject: nvrmon test message for channel ops mail" in wait_for(lambda: smtp.messages)[0].content

    page.get_by_label("Apprise URL").fill(f"json://127.0.0.1:{free_port()}/gone")
    page.get_by_label("Channel name").fill("dead end")
    page.get_by_role("button", name="Add channel").click()
    page.get_by_role("button", name="Send a test message to dead end").click()
    expect(page.get_by_role("alert")).to_contain_text("Test message to dead end failed: A Connection error occurred")
    failed = page.locator("#deliveries tr").first
    expect(failed.locator(".badge")).to_have_text("failed")
    expect(failed.locator(".delivery-error")).to_contain_text("Connection error")
    page.screenshot(path="/tmp/nt/admin-channels.png", full_page=True)

    page.get_by_role("button", name="Remove channel dead end").click()
    expect(page.locator("#admin-notice")).to_have_text("Removed channel dead end.")
    expect(page.locator("#channels tr", has_text="dead end")).to_have_count(0)
    assert browsing.errors == []


def test_admin_channels_refuse_a_bad_url_without_echoing_it(browsing: Browsing) -> None:
    page = browsing.open(f"{browsing.hub.url}/admin", live=False)
    page.get_by_label("Apprise URL").fill("nosuch://user:topsecret@example.com/x")
    page.get_by_label("Channel name").fill("typo")
    page.get_by_role("button", name="Add channel").click()
    expect(page.get_by_role("alert")).to_contain_text("Apprise cannot use this nosuch:// URL")
    expect(page.get_by_label("Channel name")).to_have_value("typo")  # what was typed is kept, but not the secret
    assert "topsecret" not in page.content()
    expect(page.locator("#channels")).to_contain_text("No channels yet")


@pytest.fixture
def quick_grouping(monkeypatch: pytest.MonkeyPatch) -> None:
    """Asked for before `browsing`, so the hub it starts groups for 2 s instead of 30."""
    monkeypatch.setenv("NVRMON_GROUP_WAIT", "2")


def test_delivery_shows_live_on_the_open_incident_page(
    quick_grouping: None, browsing: Browsing, fleet: Fleet, webhook: HttpSink
) -> None:
    assert run_cli(browsing.hub.db_path, "channel", "add", f"json://127.0.0.1:{webhook.port}/ops", "--name", "ops"
                   ).returncode == 0  # fmt: skip
    agent, _ = fleet.register("north-a", 4, region="North")
    fleet.close(agent)
    [incident] = wait_for(lambda: api(browsing.hub, "incidents")["incidents"])
    page = browsing.open(f"{browsing.hub.url}/incidents/{incident['id']}")
    assert webhook.received() == []  # still grouping: the page is open before the message goes out
    expect(page.get_by_text("ops: North 1: 1 NVR offline (north-a), 4 cameras")).to_be_visible(timeout=10_000)
    not_reloaded(page)
    assert len(webhook.received()) == 1
