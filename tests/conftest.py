from __future__ import annotations

import asyncio
import functools
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from nvrmon.access import accounts
from nvrmon.store.credentials import Conflict, Credentials

T = TypeVar("T")

TOKEN = "test-agent-token"
# Every live hub gets this admin account before it starts; tests log in with it (LiveHub.headers, login()).
ADMIN = "admin"
PASSWORD = "correct horse battery staple"


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even when called inside a running event loop (async tests)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@functools.cache
def password_hash(password: str) -> str:
    """argon2 hashes take ~0.1 s; tests reuse one per password (each still has its own random salt once)."""
    return accounts.hash_password(password)


def create_user(db_path: Path | str, name: str, role: str, password: str) -> None:
    """Add an account straight to a hub's database (as `nvrmon user add` does), unless it exists already."""

    async def add() -> None:
        credentials = await Credentials.open(db_path)
        try:
            await credentials.add_user(name, accounts.check_role(role), password_hash(password), time.time())
        except Conflict:
            pass
        finally:
            await credentials.close()

    run_async(add())


def run_cli(db_path: Path | str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """`nvrmon ARGS --db db_path` in its own process (as an operator would run it next to a live hub); a
    postgresql:// URL (LiveHub.database of a hub on PostgreSQL) goes as --database-url."""
    where = ["--database-url", db_path] if str(db_path).startswith("postgresql://") else ["--db", str(db_path)]
    return subprocess.run(
        [sys.executable, "-m", "nvrmon.cli", *args, *where],
        input=stdin, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def login_form_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match is not None, "no CSRF token in the login form"
    return match.group(1)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # aiosqlite and websockets are asyncio-only


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveHub:
    """A real `nvrmon serve` process on 127.0.0.1 with its own SQLite file."""

    db_path: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    token: str = TOKEN
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    username: str = ADMIN
    password: str = PASSWORD
    # The logged-in admin's session cookie, for httpx requests: `hub.get("/api/…")`, `open_stream(hub, …)`.
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/agent"

    @property
    def database(self) -> Path | str:
        """Where this hub keeps its data: its SQLite file, or start_hub(DATABASE_URL=...)'s PostgreSQL URL."""
        return self.env.get("NVRMON_DATABASE_URL") or self.db_path

    def start(self) -> LiveHub:
        create_user(self.database, self.username, "admin", self.password)
        env = {**os.environ, "NVRMON_AGENT_TOKEN": self.token, **self.env}
        where = ["--db", str(self.db_path)] if isinstance(self.database, Path) else []
        self.log_path = self.db_path.with_suffix(f".{self.port}.log")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "nvrmon.cli", "serve", "--port", str(self.port), *where,
                 "--log-level", "warning"],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"hub exited early:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    if not self.headers:
                        self.headers = {"Cookie": self.login(self.username, self.password)}
                    RUNNING[self.url] = self
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("hub did not become healthy in 20 s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def login(self, username: str, password: str) -> str:
        """Log in through the login form, as a browser would; returns the session cookie as `name=value`."""
        with httpx.Client(base_url=self.url) as client:
            token = login_form_token(client.get("/login").text)
            response = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
            assert response.status_code == 303, (response.status_code, response.text[:300])
            return "; ".join(f"{name}={value}" for name, value in client.cookies.items())

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        """GET as the logged-in admin."""
        return httpx.get(f"{self.url}{path}", headers=self.headers, **kwargs)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""


@pytest.fixture
def start_hub(tmp_path: Path) -> Iterator[Callable[..., LiveHub]]:
    """Start real hubs with NVRMON_* overrides, e.g. start_hub(HEARTBEAT_TIMEOUT="1"); all are stopped afterwards."""
    hubs: list[LiveHub] = []
    databases: list[str] = []  # NVRMON_TEST_BACKEND=postgresql: every hub on a fresh PostgreSQL database

    def start(**env: str) -> LiveHub:
        if os.environ.get("NVRMON_TEST_BACKEND") == "postgresql" and "DATABASE_URL" not in env:
            from tests.pg import create_database

            if not databases:
                databases.append(create_database())
            env = {**env, "DATABASE_URL": databases[0]}
        hub = LiveHub(tmp_path / "nvrmon.db", {f"NVRMON_{k}": v for k, v in env.items()})
        hubs.append(hub)
        return hub.start()

    yield start
    for hub in hubs:
        hub.stop()
    if databases:
        from tests.pg import drop_database

        drop_database(databases[0])


@pytest.fixture
def live_hub(start_hub: Callable[..., LiveHub]) -> LiveHub:
    return start_hub()


RUNNING: dict[str, LiveHub] = {}  # base URL -> the live hub started there (for hub_at)


def hub_at(url: str) -> LiveHub:
    """The running LiveHub that serves `url` (for helpers that only get a page URL)."""
    return next(hub for base, hub in RUNNING.items() if url.startswith(base + "/") or url == base)


def login(page_or_context: Any, hub: LiveHub) -> Any:
    """Log a Playwright page or browser context in as the hub's admin, for browser tests.

    Adds the session cookie LiveHub got from the login form, so pages open logged in. Works with both Playwright
    APIs: `await login(context, live_hub)` (async) or `login(page, live_hub)` (sync). To test the form itself, open
    `/login` and fill in `hub.username` / `hub.password` instead.
    """
    context = getattr(page_or_context, "context", page_or_context)
    name, _, value = hub.headers["Cookie"].partition("=")
    return context.add_cookies([{"name": name, "value": value, "url": hub.url}])


# Browser fixtures (Chromium, agents on a background loop) for every test module that asks for them; the agent's real
# peer (gst-rtsp-server in a subprocess) and `nvrmon agent` run as its own process.
from tests.agent_process import start_agent  # noqa: E402, F401
from tests.browsing import browser, browsing, fleet, portal  # noqa: E402, F401
from tests.pg import database_url, postgres_url  # noqa: E402, F401
from tests.rtsp import rtsp_server  # noqa: E402, F401

# Notification peers (a webhook sink, an SMTP server) for the tests of nvrmon/alerts/.
from tests.sinks import smtp, webhook  # noqa: E402, F401

# isort: split
# Several hubs: fresh PostgreSQL databases, hubs on one of them, nginx in front, a private PostgreSQL server.
from tests.cluster import pg_database, private_postgres, start_cluster, start_nginx  # noqa: E402, F401
