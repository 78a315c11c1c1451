"""`nvrmon agent` with an NVR source and ONVIF: the cameras an NVR lists and its health reach a real hub.

The peers are the sources helper's fakes on 127.0.0.1 (tests/fake_nvrs.py: Frigate's documented /api/stats and
/api/config; tests/fake_onvif.py: SOAP from the ONVIF specifications), not real devices; the RTSP camera is real.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tests.agent_process import AgentProcess, cameras_at, wait_for, write_config
from tests.conftest import LiveHub
from tests.fake_http import serve
from tests.fake_nvrs import FakeFrigate
from tests.fake_onvif import FakeOnvifDevice
from tests.rtsp import RtspServer


def test_agent_reports_the_cameras_a_frigate_source_lists_and_its_health(
    live_hub: LiveHub,
    start_agent: Callable[[Path], AgentProcess],
    tmp_path: Path,
) -> None:
    with serve(FakeFrigate().app()) as url:
        source = f'\n[source]\nkind = "frigate"\nurl = "{url}"\n'
        config = write_config(tmp_path / "agent.toml", live_hub, {}, tail=source)
        config.write_text(
            config.read_text().replace("health_interval = 2", "health_interval = 2\nsource_interval = 0.5")
        )
        agent = start_agent(config)
        seen = wait_for(lambda: len(cameras_at(live_hub)) == 3 and cameras_at(live_hub), 20, "Frigate's cameras")
        assert sorted(seen) == ["driveway", "front_door", "garage"]
        assert all(camera["status"] == "online" for camera in seen.values())
        # Frigate says garage is not recording: its health reaches the hub, which derives degraded from it.
        garage = f"/api/cameras/{seen['garage']['id']}"
        health = wait_for(lambda: live_hub.get(garage).json()["health"], 10, "garage health")
        assert health["recording"] == "not_recording"
        nvr = live_hub.get(f"/api/nvrs/{seen['garage']['nvr_id']}").json()
        disks = wait_for(lambda: (live_hub.get(f"/api/nvrs/{nvr['id']}").json()["health"] or {}).get("disks"), 10,
                         "NVR disks")  # fmt: skip
        assert {d["id"] for d in disks} == {"/media/frigate/clips", "/media/frigate/recordings"}
        assert agent.stop() == 0


def test_agent_adds_onvif_device_facts_to_a_probed_camera(
    live_hub: LiveHub,
    rtsp_server: RtspServer,
    start_agent: Callable[[Path], AgentProcess],
    tmp_path: Path,
) -> None:
    device = FakeOnvifDevice(clock_offset_s=42.0, with_recording=False)
    with serve(device.app()) as base:
        device.base_url = base
        onvif = base.replace("http://", f"http://{device.username}:{device.password}@")
        config = write_config(tmp_path / "agent.toml", live_hub, {"lobby": rtsp_server.url("/open")})
        config.write_text(config.read_text().replace('/open"\n', f'/open"\nonvif = "{onvif}"\n'))
        agent = start_agent(config)
        seen = wait_for(lambda: cameras_at(live_hub).get("lobby"), 20, "the camera at the hub")
        path = f"/api/cameras/{seen['id']}"
        health = wait_for(lambda: (live_hub.get(path).json()["health"] or {}).get("model") and
                          live_hub.get(path).json()["health"], 15, "ONVIF facts")  # fmt: skip
        assert health["model"] == device.model and health["serial"] == device.serial
        assert abs(health["clock_skew_s"] - 42.0) < 2
        started = time.monotonic()
        assert agent.stop() == 0 and time.monotonic() - started < 5
    assert device.password not in agent.log()


def test_agent_follows_the_source_camera_list_and_its_outage(
    live_hub: LiveHub, start_agent: Callable[[Path], AgentProcess], tmp_path: Path
) -> None:
    frigate = FakeFrigate()
    with serve(frigate.app()) as url:
        source = f'\n[source]\nkind = "frigate"\nurl = "{url}"\n'
        config = write_config(tmp_path / "agent.toml", live_hub, {}, tail=source)
        config.write_text(
            config.read_text().replace("health_interval = 2", "health_interval = 2\nsource_interval = 0.5")
        )
        start_agent(config)
        wait_for(lambda: len(cameras_at(live_hub)) == 3, 20, "Frigate's three cameras")
        # A camera added on the NVR appears at the hub; one no longer listed there shows "missing" (the `cameras`
        # list replaces; a camera that vanished from its recorder is what a wiped recorder looks like).
        frigate.stats["cameras"]["porch"] = frigate.stats["cameras"]["front_door"]
        frigate.config["cameras"]["porch"] = frigate.config["cameras"]["front_door"]
        del frigate.stats["cameras"]["garage"], frigate.config["cameras"]["garage"]
        listed = wait_for(lambda: sorted(cameras_at(live_hub)) == ["driveway", "front_door", "garage", "porch"]
                          and cameras_at(live_hub)["garage"]["display_status"] == "missing"
                          and cameras_at(live_hub), 10, "porch added, garage missing")  # fmt: skip
        assert listed["porch"]["status"] == "online"

    # Frigate is gone: after down_after failed polls its listed cameras are offline, saying why.
    def listed_now() -> dict[str, dict[str, object]]:
        return {k: c for k, c in cameras_at(live_hub).items() if c["display_status"] != "missing"}

    gone = wait_for(lambda: all(c["status"] == "offline" for c in listed_now().values())
                    and listed_now(), 10, "the source's cameras offline")  # fmt: skip
    assert all(c["status_reason"].startswith("nvr: ") for c in gone.values()), gone
