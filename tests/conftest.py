from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

TOKEN = "test-agent-token"


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

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/agent"

    def start(self) -> LiveHub:
        env = {**os.environ, "NVRMON_AGENT_TOKEN": self.token, **self.env}
        self.log_path = self.db_path.with_suffix(f".{self.port}.log")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "nvrmon.cli", "serve", "--port", str(self.port), "--db", str(self.db_path),
                 "--log-level", "warning"],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"hub exited early:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
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

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""


@pytest.fixture
def start_hub(tmp_path: Path) -> Iterator[Callable[..., LiveHub]]:
    """Start real hubs with NVRMON_* overrides, e.g. start_hub(HEARTBEAT_TIMEOUT="1"); all are stopped afterwards."""
    hubs: list[LiveHub] = []

    def start(**env: str) -> LiveHub:
        hub = LiveHub(tmp_path / "nvrmon.db", {f"NVRMON_{k}": v for k, v in env.items()})
        hubs.append(hub)
        return hub.start()

    yield start
    for hub in hubs:
        hub.stop()


@pytest.fixture
def live_hub(start_hub: Callable[..., LiveHub]) -> LiveHub:
    return start_hub()
