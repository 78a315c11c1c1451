"""Faults a browser must live through, in real Chromium: long-poll (forced and automatic behind a buffering proxy),
a hub killed with SIGKILL while it is watched, and a tab that was in the background."""

from __future__ import annotations

import os
import signal
import time

import pytest
from anyio.from_thread import BlockingPortal
from playwright.sync_api import Page, expect

from nvrmon.agent.simulator import Fleet as SimulatedFleet
from tests.browsing import Browsing, Fleet, api, not_reloaded, wait_until
from tests.conftest import LiveHub
from tests.proxy import BufferingProxy

pytestmark = pytest.mark.browser


def test_forced_long_poll_page_updates_live(live_hub: LiveHub, fleet: Fleet, browsing: Browsing) -> None:
    agent, nvr_id = fleet.register("nvr-poll", cameras=2)
    page = browsing.open(f"{live_hub.url}/nvrs?transport=poll", live=False)
    expect(page.locator("#live")).to_have_attribute("data-transport", "poll")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=5_000)
    page.evaluate("window.__marker = 1")

    fleet.send(agent, {"type": "camera_status", "camera_id": "cam1", "status": "offline"})
    fleet.close(agent)

    badge = page.locator(f"#nvr-{nvr_id} .badge[data-status]")
    # Long-poll answers at the next change; 5 s leaves room for a loaded test machine (speed is bench/'s business).
    expect(badge).to_have_attribute("data-status", "offline", timeout=5_000)
    expect(page.locator("#toasts .toast", has_text="nvr-poll").first).to_be_visible(timeout=5_000)
    expect(page.locator("#live")).to_have_attribute("data-transport", "poll")
    assert page.evaluate("window.__marker") == 1  # no reload


def test_page_falls_back_to_long_poll_behind_a_buffering_proxy(
    live_hub: LiveHub, fleet: Fleet, browsing: Browsing, portal: BlockingPortal
) -> None:
    proxy = portal.call(BufferingProxy(live_hub.port).start)
    try:
        agent, nvr_id = fleet.register("nvr-behind-proxy", cameras=2)
        page = browsing.open(f"http://127.0.0.1:{proxy.port}/nvrs", live=False)
        # The stream opens but nothing ever arrives through the proxy: the page switches to long-poll by itself.
        expect(page.locator("#live")).to_have_attribute("data-transport", "poll", timeout=15_000)
        expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=5_000)
        assert proxy.held_stream
        fleet.send(agent, {"type": "camera_status", "camera_id": "cam2", "status": "offline"})
        fleet.close(agent)
        badge = page.locator(f"#nvr-{nvr_id} .badge[data-status]")
        expect(badge).to_have_attribute("data-status", "offline", timeout=30_000)
    finally:
        portal.call(proxy.stop)


def dom_statuses(page: Page) -> dict[str, str]:
    rows = page.locator("#camera-rows tr[id^='camera-']")
    ids = rows.evaluate_all("rows => rows.map(r => r.id)")
    assert len(ids) == len(set(ids)), f"duplicate rows: {ids}"
    return dict(zip(ids, rows.evaluate_all("rows => rows.map(r => r.dataset.status)"), strict=True))


def api_statuses(hub: LiveHub) -> dict[str, str]:
    return {f"camera-{c['id']}": c["display_status"] for c in api(hub, "cameras")["cameras"]}


def test_kill_9_while_watched_converges_to_the_store(
    live_hub: LiveHub, browsing: Browsing, portal: BlockingPortal
) -> None:
    simulated = SimulatedFleet(live_hub.ws_url, live_hub.token, nvrs=4, cameras=6, rate=25, seed=11)
    running = portal.start_task_soon(simulated.run)
    try:
        wait_until(lambda: api(live_hub, "summary")["nvrs_online"] == 4, timeout=15)
        page = browsing.open(f"{live_hub.url}/cameras?per=100")
        time.sleep(1.5)  # changes flow
        assert live_hub.process is not None
        os.kill(live_hub.process.pid, signal.SIGKILL)
        live_hub.process.wait(5)
        live_hub.process = None
        expect(page.locator("#connection")).not_to_have_attribute("data-state", "live", timeout=10_000)
        restarted = time.monotonic()
        live_hub.start()
        wait_until(lambda: api(live_hub, "summary")["nvrs_online"] == 4, timeout=30)
        time.sleep(1.5)  # more changes after the restart
    finally:
        running.cancel()
    # Quiet now: the page must show exactly what the store says, each camera once.
    wait_until(lambda: dom_statuses(page) == api_statuses(live_hub), timeout=10)
    converged = time.monotonic() - restarted
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    not_reloaded(page)
    print(f"\nkill -9 with a browser watching: DOM equal to the store {converged:.1f} s after the restart")


def set_hidden(page: Page, hidden: bool) -> None:
    page.evaluate(
        """hidden => {
            Object.defineProperty(document, "hidden", {value: hidden, configurable: true});
            Object.defineProperty(document, "visibilityState", {value: hidden ? "hidden" : "visible",
                                                                configurable: true});
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        hidden,
    )


def test_background_tab_catches_up_when_it_returns(live_hub: LiveHub, fleet: Fleet, browsing: Browsing) -> None:
    agent, nvr_id = fleet.register("nvr-background", cameras=3)
    page = browsing.open(f"{live_hub.url}/nvrs")
    set_hidden(page, True)  # htmx pauses the stream of a hidden tab
    time.sleep(0.5)
    fleet.send(agent, {"type": "camera_status", "camera_id": "cam3", "status": "offline"})
    wait_until(lambda: api(live_hub, f"nvrs/{nvr_id}")["cameras_online"] == 2)
    set_hidden(page, False)
    expect(page.locator(f"#nvr-{nvr_id} td.num")).to_contain_text("2/3", timeout=5_000)
    not_reloaded(page)
