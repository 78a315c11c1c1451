"""`nvrmon agent` end to end: real cameras (gst-rtsp-server), a real hub, the agent as its own process.

The statuses, reasons and stream detail are read back from the hub's /api/cameras, as an operator would see them.
"""

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
from tests.fake_http import closed_port, silent_port
from tests.rtsp import PASSWORD, USER, RtspServer

HOSTNAME = "site1-nvr"
INTERVAL, TIMEOUT, SAMPLE, DOWN_AFTER, UP_AFTER = 0.5, 1.0, 0.5, 3, 2


def write_config(path: Path, hub: LiveHub, cameras: dict[str, str], **extra: str) -> Path:
    lines = [f'[hub]\nurl = "{hub.ws_url}"\ntoken = "{hub.token}"\n',
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


def test_agent_reports_real_cameras_with_reasons_and_detail(
    live_hub: LiveHub, rtsp_server: RtspServer, start_agent: Callable[[Path], AgentProcess], tmp_path: Path
) -> None:
    with silent_port() as hung:
        cameras = {
            "good": rtsp_server.url("/open"),
            "secure": rtsp_server.url("/secure", user=USER, password=PASSWORD),
            "badpw": rtsp_server.url("/secure", user=USER, password="wrong-pass", basic=True),
            "nothing": f"rtsp://127.0.0.1:{closed_port()}/stream1",
            "hung": f"rtsp://127.0.0.1:{hung}/stream1",
        }
        agent = start_agent(write_config(tmp_path / "agent.toml", live_hub, cameras))
        seen = wait_for(lambda: len(cameras_at(live_hub)) == 5 and cameras_at(live_hub), 20, "five cameras at the hub")
        assert {cid: (c["status"], c["status_reason"]) for cid, c in seen.items()} == {
            "good": ("online", ""), "secure": ("online", ""), "badpw": ("offline", "rtsp 401 unauthorized"),
            "nothing": ("offline", "connection refused"), "hung": ("offline", "OPTIONS timeout"),
        }  # fmt: skip
        detail = seen["good"]["detail"]
        assert detail["codec"] == "JPEG" and (detail["width"], detail["height"]) == (320, 240)
        assert 8 <= detail["fps"] <= 12 and detail["nominal_fps"] == 10

        # The source stops while the server keeps answering: offline with "no frames" within the window, even with a
        # hung camera holding a probe for its whole timeout every round (it never delays the others).
        rtsp_server.stop_source()
        stopped = time.monotonic()
        gone = wait_for(lambda: cameras_at(live_hub)["good"]["status"] == "offline" and cameras_at(live_hub), 15,
                        "the stopped camera offline")  # fmt: skip
        window = DOWN_AFTER * INTERVAL * 1.1 + DOWN_AFTER * SAMPLE + 2.0  # probes, their samples, the hub's ack
        assert time.monotonic() - stopped < window, time.monotonic() - stopped
        assert gone["good"]["status_reason"].startswith("no frames for ")
        rtsp_server.start_source()
        started = time.monotonic()
        wait_for(lambda: cameras_at(live_hub)["good"]["status"] == "online", 15, "the camera back online")
        assert time.monotonic() - started < UP_AFTER * INTERVAL * 1.1 + UP_AFTER * SAMPLE + 2.0
        assert cameras_at(live_hub)["good"]["status_reason"] == ""

        # Health reached the hub: the measured stream of the good camera.
        good = f"/api/cameras/{gone['good']['id']}"
        health = wait_for(lambda: live_hub.get(good).json()["health"], 10, "health facts for the good camera")
        assert health["stream"]["codec"] == "JPEG"
        assert agent.stop() == 0
    log = agent.log()
    assert "camera badpw: offline (rtsp 401 unauthorized)" in log and "stopped" in log
    assert "wrong-pass" not in log and PASSWORD not in log and live_hub.token not in log
    assert PASSWORD not in live_hub.get("/api/cameras").text


def test_agent_first_verdict_needs_the_same_evidence(
    live_hub: LiveHub, rtsp_server: RtspServer, start_agent: Callable[[Path], AgentProcess], tmp_path: Path
) -> None:
    # One good probe is not enough to call a camera online at start, nor one failure to call it offline.
    cameras = {"good": rtsp_server.url("/open"), "nothing": f"rtsp://127.0.0.1:{closed_port()}/x"}
    config = write_config(tmp_path / "agent.toml", live_hub, cameras)
    agent = start_agent(config)
    wait_for(lambda: len(cameras_at(live_hub)) == 2, 20, "both cameras at the hub")
    took = time.monotonic() - agent.started
    assert took >= (DOWN_AFTER - 1) * INTERVAL * 0.9, took  # the refused camera needed its third failure
    assert "probing 2 cameras before the first hello" in agent.log()
