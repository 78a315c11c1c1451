"""The live pages in Firefox (firefox-esr over WebDriver BiDi) and WebKit (WebKitGTK's MiniBrowser through
WebKitWebDriver), against a real `nvrmon serve` and real WebSocket agents: a status flip, a toast, the connection
indicator through a hub restart, forced and automatic long-poll, and Back to a live page. The Chromium versions are
in tests/test_browser.py and tests/test_browser_faults.py; the drivers are in tests/drivers.py."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from anyio.from_thread import BlockingPortal

from tests.browsing import Fleet, api, artifacts_dir, nvr_offline, wait_until
from tests.conftest import LiveHub
from tests.drivers import BROWSERS, Driver, Tab, launch, missing
from tests.proxy import BufferingProxy

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module", params=BROWSERS)
def driver(request: pytest.FixtureRequest) -> Iterator[Driver]:
    """One browser per module and name; a browser that is not installed fails its tests (.ci/run installs both)."""
    name = str(request.param)
    if why := missing(name):
        pytest.fail(f"{name}: {why}")
    started = time.monotonic()
    browser = launch(name)
    print(f"\n{name} started in {time.monotonic() - started:.1f} s")
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def tab(driver: Driver, live_hub: LiveHub) -> Iterator[Tab]:
    """The browser's tab, logged in to this test's hub; it leaves the page (closing its stream) before the hub stops,
    and fails the test on uncaught errors in the page."""
    driver.errors()  # forget errors from an earlier test
    yield Tab(driver, live_hub)
    errors = driver.errors()
    driver.goto("about:blank")
    assert not errors, f"{driver.name}: uncaught errors in the page: {errors}"


def camera_badge(camera_id: int, status: str) -> str:
    return f'#camera-{camera_id} .badge[data-status="{status}"]'


def test_camera_status_flip_shows_within_a_second(live_hub: LiveHub, fleet: Fleet, tab: Tab) -> None:
    agent, nvr_id = fleet.register("nvr-flip", cameras=2)
    camera_id = next(c["id"] for c in api(live_hub, f"nvrs/{nvr_id}")["cameras"] if c["ext_id"] == "cam1")
    tab.open("/cameras")
    tab.wait_visible(camera_badge(camera_id, "online"), "Online")

    took = []
    for status, word in (("offline", "Offline"), ("online", "Online")):
        fleet.send(agent, {"type": "camera_status", "camera_id": "cam1", "status": status})
        took.append(tab.wait_visible(camera_badge(camera_id, status), word, timeout=1))
        assert tab.attribute(f"#camera-{camera_id}", "data-status") == status
    print(f"\n{tab.driver.name}: camera flip on screen after {', '.join(f'{t * 1000:.0f} ms' for t in took)}")
    tab.not_reloaded()


def test_nvr_going_offline_shows_badge_and_toast(live_hub: LiveHub, fleet: Fleet, tab: Tab) -> None:
    agent, nvr_id = fleet.register("nvr-toast", cameras=2)
    tab.open("/nvrs")
    tab.wait_visible(f'#nvr-{nvr_id} .badge[data-status="online"]', "Online")
    assert not tab.visible("#toasts .toast")

    fleet.send(agent, {"type": "camera_status", "camera_id": "cam1", "status": "offline"})
    fleet.close(agent)

    took = tab.wait_visible(f'#nvr-{nvr_id} .badge[data-status="offline"]', "Offline", timeout=1)
    tab.wait_visible("#toasts .toast-error", "nvr-toast offline", timeout=3)
    tab.wait_visible("#toasts .toast", "Camera cam1 offline", timeout=3)
    tab.wait("one NVR counted offline", lambda: tab.text('#nvr-stats [data-stat="offline"]') == "1", 3)
    time.sleep(0.3)  # the toast's slide-in animation
    shot = artifacts_dir() / f"nvrs-toast-{tab.driver.name}.png"
    tab.driver.screenshot(shot)
    assert shot.stat().st_size > 5_000, shot
    print(f"\n{tab.driver.name}: NVR offline on screen after {took * 1000:.0f} ms; screenshot {shot}")
    tab.not_reloaded()


def test_connection_indicator_follows_hub_restart(live_hub: LiveHub, fleet: Fleet, tab: Tab) -> None:
    _, before_id = fleet.register("nvr-before", cameras=1)
    tab.open("/nvrs")

    live_hub.stop()
    left = tab.wait("#connection leaving 'live'", lambda: tab.attribute("#connection", "data-state") != "live", 5)
    assert tab.attribute("#connection", "data-state") in ("reconnecting", "offline")
    live_hub.start()
    back = tab.wait_attribute("#connection", "data-state", "live", timeout=15)
    print(
        f"\n{tab.driver.name}: indicator left 'live' {left:.2f} s after the stop, back {back:.2f} s after the restart"
    )

    assert not tab.visible("#stale-banner")
    status = api(live_hub, f"nvrs/{before_id}")["status"]
    tab.wait_attribute(f"#nvr-{before_id} .badge[data-status]", "data-status", status)
    _, nvr_id = fleet.register("nvr-after", cameras=2)
    tab.wait_attribute(f"#nvr-{nvr_id}", "data-status", "online", timeout=3)
    tab.wait("two NVRs counted", lambda: tab.text('#nvr-stats [data-stat="total"]') == "2", 3)
    tab.not_reloaded()


def test_forced_long_poll_page_updates_live(live_hub: LiveHub, fleet: Fleet, tab: Tab) -> None:
    agent, nvr_id = fleet.register("nvr-poll", cameras=2)
    tab.open("/nvrs?transport=poll", live=False)
    assert tab.attribute("#live", "data-transport") == "poll"
    tab.wait_attribute("#connection", "data-state", "live", timeout=5)
    tab.driver.run("window.__marker = 1")

    fleet.send(agent, {"type": "camera_status", "camera_id": "cam1", "status": "offline"})
    fleet.close(agent)

    took = tab.wait_visible(f'#nvr-{nvr_id} .badge[data-status="offline"]', "Offline", timeout=3)
    tab.wait_visible("#toasts .toast", "nvr-poll", timeout=3)
    assert tab.attribute("#live", "data-transport") == "poll"
    assert tab.driver.run("return window.__marker || null") == 1, "the page reloaded"
    print(f"\n{tab.driver.name}: long-poll page showed the NVR offline after {took * 1000:.0f} ms")


def test_page_falls_back_to_long_poll_behind_a_buffering_proxy(
    live_hub: LiveHub, fleet: Fleet, tab: Tab, portal: BlockingPortal
) -> None:
    proxy = portal.call(BufferingProxy(live_hub.port).start)
    try:
        agent, nvr_id = fleet.register("nvr-behind-proxy", cameras=2)
        tab.driver.goto(f"http://127.0.0.1:{proxy.port}/nvrs")
        # The stream opens but nothing ever arrives through the proxy: the page switches to long-poll by itself.
        took = tab.wait_attribute("#live", "data-transport", "poll", timeout=15)
        tab.wait_attribute("#connection", "data-state", "live", timeout=5)
        assert proxy.held_stream
        fleet.send(agent, {"type": "camera_status", "camera_id": "cam2", "status": "offline"})
        fleet.close(agent)
        tab.wait_visible(f'#nvr-{nvr_id} .badge[data-status="offline"]', "Offline", timeout=5)
        print(f"\n{tab.driver.name}: switched to long-poll {took:.1f} s after the page loaded")
    finally:
        tab.driver.goto("about:blank")  # before the proxy goes away
        portal.call(proxy.stop)


SOUND_LOCK = """
window.__locks = null;
navigator.locks.query().then(q => { window.__locks = q.held.filter(lock => lock.name === "nvrmon-sound").length; });
"""


def sound_lock(tab: Tab) -> tuple[str | None, int]:
    """Whether the page says it plays the alarm sound for this browser, and how many holders its Web Lock has."""
    tab.driver.run(SOUND_LOCK)
    tab.wait("the lock query", lambda: tab.driver.run("return window.__locks") is not None, 2)
    return tab.attribute("html", "data-sound-leader"), int(tab.driver.run("return window.__locks"))


def test_back_button_restores_a_live_page(live_hub: LiveHub, fleet: Fleet, tab: Tab) -> None:
    agent, nvr_id = fleet.register("nvr-back", cameras=2)
    tab.open("/nvrs")
    tab.wait("the sound lock", lambda: sound_lock(tab) == ("yes", 1), 3)
    tab.driver.goto(f"{live_hub.url}/admin")
    fleet.close(agent)  # while the operator is on another page
    wait_until(nvr_offline(live_hub, nvr_id))

    tab.driver.run("history.back()")
    loaded = "return location.pathname + ' ' + document.readyState"
    tab.wait("back on /nvrs", lambda: tab.driver.run(loaded) == "/nvrs complete", 5)
    seen = set()
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        seen.add((tab.attribute("#connection", "data-state"), tab.visible("#stale-banner")))
        time.sleep(0.02)
    assert seen <= {("connecting", False), ("live", False)}, (
        f"{tab.driver.name} after Back showed {sorted(seen, key=str)}"
    )
    tab.wait_visible(f'#nvr-{nvr_id} .badge[data-status="offline"]', "Offline", timeout=0.5)
    assert sound_lock(tab) == ("yes", 1), "the only tab must hold the sound lock it says it holds"
