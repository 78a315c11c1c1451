"""Browser-test helpers for the browsers besides Chromium: one small interface over Firefox (WebDriver BiDi) and
WebKitGTK (classic WebDriver), and waits written as plain `return …` function bodies.

The pages' Content-Security-Policy forbids eval, so nothing here builds code in the page: every check is a
function body handed to the driver's script command, polled from Python.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Protocol

from tests import firefox, webkit
from tests.browsing import DESKTOP, MARKER
from tests.conftest import LiveHub

BROWSERS = ("firefox", "webkit")
# True when `selector` (optionally with `text` in it) is rendered: laid out with a size, and not visibility:hidden.
VISIBLE = """
const [selector, text] = arguments;
return [...document.querySelectorAll(selector)].some(el => {
  const box = el.getBoundingClientRect(), style = getComputedStyle(el);
  return box.width > 0 && box.height > 0 && style.visibility !== "hidden" && (!text || el.textContent.includes(text));
});
"""
ATTRIBUTE = """
const el = document.querySelector(arguments[0]);
return el ? el.getAttribute(arguments[1]) : null;
"""


class Driver(Protocol):
    """What the tests need of a browser: one tab, its cookies, scripts, screenshots and uncaught errors."""

    name: str

    def set_cookie(self, url: str, name: str, value: str) -> None: ...  # HttpOnly, SameSite=Lax, as the hub sets it
    def goto(self, url: str) -> None: ...
    def run(self, body: str, *args: Any) -> Any: ...
    def screenshot(self, path: Path) -> None: ...
    def errors(self) -> list[str]: ...  # uncaught page errors since the last call
    def close(self) -> None: ...


def missing(name: str) -> str | None:
    return firefox.missing() if name == "firefox" else webkit.missing()


def launch(name: str) -> Driver:
    width, height = DESKTOP["width"], DESKTOP["height"]
    return firefox.Firefox(width, height) if name == "firefox" else webkit.WebKit(width, height)


class Tab:
    """A driver's tab logged in to one hub, with waits that report what the page showed when they gave up."""

    def __init__(self, driver: Driver, hub: LiveHub) -> None:
        self.driver = driver
        self.hub = hub
        for pair in hub.headers["Cookie"].split("; "):
            name, _, value = pair.partition("=")
            driver.set_cookie(hub.url, name, value)

    def open(self, path: str, *, live: bool = True) -> None:
        """Load a page; unless `live` is false, wait for its event stream, then mark the document (see not_reloaded)."""
        self.driver.goto(f"{self.hub.url}{path}")
        if live:
            self.wait_attribute("#connection", "data-state", "live", timeout=5)
            self.driver.run(f"{MARKER} = 'same document'")

    def not_reloaded(self) -> None:
        assert self.driver.run(f"return {MARKER} || null") == "same document", "the page navigated or reloaded"

    def attribute(self, selector: str, name: str) -> str | None:
        value = self.driver.run(ATTRIBUTE, selector, name)
        return None if value is None else str(value)

    def visible(self, selector: str, text: str = "") -> bool:
        return bool(self.driver.run(VISIBLE, selector, text))

    def text(self, selector: str) -> str:
        value = self.driver.run(
            "const el = document.querySelector(arguments[0]); return el && el.textContent", selector
        )
        return " ".join(str(value or "").split())

    def wait(self, what: str, check: Any, timeout: float) -> float:
        """Poll `check()` until it is true; returns the seconds it took, fails with `what` after `timeout`."""
        started = time.monotonic()
        while not check():
            if time.monotonic() - started > timeout:
                raise AssertionError(f"{self.driver.name}: {what} not reached in {timeout} s")
            time.sleep(0.02)
        return time.monotonic() - started

    def wait_attribute(self, selector: str, name: str, value: str, timeout: float = 5) -> float:
        try:
            return self.wait(f"{selector}[{name}={value!r}]", lambda: self.attribute(selector, name) == value, timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; it is {self.attribute(selector, name)!r}") from None

    def wait_visible(self, selector: str, text: str = "", timeout: float = 5) -> float:
        return self.wait(f"{selector} visible with {text!r}", lambda: self.visible(selector, text), timeout)
