"""The Frigate source against a fake Frigate API on 127.0.0.1 (tests/fake_nvrs.py: shaped from Frigate's
documented /api/stats and /api/config, served from tests/fixtures/; not a real Frigate)."""

from __future__ import annotations

import time

import pytest

from nvrmon.agent.facts import SourceReport
from nvrmon.agent.sources import SourceConfig, make_source
from nvrmon.agent.sources.frigate import MIB, poll
from tests.fake_http import closed_port, serve, silent_port
from tests.fake_nvrs import FakeFrigate

pytestmark = pytest.mark.anyio


async def poll_fake(fake: FakeFrigate, **config: object) -> SourceReport:
    with serve(fake.app()) as url:
        return await poll(SourceConfig(kind="frigate", url=url, **config), timeout=3)  # type: ignore[arg-type]


async def test_frigate_healthy_lists_cameras_fps_recording_storage() -> None:
    report = await poll_fake(FakeFrigate())
    assert report.ok and report.reason == ""
    cameras = {c.id: c for c in report.cameras}
    assert sorted(cameras) == ["driveway", "front_door", "garage"]
    assert all(c.online and c.reason == "" for c in cameras.values())
    assert cameras["driveway"].stream is not None and cameras["driveway"].stream.fps == 10.1
    recording = {name: c.device.recording for name, c in cameras.items() if c.device}
    assert recording == {"front_door": "recording", "driveway": "recording", "garage": "not_recording"}
    assert report.uptime_s == 86412 and report.temperature_c == 46.3
    assert (report.model, report.firmware) == ("Frigate", "0.14.1-f4f3cfa")
    # tmpfs scratch space (/dev/shm, /tmp/cache) is not recording storage
    assert [d.id for d in report.disks] == ["/media/frigate/clips", "/media/frigate/recordings"]
    assert report.disks[1].capacity_bytes == int(3815447.8 * MIB)
    assert report.disks[1].used_bytes == int(2335447.8 * MIB)


async def test_frigate_camera_without_frames_is_offline_with_reason() -> None:
    fake = FakeFrigate()
    fake.stats["cameras"]["driveway"].update(camera_fps=0.0, process_fps=0.0, detection_fps=0.0)
    report = await poll_fake(fake)
    cameras = {c.id: c for c in report.cameras}
    assert not cameras["driveway"].online
    assert cameras["driveway"].reason == "frigate: no frames"
    assert cameras["front_door"].online and cameras["garage"].online


async def test_frigate_disabled_camera_is_offline_and_not_recording() -> None:
    fake = FakeFrigate()
    fake.config["cameras"]["front_door"]["enabled"] = False
    fake.stats["cameras"]["front_door"]["camera_fps"] = 0.0
    camera = next(c for c in (await poll_fake(fake)).cameras if c.id == "front_door")
    assert (camera.online, camera.reason) == (False, "frigate: camera disabled")
    assert camera.device is not None and camera.device.recording == "not_recording"


async def test_frigate_disk_nearly_full_shows_in_capacity_and_used() -> None:
    fake = FakeFrigate()
    fake.stats["service"]["storage"]["/media/frigate/recordings"].update(used=3800000.0, free=15447.8)
    disk = next(d for d in (await poll_fake(fake)).disks if d.id == "/media/frigate/recordings")
    assert disk.capacity_bytes and disk.used_bytes
    assert disk.used_bytes / disk.capacity_bytes > 0.99


async def test_frigate_login_with_credentials() -> None:
    fake = FakeFrigate(username="viewer", password="s3cret-pass")
    report = await poll_fake(fake, username="viewer", password="s3cret-pass")
    assert report.ok and len(report.cameras) == 3


async def test_frigate_wrong_password_is_unauthorized() -> None:
    fake = FakeFrigate(username="viewer", password="s3cret-pass")
    report = await poll_fake(fake, username="viewer", password="wrong-pass")
    assert (report.ok, report.reason) == (False, "frigate 401 unauthorized")
    assert "wrong-pass" not in repr(report)


async def test_frigate_without_login_on_the_authenticated_port_is_unauthorized() -> None:
    report = await poll_fake(FakeFrigate(username="viewer", password="s3cret-pass"))
    assert (report.ok, report.reason) == (False, "frigate 401 unauthorized")


async def test_frigate_unreachable_is_connection_refused() -> None:
    report = await poll(SourceConfig(kind="frigate", url=f"http://127.0.0.1:{closed_port()}"), timeout=3)
    assert (report.ok, report.reason) == (False, "connection refused")


async def test_frigate_hung_server_times_out_within_the_limit() -> None:
    with silent_port() as port:
        started = time.monotonic()
        report = await poll(SourceConfig(kind="frigate", url=f"http://127.0.0.1:{port}"), timeout=1)
    assert (report.ok, report.reason) == (False, "frigate timeout")
    assert time.monotonic() - started < 2


async def test_frigate_answers_are_bounded_in_size_and_cameras() -> None:
    fake = FakeFrigate()
    assert len((await poll_fake(fake, max_cameras=2)).cameras) == 2
    report = await poll_fake(fake, max_response_bytes=500)
    assert (report.ok, report.reason) == (False, "frigate: response over 500 bytes")


async def test_frigate_is_picked_by_make_source() -> None:
    assert make_source("frigate") is poll
    with pytest.raises(ValueError, match="known: frigate, isapi, onvif, zoneminder"):
        make_source("blueiris")
