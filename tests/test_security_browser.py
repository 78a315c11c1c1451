"""Real Chromium: hostile device names never execute anywhere they show, and embeds work only for their portals."""

from __future__ import annotations

import functools
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, ConsoleMessage, Dialog, Page, async_playwright

from tests.agent import Agent
from tests.conftest import LiveHub, free_port, login
from tests.test_embed import make_embed

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
STATIC = Path(__file__).parent.parent / "static"
# Every payload sets window.__pwned if it ever runs; CSP would also block inline handlers and log a console error.
DEVICE = "<img src=x onerror=alert(1)>"
HOSTNAME = "<img/src=x/onerror=window.__pwned=1>"  # hostnames may not contain spaces
REGION = "<svg onload=window.__pwned=1>"
CAMERAS = ['Cam "A" \' onmouseover="window.__pwned=1', "<script>window.__pwned=1</script>", "Lobby & Gate"]
ALERT = "<script>window.__pwned=1</script> disk </textarea><b>bold</b>"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        yield browser
        await browser.close()


class Watch:
    """Collects what would betray executed script: dialogs, console errors (CSP violations), page errors."""

    def __init__(self, page: Page) -> None:
        self.problems: list[str] = []
        page.on("dialog", self._dialog)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))

    async def _dialog(self, dialog: Dialog) -> None:
        self.problems.append(f"dialog: {dialog.message}")
        await dialog.dismiss()

    def _console(self, message: ConsoleMessage) -> None:
        # The hostile <img src=x> in a text node never loads; a 404 for it would mean it became markup.
        if message.type == "error":
            self.problems.append(f"console: {message.text}")


async def pwned(page: Page) -> Any:
    return await page.evaluate("() => window.__pwned")


async def injected(page: Page) -> int:
    """Elements that only a payload that became markup would create (the page's own charts are SVG too)."""
    return int(
        await page.evaluate(
            """() => document.querySelectorAll('img[src="x"], [onerror], [onload], [onmouseover], i, b').length
                   + [...document.scripts].filter(s => s.text.includes("__pwned")).length"""
        )
    )


async def hostile_nvr(hub: LiveHub) -> tuple[Agent, int]:
    agent = await Agent.connect(hub.ws_url, hub.token)
    welcome = await agent.request(
        {"type": "hello", "protocol": 1,
         "nvr": {"hostname": HOSTNAME, "device_name": DEVICE, "region": REGION, "site": "\"'><i>site</i>",
                 "model": "</td></tr><tr><td>", "firmware": "{{ 7*7 }}"},
         "cameras": [{"id": f"c{i}", "name": name, "status": "online"} for i, name in enumerate(CAMERAS)]}
    )  # fmt: skip
    return agent, int(welcome["nvr_id"])


async def test_hostile_names_show_as_typed_and_never_run_on_any_page(browser: Browser, live_hub: LiveHub) -> None:
    agent, nvr_id = await hostile_nvr(live_hub)
    await agent.send({"type": "alert", "severity": "warning", "message": ALERT})
    cameras = live_hub.get(f"/api/nvrs/{nvr_id}").json()["cameras"]
    camera_id = next(c["id"] for c in cameras if c["name"] == CAMERAS[0])
    context = await browser.new_context()
    await login(context, live_hub)
    page = await context.new_page()
    watch = Watch(page)
    expectations = {
        "/": [ALERT, HOSTNAME],
        "/nvrs": [HOSTNAME, DEVICE, REGION],
        "/cameras": CAMERAS + [HOSTNAME],
        f"/nvrs/{nvr_id}": [HOSTNAME, DEVICE, "{{ 7*7 }}", *CAMERAS],
        f"/cameras/{camera_id}": [CAMERAS[0], HOSTNAME],
    }
    for path, texts in expectations.items():
        await page.goto(live_hub.url + path)
        await page.wait_for_selector("#connection[data-state=live]", timeout=10_000)
        body = await page.inner_text("main")
        for text in texts:
            assert text in body, (path, text)
        assert await injected(page) == 0, path
        assert await pwned(page) is None, path
    # Live pushes (rows, event list) and a toast carry the hostile text too.
    await page.goto(live_hub.url + "/")
    await page.wait_for_selector("#connection[data-state=live]", timeout=10_000)
    await agent.send({"type": "alert", "severity": "critical", "message": ALERT + " again"})
    toast = page.locator("#toasts .toast-body", has_text="again")
    await toast.wait_for(timeout=10_000)
    assert await toast.inner_text() == ALERT + " again"
    assert await page.locator("#event-list").get_by_text(ALERT + " again").count() == 1
    assert await injected(page) == 0
    assert await pwned(page) is None and watch.problems == []
    await context.close()
    await agent.close()


async def test_hostile_names_in_embeds_never_run(browser: Browser, live_hub: LiveHub) -> None:
    agent, nvr_id = await hostile_nvr(live_hub)
    page = await browser.new_page()
    watch = Watch(page)
    for view, kwargs in (("nvrs", {}), ("nvr", {"nvr_id": nvr_id})):
        token = make_embed(live_hub.db_path, view, **kwargs)
        await page.goto(f"{live_hub.url}/embed/{token}")
        await page.wait_for_selector("text=" + DEVICE, timeout=10_000)
        assert HOSTNAME in await page.inner_text("main")
        assert await injected(page) == 0
    await agent.send({"type": "cameras", "cameras": [{"id": "new", "name": CAMERAS[1] + " new", "status": "online"}]})
    await page.locator(f"#nvr-{nvr_id}-cameras").get_by_text(CAMERAS[1] + " new").wait_for(timeout=10_000)
    assert await pwned(page) is None and watch.problems == []
    await page.close()
    await agent.close()


@pytest.fixture
def portal(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A second origin (another port on 127.0.0.1) serving static pages, like a customer's portal."""
    root = tmp_path / "portal"
    root.mkdir()
    for name in ("htmx-4.0.1.min.js", "hx-sse-4.0.1.js", "hx-upsert-4.0.1.js"):
        (root / name).write_bytes((STATIC / name).read_bytes())
    handler = functools.partial(QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", root
    server.shutdown()
    server.server_close()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


async def test_portal_iframe_embed_renders_and_updates_live(
    browser: Browser, live_hub: LiveHub, portal: tuple[str, Path]
) -> None:
    origin, root = portal
    token = make_embed(live_hub.db_path, "kpis", origins=(origin,))
    (root / "iframe.html").write_text(
        f"<!doctype html><title>Portal</title><h1>Our portal</h1>"
        f'<iframe id="fleet" src="{live_hub.url}/embed/{token}" width="1000" height="200"></iframe>'
    )
    page = await browser.new_page()
    await page.goto(f"{origin}/iframe.html")
    frame = page.frame_locator("#fleet")
    total = frame.locator('[data-kpi="nvrs_total"]')
    await total.wait_for(timeout=10_000)
    assert await total.inner_text() == "0"
    await frame.locator("#live").wait_for(state="attached")
    await page.wait_for_timeout(500)  # the stream connects
    agent, _ = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-portal", cameras=2)
    await frame.locator('[data-kpi="nvrs_total"]', has_text="1").wait_for(timeout=10_000)
    await page.close()
    await agent.close()


async def test_portal_not_on_the_allowlist_cannot_frame_the_embed(
    browser: Browser, live_hub: LiveHub, portal: tuple[str, Path]
) -> None:
    origin, root = portal
    token = make_embed(live_hub.db_path, "kpis", origins=("https://elsewhere.example",))
    (root / "stolen.html").write_text(f'<!doctype html><iframe id="fleet" src="{live_hub.url}/embed/{token}"></iframe>')
    page = await browser.new_page()
    refusals: list[str] = []
    page.on("console", lambda m: refusals.append(m.text) if "frame-ancestors" in m.text else None)
    await page.goto(f"{origin}/stolen.html")
    await page.wait_for_timeout(1500)
    frame = page.frame_locator("#fleet")
    assert await frame.locator('[data-kpi="nvrs_total"]').count() == 0
    assert refusals and "frame-ancestors" in refusals[0]
    # A hub page is never frameable, logged in or not.
    (root / "page.html").write_text(f'<!doctype html><iframe id="hub" src="{live_hub.url}/login"></iframe>')
    await page.goto(f"{origin}/page.html")
    await page.wait_for_timeout(1000)
    assert await page.frame_locator("#hub").locator("form").count() == 0
    await page.close()


async def test_portal_including_fragments_with_htmx_cors_mode_stays_live(
    browser: Browser, live_hub: LiveHub, portal: tuple[str, Path]
) -> None:
    origin, root = portal
    token = make_embed(live_hub.db_path, "kpis", origins=(origin,))
    # The copy-paste example of docs/embedding.md ("CORS mode").
    (root / "cors.html").write_text(
        '<!doctype html><link rel="icon" href="data:,"><meta name="htmx-config" content=\'{"mode": "cors"}\'>'
        '<script src="htmx-4.0.1.min.js"></script><script src="hx-sse-4.0.1.js"></script>'
        '<script src="hx-upsert-4.0.1.js"></script>'
        f'<div id="fleet" hx-get="{live_hub.url}/embed/{token}/fragment" hx-trigger="load"></div>'
    )
    page = await browser.new_page()
    watch = Watch(page)
    await page.goto(f"{origin}/cors.html")
    total = page.locator('#fleet [data-kpi="nvrs_total"]')
    await total.wait_for(timeout=10_000)
    assert await total.inner_text() == "0"
    await page.wait_for_timeout(500)
    agent, _ = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-cors", cameras=1)
    await page.locator('#fleet [data-kpi="nvrs_total"]', has_text="1").wait_for(timeout=10_000)
    assert watch.problems == []
    await page.close()
    await agent.close()


async def test_login_form_then_htmx_requests_carry_the_csrf_token(browser: Browser, live_hub: LiveHub) -> None:
    page = await browser.new_page()
    watch = Watch(page)
    await page.goto(f"{live_hub.url}/nvrs")  # a stranger is sent to the login form, and back afterwards
    await page.fill("#username", live_hub.username)
    await page.fill("#password", live_hub.password)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{live_hub.url}/nvrs")
    await page.wait_for_selector("#connection[data-state=live]", timeout=10_000)
    # A state-changing htmx request succeeds only with the X-CSRF-Token header that transport.js adds.
    status = await page.evaluate(
        """() => new Promise(resolve => {
            document.addEventListener("htmx:after:request", e => resolve(e.detail.ctx.response.status), {once: true});
            htmx.ajax("POST", "/logout", {target: "#main", swap: "none"});
        })"""
    )
    assert status == 200  # the 303 to /login, followed by fetch
    assert (await page.request.get(f"{live_hub.url}/api/summary")).status == 401  # the session is over
    assert watch.problems == []
    await page.close()
