"""Browser-test driver: WebKitGTK's MiniBrowser through WebKitWebDriver (W3C WebDriver over HTTP), under Xvfb.

Debian's WebKitGTK MiniBrowser has no headless mode, so it gets a private X server (Xvfb, no TCP listener). The
driver speaks plain W3C WebDriver with httpx, which the tests already use: the half-dozen commands the tests need
are one request each, and Selenium would add a dependency (and its driver manager) for nothing more.
"""

from __future__ import annotations

import base64
import glob
import os
import shutil
import subprocess
import tempfile
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import free_port

DRIVER = "WebKitWebDriver"
# libwebkit2gtk-4.1-0 installs it under the multiarch directory (x86_64-linux-gnu, aarch64-linux-gnu, …).
MINIBROWSER = next(
    iter(sorted(glob.glob("/usr/lib/*/webkit2gtk-4.1/MiniBrowser"))), "/usr/lib/webkit2gtk-4.1/MiniBrowser"
)
# Every request that is not for the hub goes to a closed local port: nothing leaves the machine.
NO_NETWORK = ["--proxy=http://127.0.0.1:9", "--ignore-host=127.0.0.1", "--ignore-host=localhost"]
# Uncaught errors and rejections after load, kept in the page (classic WebDriver has no event channel for them).
CATCH_ERRORS = """
if (!window.__driverErrors) {
  window.__driverErrors = [];
  const where = error => (error && error.stack ? " at " + String(error.stack).split("\\n")[0] : "");
  window.addEventListener("error", e => window.__driverErrors.push(String(e.message) + where(e.error)));
  window.addEventListener("unhandledrejection", e =>
    window.__driverErrors.push("unhandled rejection: " + String(e.reason) + where(e.reason)));
}
"""


def missing() -> str | None:
    """Why this machine cannot run WebKit tests, or None."""
    for tool in (DRIVER, "Xvfb"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install webkit2gtk-driver xvfb)"
    return None if Path(MINIBROWSER).exists() else "WebKitGTK's MiniBrowser is missing (libwebkit2gtk-4.1-0)"


class Xvfb:
    """A private X display for the browser; it picks a free display number and tells it through a pipe."""

    def __init__(self) -> None:
        read, write = os.pipe()
        self.process = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write), "-screen", "0", "1600x1000x24", "-nolisten", "tcp", "-noreset"],
            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(write)
        with os.fdopen(read) as pipe:
            number = pipe.readline().strip()
        if not number:
            self.close()
            raise RuntimeError("Xvfb did not report a display")
        self.display = f":{number}"

    def close(self) -> None:
        self.process.terminate()
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


class WebKit:
    """One MiniBrowser window in one WebDriver session."""

    name = "webkit"

    def __init__(self, width: int, height: int) -> None:
        self.xvfb = Xvfb()
        self.home = Path(tempfile.mkdtemp(prefix="nvrmon-webkit-"))
        port = free_port()
        env = {**os.environ, "DISPLAY": self.xvfb.display, "HOME": str(self.home), "XDG_RUNTIME_DIR": str(self.home)}
        self.log = (self.home / "driver.log").open("wb")
        self.process = subprocess.Popen(
            [DRIVER, f"--port={port}", "--host=local"], env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        try:
            self._wait_ready()
            options = {"binary": MINIBROWSER, "args": ["--automation", *NO_NETWORK]}
            session = self._call(
                "POST", "/session", {"capabilities": {"alwaysMatch": {"webkitgtk:browserOptions": options}}}
            )
            self.session = f"/session/{session['sessionId']}"
            self._size(width, height)
        except BaseException:
            self.close()
            raise

    def _size(self, width: int, height: int) -> None:
        """Size the window so that the page (the window less MiniBrowser's toolbar) is width x height."""
        rect = {"x": 0, "y": 0, "width": width, "height": height}
        self._call("POST", f"{self.session}/window/rect", rect)
        inner = self.run("return [innerWidth, innerHeight]")
        rect.update(width=2 * width - inner[0], height=2 * height - inner[1])
        self._call("POST", f"{self.session}/window/rect", rect)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with suppress(httpx.HTTPError):
                if self.http.get("/status").status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"{DRIVER} did not answer in 10 s")

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.request(
            method, path, json=body if body is not None else ({} if method == "POST" else None)
        )
        value = response.json().get("value")
        if response.status_code != 200:
            raise RuntimeError(f"WebDriver {method} {path}: {response.status_code} {value}")
        return value

    def set_cookie(self, url: str, name: str, value: str) -> None:
        # Classic WebDriver sets cookies only for the document's own origin: visit the hub first.
        self._call("POST", f"{self.session}/url", {"url": f"{url}/healthz"})
        self._call(
            "POST",
            f"{self.session}/cookie",
            {"cookie": {"name": name, "value": value, "path": "/", "httpOnly": True, "sameSite": "Lax"}},
        )

    def goto(self, url: str) -> None:
        self._call("POST", f"{self.session}/url", {"url": url})
        self.run(CATCH_ERRORS)

    def run(self, body: str, *args: Any) -> Any:
        return self._call("POST", f"{self.session}/execute/sync", {"script": body, "args": list(args)})

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self._call("GET", f"{self.session}/screenshot")))

    def errors(self) -> list[str]:
        """Uncaught errors in the page since the last call (or since it loaded)."""
        return list(self.run("const seen = window.__driverErrors || []; window.__driverErrors = []; return seen"))

    def close(self) -> None:
        if hasattr(self, "session"):
            with suppress(Exception):
                self._call("DELETE", self.session)
        self.http.close()
        self.process.terminate()
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.log.close()
        self.xvfb.close()
        shutil.rmtree(self.home, ignore_errors=True)
