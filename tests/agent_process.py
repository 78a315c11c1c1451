"""Test helpers for `nvrmon agent`: its TOML written for a live hub, the agent as its own process, hub reads."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveHub

HOSTNAME = "site1-nvr"
INTERVAL, TIMEOUT, SAMPLE, DOWN_AFTER, UP_AFTER = 0.5, 1.0, 0.5, 3, 2


def write_config(path: Path, hub: LiveHub, cameras: dict[str, str], *, hub_keys: str = "", **extra: str) -> Path:
    """The agent's TOML for `hub` with short test intervals; `hub_keys` replaces the token line of [hub]."""
    lines = [f'[hub]\nurl = "{hub.ws_url}"\n{hub_keys or f"token = {hub.token!r}"}\n',
             f'[nvr]\nhostname = "{HOSTNAME}"\nregion = "North"\nsite = "Site 1"\n{extra.get("nvr", "")}',
             f"[agent]\ninterval = {INTERVAL}\ntimeout = {TIMEOUT}\nsample = {SAMPLE}\ndown_after = {DOWN_AFTER}\n"
             f"up_after = {UP_AFTER}\nconcurrency = 6\nhealth_interval = 2\n"]  # fmt: skip
    for camera_id, url in cameras.items():
        lines.append(f'[[camera]]\nid = "{camera_id}"\nname = "Camera {camera_id}"\nrtsp = "{url}"\n')
    path.write_text("\n".join(lines) + extra.get("tail", ""))
    return path


class AgentProcess:
    def __init__(self, config: Path) -> None:
        self.log_path = config.with_suffix(".log")
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "nvrmon.cli", "agent", "--config", str(config)],
                                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        self.started = time.monotonic()

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait(5)


@pytest.fixture
def start_agent() -> Iterator[Callable[[Path], AgentProcess]]:
    agents: list[AgentProcess] = []

    def start(config: Path) -> AgentProcess:
        agents.append(AgentProcess(config))
        return agents[-1]

    yield start
    for agent in agents:
        agent.stop()


def cameras_at(hub: LiveHub) -> dict[str, dict[str, Any]]:
    listed = hub.get("/api/cameras", params={"limit": "100"}).json()["cameras"]
    return {c["ext_id"]: c for c in listed if c["nvr_hostname"] == HOSTNAME}


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")
