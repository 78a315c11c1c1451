"""Browser-test driver: Debian's firefox-esr over WebDriver BiDi, which Firefox serves itself (no geckodriver).

Debian ships no geckodriver and Selenium's Firefox driver needs one, so the tests speak BiDi directly: a JSON command
per WebSocket message (websockets' sync client, already a dependency), answers matched by id, events kept aside.
Uncaught page errors arrive as `log.entryAdded` events, as Playwright's `pageerror` does for Chromium.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import tempfile
import threading
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import IO, Any

from websockets.sync.client import ClientConnection, connect

FIREFOX = "firefox-esr"
# No background traffic: telemetry, updates, studies, remote settings, captive-portal and connectivity probes,
# safe browsing lists, new-tab content. Anything that still tries goes to a closed local port through the proxy
# (Firefox never proxies 127.0.0.1 itself, so the hub is reached directly).
PREFS: dict[str, Any] = {
    "datareporting.healthreport.uploadEnabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.usage.uploadEnabled": False,
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.unified": False,
    "toolkit.telemetry.archive.enabled": False,
    "toolkit.telemetry.server": "",
    "app.update.auto": False,
    "app.update.enabled": False,
    "app.update.disabledForTesting": True,
    "app.normandy.enabled": False,
    "app.shield.optoutstudies.enabled": False,
    "messaging-system.rsexperimentloader.enabled": False,
    "services.settings.server": "http://127.0.0.1:9/v1",
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "captivedetect.canonicalURL": "",
    "network.trr.mode": 5,
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
    "network.http.speculative-parallel-limit": 0,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.blockedURIs.enabled": False,
    "browser.safebrowsing.update.enabled": False,
    "extensions.update.enabled": False,
    "extensions.getAddons.cache.enabled": False,
    "extensions.blocklist.enabled": False,
    "browser.search.update": False,
    "browser.region.network.url": "",
    "geo.provider.network.url": "",
    "media.gmp-manager.url": "",
    "security.OCSP.enabled": 0,
    "security.remote_settings.crlite_filters.enabled": False,
    "browser.newtabpage.enabled": False,
    "browser.startup.page": 0,
    "browser.startup.homepage": "about:blank",
    "browser.shell.checkDefaultBrowser": False,
    "browser.aboutwelcome.enabled": False,
    "network.proxy.type": 1,
    "network.proxy.http": "127.0.0.1",
    "network.proxy.http_port": 9,
    "network.proxy.ssl": "127.0.0.1",
    "network.proxy.ssl_port": 9,
    "network.proxy.no_proxies_on": "",
}
LISTENING = re.compile(r"WebDriver BiDi listening on (ws://\S+)")


def missing() -> str | None:
    """Why this machine cannot run Firefox tests, or None."""
    return None if shutil.which(FIREFOX) else f"{FIREFOX} is not installed (apt-get install firefox-esr)"


def remote_value(value: dict[str, Any]) -> Any:
    """A BiDi RemoteValue as plain Python (what classic WebDriver's execute returns)."""
    kind, inner = value["type"], value.get("value")
    if kind in ("undefined", "null"):
        return None
    if kind in ("array", "set"):
        return [remote_value(item) for item in inner or []]
    if kind == "object":
        return {key if isinstance(key, str) else remote_value(key): remote_value(item) for key, item in inner or []}
    if kind == "number" and isinstance(inner, str):  # NaN, -0, Infinity
        return float(inner)
    return inner


class Firefox:
    """One headless Firefox with one tab, in one BiDi session."""

    name = "firefox"

    def __init__(self, width: int, height: int) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="nvrmon-firefox-"))
        (self.profile / "user.js").write_text(
            "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in PREFS.items())
        )
        self.process = subprocess.Popen(
            [FIREFOX, "--headless", "--no-remote", "--profile", str(self.profile), "--remote-debugging-port=0",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        self.output: list[str] = []
        self.stack = ExitStack()  # Firefox's stderr pipe and the WebSocket, closed last to first
        assert self.process.stderr is not None  # stderr=PIPE
        self.stack.callback(self.process.stderr.close)
        self.drain: threading.Thread | None = None
        try:
            url = f"{self._listening(self.process.stderr)}/session"
            self.ws: ClientConnection = self.stack.enter_context(connect(url, max_size=None))
            self.call("session.new", capabilities={})
            self.call("session.subscribe", events=["log.entryAdded"])
            self.context = self.call("browsingContext.getTree")["contexts"][0]["context"]
            self.call("browsingContext.setViewport", context=self.context, viewport={"width": width, "height": height})
        except BaseException:
            self.close()
            raise

    def _listening(self, stderr: IO[str]) -> str:
        """Firefox prints the BiDi address once it listens; the rest of its output is drained into self.output."""
        found: list[str] = []
        ready = threading.Event()

        def drain() -> None:
            for line in stderr:
                self.output.append(line)
                if not found and (match := LISTENING.search(line)):
                    found.append(match.group(1))
                    ready.set()
            ready.set()

        self.drain = threading.Thread(target=drain, daemon=True)
        self.drain.start()
        if not ready.wait(30) or not found:
            raise RuntimeError(f"{FIREFOX} did not start WebDriver BiDi:\n{''.join(self.output)[-2000:]}")
        return found[0]

    def call(self, method: str, **params: Any) -> Any:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=30))
            if message.get("type") == "event":
                self.events.append(message)
            elif message.get("id") == self.next_id:
                if message.get("type") == "error":
                    raise RuntimeError(f"BiDi {method}: {message.get('error')}: {message.get('message')}")
                return message["result"]

    def set_cookie(self, url: str, name: str, value: str) -> None:
        host = url.split("//", 1)[1].split(":", 1)[0]
        cookie = {"name": name, "value": {"type": "string", "value": value}, "domain": host, "path": "/",
                  "httpOnly": True, "sameSite": "lax"}  # fmt: skip
        self.call("storage.setCookie", cookie=cookie)

    def goto(self, url: str) -> None:
        self.call("browsingContext.navigate", context=self.context, url=url, wait="complete")

    def run(self, body: str, *args: Any) -> Any:
        result = self.call(
            "script.callFunction",
            functionDeclaration=f"function () {{ {body} }}",
            arguments=[{"type": "string", "value": a} if isinstance(a, str) else {"type": "number", "value": a}
                       for a in args],
            target={"context": self.context}, awaitPromise=False, resultOwnership="none",
        )  # fmt: skip
        if result["type"] == "exception":
            raise RuntimeError(f"script failed: {result['exceptionDetails'].get('text')}")
        return remote_value(result["result"])

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self.call("browsingContext.captureScreenshot", context=self.context)["data"]))

    def errors(self) -> list[str]:
        """Uncaught errors in the page since the last call."""
        entries = [e["params"] for e in self.events if e.get("method") == "log.entryAdded"]
        self.events.clear()
        return [
            f"{e.get('source', {}).get('realm', '')}: {e.get('text')}" for e in entries if e["type"] == "javascript"
        ]

    def close(self) -> None:
        if hasattr(self, "ws"):
            with suppress(Exception):
                self.call("browser.close")
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        if self.drain is not None:
            self.drain.join(5)  # Firefox has exited: its stderr is at end of file
        self.stack.close()
        shutil.rmtree(self.profile, ignore_errors=True)
