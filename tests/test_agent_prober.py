"""`nvrmon agent` end to end: real cameras (gst-rtsp-server), a real hub, the agent as its own process.

The statuses, reasons and stream detail are read back from the hub's /api/cameras, as an operator would see them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.agent_process import DOWN_AFTER, INTERVAL, SAMPLE, UP_AFTER, AgentProcess, cameras_at, wait_for, write_config
from tests.conftest import LiveHub, run_cli
from tests.fake_http import closed_port, silent_port
from tests.rtsp import PASSWORD, USER, RtspServer


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

        def stream() -> dict[str, Any]:
            facts = (live_hub.get(good).json()["health"] or {}).get("stream") or {}
            return facts if facts.get("codec") else {}

        health = wait_for(stream, 12, "the measured stream in the health facts")
        assert health["codec"] == "JPEG" and (health["width"], health["height"]) == (320, 240)
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


def test_agent_enrolls_once_and_reconnects_with_its_own_token(
    start_hub: Callable[..., LiveHub],
    rtsp_server: RtspServer,
    start_agent: Callable[[Path], AgentProcess],
    tmp_path: Path,
) -> None:
    hub = start_hub(FLEET_TOKEN="0")  # only per-NVR and enrollment tokens are accepted
    enroll = run_cli(hub.db_path, "token", "enroll", "--uses", "1").stdout.strip()
    keys = f'token = "{enroll}"\ntoken_file = "nvr.token"'
    config = write_config(tmp_path / "agent.toml", hub, {"lobby": rtsp_server.url("/open")}, hub_keys=keys)
    first = start_agent(config)
    lobby = wait_for(lambda: cameras_at(hub).get("lobby"), 20, "the enrolled NVR's camera")
    stored = tmp_path / "nvr.token"
    own = wait_for(lambda: stored.exists() and stored.read_text().strip(), 5, "the NVR's own token stored")
    assert own.startswith("nvrt_") and stored.stat().st_mode & 0o777 == 0o600
    assert first.stop() == 0
    nvr = f"/api/nvrs/{lobby['nvr_id']}"
    wait_for(lambda: hub.get(nvr).json()["status"] == "offline", 10, "the NVR offline once its agent stopped")
    second = start_agent(config)  # the enrollment token is used up: only the stored token can get it in
    wait_for(lambda: hub.get(nvr).json()["status"] == "online", 20, "the NVR back with its own token")
    assert second.process.poll() is None
    for log in (first.log(), second.log()):
        assert enroll[9:] not in log and own[9:] not in log  # the prefix (nvre_…) may show; the secret part never


def test_agent_started_before_the_hub_reports_once_the_hub_is_up(
    rtsp_server: RtspServer, start_agent: Callable[[Path], AgentProcess], tmp_path: Path
) -> None:
    hub = LiveHub(tmp_path / "nvrmon.db", {})
    agent = start_agent(write_config(tmp_path / "agent.toml", hub, {"lobby": rtsp_server.url("/open")}))
    wait_for(lambda: "connecting to the hub" in agent.log(), 10, "the agent trying the hub")
    time.sleep(0.5)  # its first attempt is refused (nothing listens): it backs off and retries
    try:
        hub.start()
        lobby = wait_for(lambda: cameras_at(hub).get("lobby"), 20, "the camera once the hub is up")
        assert lobby["status"] == "online"
    finally:
        hub.stop()
    assert agent.process.poll() is None
    log = agent.log()
    assert "hub not reachable or connection lost" in log and "retrying with backoff" in log
    assert log.index("retrying with backoff") < log.index("connected to the hub")


def test_agent_with_a_refused_token_exits_1_saying_so(
    live_hub: LiveHub, start_agent: Callable[[Path], AgentProcess], tmp_path: Path
) -> None:
    cameras = {"nothing": f"rtsp://127.0.0.1:{closed_port()}/x"}
    agent = start_agent(write_config(tmp_path / "agent.toml", live_hub, cameras, hub_keys='token = "not-the-token"'))
    assert agent.process.wait(20) == 1
    assert "the hub refused the agent token (HTTP 403)" in agent.log() and "not-the-token" not in agent.log()
