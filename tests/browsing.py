"""Shared browser-test fixtures: Debian Chromium through Playwright's sync API, and real WebSocket agents.

Playwright's sync API drives the browser; the agents' coroutines run on the event loop of an anyio blocking portal
(a background thread), so a test reads top to bottom: an agent does something, the page shows it. (An async browser
fixture shared by the module would need a module-scoped `anyio_backend`; conftest's is function-scoped.) The
fixtures are registered for every test module through conftest.py.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.agent import Agent
from tests.conftest import LiveHub, login

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
MARKER = "window.__nvrmonMarker"


def artifacts_dir() -> Path:
    path = Path(os.environ.get("NVRMON_ARTIFACTS") or ROOT / "artifacts" / "screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


# -- fixtures ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def portal() -> Iterator[BlockingPortal]:
    """An asyncio loop in a background thread that runs the agents' coroutines for the (sync) tests."""
    with start_blocking_portal("asyncio") as running:
        yield running


class Fleet:
    """Real WebSocket agents speaking to one hub; every call blocks until the coroutine has finished."""

    def __init__(self, portal: BlockingPortal, hub: LiveHub) -> None:
        self.portal = portal
        self.hub = hub
        self.agents: list[Agent] = []

    def register(self, hostname: str, cameras: int = 2, **kw: Any) -> tuple[Agent, int]:
        agent, nvr_id = self.portal.call(
            partial(Agent.register, self.hub.ws_url, self.hub.token, hostname, cameras, **kw)
        )
        self.agents.append(agent)
        return agent, nvr_id

    def hello(self, frame: dict[str, Any]) -> tuple[Agent, int]:
        """Register with a hand-written hello frame (realistic names for screenshots)."""
        agent = self.portal.call(Agent.connect, self.hub.ws_url, self.hub.token)
        self.agents.append(agent)
        welcome = self.portal.call(agent.request, frame)
        assert welcome["type"] == "welcome", welcome
        return agent, int(welcome["nvr_id"])

    def send(self, agent: Agent, frame: dict[str, Any]) -> None:
        self.portal.call(agent.send, frame)

    def close(self, agent: Agent) -> None:
        self.portal.call(agent.close)

    def close_all(self) -> None:
        for agent in self.agents:
            with suppress(Exception):
                self.portal.call(agent.close)


@pytest.fixture
def fleet(live_hub: LiveHub, portal: BlockingPortal) -> Iterator[Fleet]:
    agents = Fleet(portal, live_hub)
    yield agents
    agents.close_all()  # before live_hub stops: this fixture depends on it, so it is torn down first


class Browsing:
    """Browser contexts for one test, closed (before the hub stops) at teardown; uncaught page errors fail it."""

    def __init__(self, browser: Browser, hub: LiveHub) -> None:
        self.browser = browser
        self.hub = hub
        self.contexts: list[BrowserContext] = []
        self.errors: list[str] = []

    def context(self, **kw: Any) -> BrowserContext:
        context = self.browser.new_context(**{"viewport": DESKTOP, **kw})
        context.set_default_timeout(10_000)
        login(context, self.hub)  # as the hub's admin
        self.contexts.append(context)
        return context

    def open(self, url: str, context: BrowserContext | None = None, *, live: bool = True) -> Page:
        """Load a page, wait until its event stream is connected, and set a marker that a reload would erase."""
        page = (context or self.context()).new_page()
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))
        streams: list[str] = []
        page.on("request", lambda request: streams.append(request.url) if "/events?" in request.url else None)
        response = page.goto(url)
        assert response is not None and response.ok, (
            f"GET {url}: {response and response.status}\n--- hub log ---\n{self.hub.log()[-4000:]}"
        )
        if live:
            try:
                expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=5_000)
            except AssertionError as exc:
                state = page.locator("#connection").get_attribute("data-state")
                why = (
                    "the page never requested /events: htmx initialised before hx-sse-4.0.1.js registered "
                    "(see test_page_goes_live_when_sse_extension_loads_last)"
                    if not streams
                    else f"requested {streams}"
                )
                raise AssertionError(f"{url}: #connection stayed {state!r} for 5 s; {why}") from exc
            page.evaluate(f"{MARKER} = 'same document'")
        return page

    def close(self) -> None:
        for context in self.contexts:
            with suppress(Exception):
                context.close()


@pytest.fixture
def browsing(browser: Browser, live_hub: LiveHub) -> Iterator[Browsing]:
    session = Browsing(browser, live_hub)
    yield session
    session.close()
    assert not session.errors, f"uncaught errors in the page: {session.errors}"


def not_reloaded(page: Page) -> None:
    assert page.evaluate(MARKER) == "same document", "the page navigated or reloaded"


def api(hub: LiveHub, path: str) -> Any:
    response = hub.get(f"/api/{path}", timeout=5)
    response.raise_for_status()
    return response.json()


def wait_until(predicate: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def nvr_offline(hub: LiveHub, nvr_id: int) -> Callable[[], bool]:
    return lambda: api(hub, f"nvrs/{nvr_id}")["status"] == "offline"


def row_keys(page: Page, tbody: str) -> list[str]:
    return list(page.eval_on_selector_all(f"{tbody} > tr[id]", "rows => rows.map(r => r.dataset.key)"))
