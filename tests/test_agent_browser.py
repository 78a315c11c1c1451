"""In Chromium: `nvrmon agent` probes a real RTSP camera (gst-rtsp-server); when its frames stop, the camera's tile
turns offline live with the reason in words, and back online when they flow again, without a reload."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.agent_process import AgentProcess, cameras_at, wait_for, write_config
from tests.browsing import Browsing, artifacts_dir, not_reloaded
from tests.conftest import LiveHub
from tests.rtsp import RtspServer

pytestmark = pytest.mark.browser


def test_camera_tile_shows_offline_with_the_probe_reason_and_recovers(
    live_hub: LiveHub,
    rtsp_server: RtspServer,
    start_agent: Callable[[Path], AgentProcess],
    browsing: Browsing,
    tmp_path: Path,
) -> None:
    start_agent(write_config(tmp_path / "agent.toml", live_hub, {"lobby": rtsp_server.url("/open")}))
    lobby = wait_for(lambda: cameras_at(live_hub).get("lobby"), 20, "the camera at the hub")
    page = browsing.open(f"{live_hub.url}/cameras?layout=grid")
    tile = page.locator(f"article#camera-{lobby['id']}")
    expect(tile).to_have_attribute("data-status", "online")
    expect(tile.locator("[data-reason]")).to_have_count(0)

    rtsp_server.stop_source()
    expect(tile).to_have_attribute("data-status", "offline", timeout=15_000)
    reason = tile.locator("[data-reason]")
    expect(reason).to_be_visible()
    expect(reason).to_have_text(re.compile(r"^Offline: no frames for \d+ s$"))
    # The toast says it too, with the NVR's name.
    expect(page.locator("#toasts").get_by_text(re.compile(r"^site1-nvr: no frames for \d+ s$"))).to_be_visible()
    page.screenshot(path=str(artifacts_dir() / "agent-camera-offline-no-frames.png"))

    rtsp_server.start_source()
    expect(tile).to_have_attribute("data-status", "online", timeout=15_000)
    expect(tile.locator("[data-reason]")).to_have_count(0)
    not_reloaded(page)
