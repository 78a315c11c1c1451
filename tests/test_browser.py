"""Real-browser tests: Debian Chromium driven by Playwright against a real `nvrmon serve` and real WebSocket agents
(fixtures in tests/browsing.py)."""

from __future__ import annotations

import signal
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from tests.agent import Agent
from tests.browsing import (
    PHONE,
    Browsing,
    Fleet,
    api,
    artifacts_dir,
    not_reloaded,
    nvr_offline,
    row_keys,
    wait_until,
)
from tests.conftest import PASSWORD, LiveHub, create_user
from tests.test_embed import make_embed

pytestmark = pytest.mark.browser

# -- 1. one NVR goes down ----------------------------------------------------------------------------------------------


def test_nvr_list_badge_goes_offline_live_without_reload(live_hub: LiveHub, fleet: Fleet, browsing: Browsing) -> None:
    agent, nvr_id = fleet.register("nvr-live-1", cameras=2)
    page = browsing.open(f"{live_hub.url}/nvrs")
    row = page.locator(f"#nvr-{nvr_id}")
    badge = page.locator(f"#nvr-{nvr_id} .badge[data-status]")
    expect(badge).to_have_attribute("data-status", "online")
    expect(page.locator("#toasts .toast")).to_have_count(0)

    fleet.send(agent, {"type": "camera_status", "camera_id": "cam1", "status": "offline"})
    fleet.close(agent)

    expect(badge).to_have_attribute("data-status", "offline", timeout=1_000)
    expect(row).to_have_attribute("data-status", "offline")
    expect(page.locator('#nvr-stats [data-stat="offline"]')).to_have_text("1")
    expect(page.locator("#toasts .toast-error", has_text="nvr-live-1 offline")).to_be_visible()
    expect(page.locator("#toasts .toast", has_text="Camera cam1 offline")).to_be_visible()
    not_reloaded(page)


# -- 2. a new NVR registers --------------------------------------------------------------------------------------------


def test_nvr_list_new_nvr_row_is_upserted_in_order(live_hub: LiveHub, fleet: Fleet, browsing: Browsing) -> None:
    page = browsing.open(f"{live_hub.url}/nvrs")
    empty_row = page.locator("#nvr-rows .empty-row")
    expect(empty_row).to_be_visible()
    total = page.locator('#nvr-stats [data-stat="total"]')
    expect(total).to_have_text("0")

    _, first = fleet.register("nvr-m", cameras=2)
    expect(page.locator(f"#nvr-{first}")).to_have_attribute("data-status", "online")
    expect(empty_row).to_be_hidden()
    expect(total).to_have_text("1")

    fleet.register("nvr-z", cameras=1)
    fleet.register("nvr-a", cameras=3)
    expect(total).to_have_text("3")
    expect(page.locator('#nvr-stats [data-stat="online"]')).to_have_text("3")
    expect(page.locator("#nvr-rows > tr[id]")).to_have_count(3)
    assert row_keys(page, "#nvr-rows") == ["nvr-a", "nvr-m", "nvr-z"]
    not_reloaded(page)


def test_camera_list_new_nvr_cameras_are_upserted(live_hub: LiveHub, fleet: Fleet, browsing: Browsing) -> None:
    fleet.register("nvr-m", cameras=1)
    page = browsing.open(f"{live_hub.url}/cameras")
    total = page.locator('#camera-stats [data-stat="total"]')
    expect(total).to_have_text("1")

    fleet.register("nvr-a", cameras=2, offline=(2,))
    expect(total).to_have_text("3")
    expect(page.locator('#camera-stats [data-stat="offline"]')).to_have_text("1")
    expect(page.locator("#camera-rows > tr[id]")).to_have_count(3)
    assert row_keys(page, "#camera-rows") == ["nvr-a/Cam 1", "nvr-a/Cam 2", "nvr-m/Cam 1"]
    expect(page.locator('#camera-rows > tr[data-key="nvr-a/Cam 2"]')).to_have_attribute("data-status", "offline")
    not_reloaded(page)


def test_dashboard_kpis_count_new_nvr(live_hub: LiveHub, fleet: Fleet, browsing: Browsing) -> None:
    fleet.register("nvr-m", cameras=1)
    page = browsing.open(f"{live_hub.url}/")
    expect(page.locator('[data-kpi="nvrs_total"]')).to_have_text("1")

    fleet.register("nvr-new", cameras=4)
    expect(page.locator('[data-kpi="nvrs_total"]')).to_have_text("2")
    expect(page.locator('[data-kpi="nvrs_online"]')).to_have_text("2")
    expect(page.locator('[data-kpi="cameras_total"]')).to_have_text("5")
    expect(page.locator("#event-list .event", has_text="nvr-new").first).to_be_visible()
    expect(page.locator("#toasts .toast-success", has_text="nvr-new")).to_be_visible()
    not_reloaded(page)


# -- 3. several pages at once ------------------------------------------------------------------------------------------


def test_all_pages_show_one_change(live_hub: LiveHub, fleet: Fleet, browsing: Browsing) -> None:
    agent, nvr_id = fleet.register("nvr-multi", cameras=3)
    fleet.register("nvr-other", cameras=2)
    camera_id = next(c["id"] for c in api(live_hub, f"nvrs/{nvr_id}")["cameras"] if c["ext_id"] == "cam2")
    tabs = browsing.context()  # one user, several tabs
    dashboard = browsing.open(f"{live_hub.url}/", tabs)
    nvrs = browsing.open(f"{live_hub.url}/nvrs", tabs)
    cameras = browsing.open(f"{live_hub.url}/cameras", browsing.context())  # and a second user
    nvr = browsing.open(f"{live_hub.url}/nvrs/{nvr_id}", tabs)
    camera = browsing.open(f"{live_hub.url}/cameras/{camera_id}", tabs)
    expect(dashboard.locator('[data-kpi="cameras_offline"]')).to_have_text("0")

    fleet.send(agent, {"type": "camera_status", "camera_id": "cam2", "status": "offline"})

    expect(dashboard.locator('[data-kpi="cameras_offline"]')).to_have_text("1", timeout=3_000)
    expect(dashboard.locator("#event-list .event", has_text="cam2")).to_be_visible()
    expect(nvrs.locator(f"#nvr-{nvr_id} td.num")).to_contain_text("2/3", timeout=3_000)
    expect(cameras.locator(f"#camera-{camera_id}")).to_have_attribute("data-status", "offline", timeout=3_000)
    expect(cameras.locator('#camera-stats [data-stat="offline"]')).to_have_text("1")
    expect(nvr.locator(f"#nvr-{nvr_id}-cameras #camera-{camera_id}")).to_have_attribute(
        "data-status", "offline", timeout=3_000
    )
    expect(nvr.locator(f"#nvr-{nvr_id}-facts")).to_contain_text("2 of 3")
    expect(camera.locator(f"#camera-{camera_id}-facts")).to_have_attribute("data-status", "offline", timeout=3_000)
    expect(camera.locator(f"#camera-{camera_id}-facts .badge[data-status]")).to_have_attribute("data-status", "offline")
    for page in (dashboard, nvrs, cameras, nvr, camera):
        not_reloaded(page)


# -- 4. the hub restarts -----------------------------------------------------------------------------------------------


def test_connection_indicator_follows_hub_restart(live_hub: LiveHub, fleet: Fleet, browsing: Browsing) -> None:
    _, before_id = fleet.register("nvr-before", cameras=1)
    page = browsing.open(f"{live_hub.url}/nvrs")
    indicator = page.locator("#connection")

    started = time.monotonic()
    live_hub.stop()
    stopped = time.monotonic()
    expect(indicator).not_to_have_attribute("data-state", "live", timeout=5_000)
    assert indicator.get_attribute("data-state") in ("reconnecting", "offline")
    left = time.monotonic()
    page.screenshot(path=artifacts_dir() / "nvrs-hub-down.png")

    live_hub.start()
    restarted = time.monotonic()
    expect(indicator).to_have_attribute("data-state", "live", timeout=15_000)
    print(
        f"\nhub stop took {stopped - started:.2f} s; indicator left 'live' {left - stopped:.2f} s after; "
        f"back to 'live' {time.monotonic() - restarted:.2f} s after the hub was healthy again"
    )
    expect(page.locator("#stale-banner")).to_be_hidden()
    # Whatever the restarted hub says about the NVR whose agent it dropped, the page converges to it by itself.
    status = api(live_hub, f"nvrs/{before_id}")["status"]
    expect(page.locator(f"#nvr-{before_id} .badge[data-status]")).to_have_attribute("data-status", status)

    _, nvr_id = fleet.register("nvr-after", cameras=2)
    expect(page.locator(f"#nvr-{nvr_id}")).to_have_attribute("data-status", "online", timeout=3_000)
    expect(page.locator('#nvr-stats [data-stat="total"]')).to_have_text("2")
    not_reloaded(page)


def test_page_goes_live_when_sse_extension_loads_last(live_hub: LiveHub, browsing: Browsing) -> None:
    # Regression: with htmx deferred, a late hx-sse file left about one page load in ten without its stream.
    # Delaying the extension made that certain; htmx now waits for DOMContentLoaded, after every extension.
    context = browsing.context()

    def slow_extension(route: Route) -> None:
        time.sleep(1.0)
        route.continue_()

    context.route("**/static/hx-sse-*.js*", slow_extension)
    browsing.open(f"{live_hub.url}/nvrs", context)


# -- 5. no JavaScript --------------------------------------------------------------------------------------------------


def test_pages_without_javascript_show_current_status(live_hub: LiveHub, fleet: Fleet, browsing: Browsing) -> None:
    up, up_id = fleet.register("nvr-js-up", cameras=3, offline=(2,))
    down, down_id = fleet.register("nvr-js-down", cameras=2)
    fleet.send(up, {"type": "camera_status", "camera_id": "cam3", "status": "offline"})
    fleet.close(down)
    wait_until(nvr_offline(live_hub, down_id))
    wait_until(lambda: api(live_hub, "summary")["cameras_offline"] == 2)

    static = browsing.context(java_script_enabled=False)
    page = browsing.open(f"{live_hub.url}/nvrs", static, live=False)
    expect(page.locator("noscript .banner")).to_be_visible()
    for nvr in api(live_hub, "nvrs")["nvrs"]:
        expect(page.locator(f"#nvr-{nvr['id']}")).to_have_attribute("data-status", nvr["status"])
        expect(page.locator(f"#nvr-{nvr['id']} .badge[data-status]")).to_have_attribute("data-status", nvr["status"])
    expect(page.locator(f"#nvr-{up_id}")).to_have_attribute("data-status", "online")
    expect(page.locator(f"#nvr-{up_id} td.num")).to_contain_text("1/3")
    expect(page.locator(f"#nvr-{down_id}")).to_have_attribute("data-status", "offline")
    expect(page.locator('#nvr-stats [data-stat="offline"]')).to_have_text("1")

    page = browsing.open(f"{live_hub.url}/cameras", static, live=False)
    cameras = api(live_hub, "cameras")["cameras"]
    assert sorted(c["display_status"] for c in cameras) == [
        "nvr_offline",
        "nvr_offline",
        "offline",
        "offline",
        "online",
    ]
    for cam in cameras:
        expect(page.locator(f"#camera-{cam['id']}")).to_have_attribute("data-status", cam["display_status"])
        expect(page.locator(f"#camera-{cam['id']} .badge[data-status]")).to_have_attribute(
            "data-status", cam["display_status"]
        )
    expect(page.locator('#camera-stats [data-stat="nvr_offline"]')).to_have_text("2")
    page.screenshot(path=artifacts_dir() / "cameras-nojs.png", full_page=True)


# -- 6. latency --------------------------------------------------------------------------------------------------------

WATCH_STATUS = """rowId => {
  window.__flips = [];
  let last = document.getElementById(rowId).dataset.status;
  new MutationObserver(() => {
    const row = document.getElementById(rowId);
    const status = row && row.dataset.status;
    if (status && status !== last) {
      last = status;
      window.__flips.push({status, t: performance.timeOrigin + performance.now()});
    }
  }).observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ["data-status"]});
}"""


def test_camera_status_flip_latency(live_hub: LiveHub, fleet: Fleet, browsing: Browsing) -> None:
    agent, nvr_id = fleet.register("nvr-latency", cameras=1)
    camera_id = api(live_hub, f"nvrs/{nvr_id}")["cameras"][0]["id"]
    page = browsing.open(f"{live_hub.url}/cameras")
    page.evaluate(WATCH_STATUS, f"camera-{camera_id}")

    latencies: list[float] = []
    for i in range(20):
        status = "offline" if i % 2 == 0 else "online"
        sent = time.time()
        fleet.send(agent, {"type": "camera_status", "camera_id": "cam1", "status": status})
        page.wait_for_function("n => window.__flips.length >= n", arg=i + 1, timeout=3_000)
        flip = page.evaluate("i => window.__flips[i]", i)
        assert flip["status"] == status
        latencies.append(flip["t"] - sent * 1000)
        time.sleep(0.1)

    print(
        f"\nagent send -> DOM data-status change, {len(latencies)} flips: "
        f"median {statistics.median(latencies):.1f} ms, min {min(latencies):.1f} ms, max {max(latencies):.1f} ms"
        f"\n  all (ms): {', '.join(f'{x:.1f}' for x in latencies)}"
    )
    assert max(latencies) < 1000
    not_reloaded(page)


# -- 7. screenshots ----------------------------------------------------------------------------------------------------

SITES = [
    ("nvr-hq-lobby", "HQ lobby recorder", "North", "Headquarters", ("Entrance", "Reception", "Elevators", "Garage")),
    ("nvr-hq-floor3", "HQ 3rd floor", "North", "Headquarters", ("Open office", "Server room", "Stairs", "Kitchen")),
    ("nvr-wh-east-01", "Warehouse East", "East", "Logistics park", ("Dock 1", "Dock 2", "Yard", "Gate")),
    ("nvr-store-0142", "Store #142", "South", "Mall of the South", ("Tills", "Aisle 4", "Back door", "Stockroom")),
    ("nvr-store-0177", "Store #177", "South", "High Street", ("Tills", "Entrance", "Aisle 2", "Office")),
    ("nvr-depot-west", "Bus depot recorder", "West", "Depot", ("Bay A", "Bay B", "Fuel station", "Wash bay")),
]


def site_hello(index: int, offline: tuple[int, ...] = ()) -> dict[str, Any]:
    hostname, device, region, site, cameras = SITES[index]
    return {
        "type": "hello",
        "protocol": 1,
        "nvr": {"hostname": hostname, "device_name": device, "region": region, "site": site,
                "model": "NV-8016" if index % 2 else "NV-4008", "firmware": f"4.{2 + index % 3}.1",
                "ip_address": f"10.{index + 1}.0.2"},
        "cameras": [{"id": f"cam{i + 1}", "name": name, "ip_address": f"10.{index + 1}.0.{11 + i}",
                     "status": "offline" if i in offline else "online"} for i, name in enumerate(cameras)],
    }  # fmt: skip


def test_screenshots_of_every_page(live_hub: LiveHub, fleet: Fleet, browsing: Browsing) -> None:
    out = artifacts_dir()
    agents: list[tuple[Agent, int]] = []
    for index in range(len(SITES)):
        agents.append(fleet.hello(site_hello(index, offline={1: (1,), 3: (2, 3)}.get(index, ()))))
    fleet.send(agents[2][0], {"type": "camera_status", "camera_id": "cam3", "status": "offline"})
    fleet.send(agents[2][0], {"type": "alert", "severity": "warning", "message": "Disk 2 SMART: reallocated sectors"})
    fleet.send(
        agents[0][0], {"type": "alert", "severity": "critical", "message": "Tamper detected", "camera_id": "cam4"}
    )
    down_agent, down_id = agents[5]
    fleet.close(down_agent)
    wait_until(nvr_offline(live_hub, down_id))
    nvr_id = agents[2][1]
    camera_id = next(c["id"] for c in api(live_hub, f"nvrs/{nvr_id}")["cameras"] if c["status"] == "offline")
    pages = {
        "dashboard": "/",
        "nvrs": "/nvrs",
        "cameras": "/cameras",
        "nvr": f"/nvrs/{nvr_id}",
        "camera": f"/cameras/{camera_id}",
    }

    shots: list[Path] = []
    variants = {
        "light": browsing.context(),
        "dark": browsing.context(color_scheme="dark"),
        "phone": browsing.context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True),
    }
    for variant, context in variants.items():
        for name, path in pages.items():
            page = browsing.open(f"{live_hub.url}{path}", context)
            shots.append(out / f"{name}-{variant}.png")
            page.screenshot(path=shots[-1], full_page=True)
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            if overflow > 0:
                print(f"\n{name}-{variant}: page is {overflow} px wider than the viewport")
            page.close()

    # A live change while /nvrs is open: the toast and the updated row, in light and dark.
    for variant in ("light", "dark"):
        page = browsing.open(f"{live_hub.url}/nvrs", variants[variant])
        flip = "offline" if variant == "light" else "online"
        fleet.send(agents[4][0], {"type": "camera_status", "camera_id": "cam2", "status": flip})
        expect(page.locator("#toasts .toast")).to_have_count(1)
        page.wait_for_timeout(300)  # let the toast's slide-in animation finish
        shots.append(out / f"nvrs-toast-{variant}.png")
        page.screenshot(path=shots[-1])

    print("\nscreenshots: " + ", ".join(str(p) for p in shots))
    for shot in shots:
        assert shot.stat().st_size > 5_000, shot


# -- 7. the interface around the live data -----------------------------------------------------------------------------


def boxes_apart(a: dict[str, float], b: dict[str, float]) -> bool:
    return a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"]


def box_inside(inner: dict[str, float], outer: dict[str, float]) -> bool:
    return (
        inner["x"] >= outer["x"] - 0.5
        and inner["y"] >= outer["y"] - 0.5
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 0.5
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 0.5
    )


def test_notification_center_shows_each_unread_entry(live_hub: LiveHub, fleet: Fleet, browsing: Browsing) -> None:
    # Regression: the bell's badge rule (.unread, absolutely positioned) also matched the unread entries, which were
    # all stacked on top of each other in the panel's corner until "Mark all read".
    agent, _ = fleet.register("nvr-notes", cameras=2)
    messages = ["Disk 2 SMART: reallocated sectors", "Recording stopped: disk failure", "Fan speed low"]
    for scheme in ("light", "dark"):
        page = browsing.open(f"{live_hub.url}/nvrs", browsing.context(color_scheme=scheme))
        for severity, message in zip(("warning", "critical", "warning"), messages, strict=True):
            fleet.send(agent, {"type": "alert", "severity": severity, "message": f"{message} ({scheme})"})
        expect(page.locator("#unread")).to_have_text("3")
        page.click("#bell")
        panel = page.locator("dialog#notif-center")
        expect(panel).to_be_visible()
        entries = panel.locator(".notif.unread")
        expect(entries).to_have_count(3)
        page.wait_for_timeout(300)  # the drawer's slide-in
        panel_box = panel.bounding_box()
        assert panel_box is not None
        boxes = []
        for index, message in enumerate(reversed(messages)):  # newest first
            entry = entries.nth(index)
            expect(entry).to_be_visible()
            expect(entry).to_contain_text(message)
            box = entry.bounding_box()
            assert box is not None and box["height"] > 20, (message, box)
            assert box_inside(box, panel_box), (message, box, panel_box)
            boxes.append(box)
        for index, box in enumerate(boxes):
            for other in boxes[index + 1 :]:
                assert boxes_apart(box, other), ("entries overlap", box, other)
        page.screenshot(path=artifacts_dir() / f"notifications-unread-{scheme}.png")
        page.close()


def sign_in(page: Page, hub: LiveHub, username: str) -> None:
    page.goto(f"{hub.url}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("form.stack button[type=submit]")
    page.wait_for_url(f"{hub.url}/")


def test_notifications_stay_with_the_user_who_got_them(live_hub: LiveHub, fleet: Fleet, browsing: Browsing) -> None:
    # Regression: notifications were kept per browser, so they showed on /login and to the next user who signed in.
    create_user(live_hub.db_path, "bea", "viewer", PASSWORD)
    agent, _ = fleet.register("nvr-shared-desk", cameras=1)
    context = browsing.context()  # the hub's admin
    page = browsing.open(f"{live_hub.url}/", context)
    fleet.send(agent, {"type": "alert", "severity": "warning", "message": "Door forced open"})
    expect(page.locator("#unread")).to_have_text("1")
    assert "Door forced open" in page.evaluate("JSON.stringify(localStorage)")

    page.click("form.account button[type=submit]")
    page.wait_for_url(f"{live_hub.url}/login?ended=signed-out")
    expect(page.locator("#bell")).to_be_hidden()
    expect(page.locator("#unread")).to_be_hidden()
    assert "Door forced open" not in page.evaluate("JSON.stringify(localStorage)")

    sign_in(page, live_hub, "bea")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    expect(page.locator("#unread")).to_be_hidden()
    page.click("#bell")
    expect(page.locator("dialog#notif-center")).to_be_visible()
    expect(page.locator("#notif-list .notif")).to_have_count(0)
    expect(page.locator("#notif-center .notif-empty")).to_be_visible()
    assert "Door forced open" not in page.evaluate("JSON.stringify(localStorage)")


def fresh_context(browsing: Browsing, hub: LiveHub, username: str | None) -> BrowserContext:
    """A context with no session, or signed in as `username` (whose password is PASSWORD)."""
    context = browsing.browser.new_context(viewport={"width": 1440, "height": 900})
    browsing.contexts.append(context)
    if username is not None:
        name, _, value = hub.login(username, PASSWORD).partition("=")
        context.add_cookies([{"name": name, "value": value, "url": hub.url}])
    return context


def test_pages_without_a_stream_show_no_connection_indicator(live_hub: LiveHub, browsing: Browsing) -> None:
    # Regression: login, admin and error pages showed a grey "Static" pill, which read like a connection state.
    create_user(live_hub.db_path, "vic", "viewer", PASSWORD)
    pages = [
        (fresh_context(browsing, live_hub, None), "/login", 200),
        (browsing.context(), "/admin", 200),
        (fresh_context(browsing, live_hub, "vic"), "/admin", 403),
    ]
    for context, path, status in pages:
        page = context.new_page()
        response = page.goto(f"{live_hub.url}{path}")
        assert response is not None and response.status == status, (path, response and response.status)
        expect(page.locator(".topbar")).to_be_visible()
        expect(page.locator("#connection")).to_have_count(0)
        expect(page.locator(".topbar")).not_to_contain_text("Static")
    live = browsing.open(f"{live_hub.url}/", browsing.context())
    expect(live.locator("#connection")).to_be_visible()
    expect(live.locator("#connection")).to_have_text("Live")


def test_filter_buttons_and_not_found_pages_read_alike(live_hub: LiveHub, browsing: Browsing) -> None:
    context = browsing.context()
    labels = []
    for path in ("/nvrs", "/cameras"):
        page = browsing.open(f"{live_hub.url}{path}", context)
        button = page.locator(".filter-form button[type=submit]")
        expect(button).to_be_visible()
        labels.append(button.inner_text())
    assert labels == ["Apply", "Apply"], labels
    page = context.new_page()
    for path, message in (("/nvrs/99999", "No such NVR"), ("/cameras/99999", "No such camera")):
        response = page.goto(f"{live_hub.url}{path}")
        assert response is not None and response.status == 404
        expect(page.locator("main")).to_contain_text(message)


@contextmanager
def browsing_hub(browser: Browser, start_hub: Callable[..., LiveHub], **env: str) -> Iterator[Browsing]:
    """Browsing against a hub started with NVRMON_* overrides (the `browsing` fixture's hub has the defaults)."""
    session = Browsing(browser, start_hub(**env))
    try:
        yield session
    finally:
        session.close()
    assert not session.errors, f"uncaught errors in the page: {session.errors}"


def test_reconnect_counter_counts_every_attempt(browser: Browser, start_hub: Callable[..., LiveHub]) -> None:
    # Regression: a failed retry was counted twice (its error, then the next attempt), so the indicator skipped
    # numbers on its way to "Offline"; it now shows each attempt once. A short retry delay keeps this quick, and a
    # killed hub says no goodbye (whose longer retry would slow the attempts down).
    with browsing_hub(browser, start_hub, SSE_RETRY_MS="100") as session:
        page = session.open(f"{session.hub.url}/nvrs")
        page.evaluate(
            """() => {
            const shown = () => document.querySelector("#connection .conn-text").textContent;
            window.__shown = [shown()];
            setInterval(() => {
              const text = shown();
              if (window.__shown[window.__shown.length - 1] !== text) window.__shown.push(text);
            }, 10);
          }"""
        )
        session.hub.stop(signal.SIGKILL)
        expect(page.locator("#connection")).to_have_attribute("data-state", "offline", timeout=10_000)
        page.wait_for_timeout(50)
        shown = page.evaluate("window.__shown")
        assert shown == ["Live", "Reconnecting (1)", "Reconnecting (2)", "Reconnecting (3)", "Offline, retrying"], shown


def test_watchdog_follows_the_hubs_sse_heartbeat(browser: Browser, start_hub: Callable[..., LiveHub]) -> None:
    # The watchdog's silence limit was hard-coded for a 15 s heartbeat; it now comes from NVRMON_SSE_HEARTBEAT.
    with browsing_hub(browser, start_hub, SSE_HEARTBEAT="2") as session:
        page = session.open(f"{session.hub.url}/nvrs")
        tag = page.locator('script[src^="/static/transport.js"]')
        expect(tag).to_have_attribute("data-heartbeat-ms", "2000")
        assert page.evaluate("window.nvrmon.timings.silenceMs") == 5000
        # Hide every message from the watchdog (htmx still applies them): to it, the stream has gone silent.
        page.evaluate("window.addEventListener('htmx:sse:before:message', e => e.stopImmediatePropagation(), true)")
        silent = time.monotonic()
        page.wait_for_event("request", lambda request: "/events?" in request.url, timeout=10_000)
        waited = time.monotonic() - silent
        assert 4.0 < waited < 8.0, f"a silent stream was replaced after {waited:.1f} s (limit 5 s)"
        expect(page.locator("#connection")).to_have_attribute("data-state", "reconnecting")
        # An embed loads the transport alone, with the same timings.
        embed = session.browser.new_context().new_page()
        session.contexts.append(embed.context)
        response = embed.goto(f"{session.hub.url}/embed/{make_embed(session.hub.db_path, 'kpis')}")
        assert response is not None and response.ok
        scripts = embed.eval_on_selector_all("script[src]", "tags => tags.map(t => t.getAttribute('src'))")
        assert [
            src.split("?")[0] for src in scripts if "/static/" in src and "htmx" not in src and "hx-" not in src
        ] == ["/static/transport.js"], scripts
        expect(embed.locator('script[src^="/static/transport.js"]')).to_have_attribute("data-heartbeat-ms", "2000")
        assert embed.evaluate("window.nvrmon.timings.silenceMs") == 5000
