"""The ZoneMinder source against a fake ZoneMinder API on 127.0.0.1 (tests/fake_nvrs.py: shaped from ZoneMinder's
documented API and its HostController/StorageController, served from tests/fixtures/; not a real ZoneMinder)."""

from __future__ import annotations

import time

import pytest

from nvrmon.agent.facts import SourceReport
from nvrmon.agent.sources import SourceConfig
from nvrmon.agent.sources.zoneminder import GIB, poll
from tests.fake_http import closed_port, serve, silent_port
from tests.fake_nvrs import FakeZoneMinder

pytestmark = pytest.mark.anyio
USER, PASSWORD = "monitor", "zm-pass-123"


async def poll_fake(fake: FakeZoneMinder, password: str = PASSWORD, **config: object) -> SourceReport:
    with serve(fake.app()) as url:
        source = SourceConfig(kind="zoneminder", url=url + "/zm", username=USER, password=password, **config)  # type: ignore[arg-type]
        return await poll(source, timeout=3)


def fake_zm(**kwargs: object) -> FakeZoneMinder:
    return FakeZoneMinder(username=USER, password=PASSWORD, **kwargs)  # type: ignore[arg-type]


async def test_zoneminder_healthy_lists_monitors_with_recording_and_storage() -> None:
    report = await poll_fake(fake_zm())
    assert report.ok and report.model == "ZoneMinder"
    cameras = {c.name: c for c in report.cameras}
    assert sorted(cameras) == ["Loading Dock", "Lobby", "Stairwell"]
    assert all(c.online and c.reason == "" for c in cameras.values())
    assert cameras["Lobby"].id == "1"
    recording = {name: c.device.recording for name, c in cameras.items() if c.device}
    # Modect and Record write events; Monitor only watches
    assert recording == {"Lobby": "recording", "Loading Dock": "recording", "Stairwell": "not_recording"}
    stream = cameras["Loading Dock"].stream
    assert stream is not None and (stream.fps, stream.width, stream.height) == (15.0, 2560, 1440)
    assert cameras["Lobby"].rtsp == "rtsp://192.0.2.31:554/Streaming/Channels/101"
    assert [(d.id, d.capacity_bytes, d.used_bytes) for d in report.disks] == [("Default", 3985729650688, 2391437790412)]


async def test_zoneminder_monitor_down_is_offline_with_reason() -> None:
    fake = fake_zm()
    fake.monitors["monitors"][0]["Monitor_Status"].update(Status="NotRunning", CaptureFPS="0.00")
    fake.monitors["monitors"][1]["Monitor_Status"].update(CaptureFPS="0.00")
    cameras = {c.name: c for c in (await poll_fake(fake)).cameras}
    assert (cameras["Lobby"].online, cameras["Lobby"].reason) == (False, "zoneminder: capture not running")
    assert (cameras["Loading Dock"].online, cameras["Loading Dock"].reason) == (False, "zoneminder: no frames")
    assert cameras["Stairwell"].online


async def test_zoneminder_stopped_daemon_takes_every_monitor_down() -> None:
    report = await poll_fake(fake_zm(daemon_running=False))
    assert report.ok
    assert {(c.online, c.reason) for c in report.cameras} == {(False, "zoneminder: daemon not running")}
    assert {c.device.recording for c in report.cameras if c.device} == {"not_recording"}


async def test_zoneminder_recording_state_follows_function_and_1_37_fields() -> None:
    fake = fake_zm()
    fake.monitors["monitors"][0]["Monitor"]["Function"] = "None"
    fake.monitors["monitors"][1]["Monitor"].update(Capturing="Always", Analysing="None", Recording="None")
    cameras = {c.name: c for c in (await poll_fake(fake)).cameras}
    assert cameras["Lobby"].device and cameras["Lobby"].device.recording == "not_recording"
    assert cameras["Lobby"].reason == "zoneminder: monitor disabled"
    assert cameras["Loading Dock"].device and cameras["Loading Dock"].device.recording == "not_recording"
    assert cameras["Loading Dock"].online


async def test_zoneminder_disk_nearly_full_and_older_servers_without_storage_areas() -> None:
    fake = fake_zm()
    fake.storage["storage"][0]["Storage"]["DiskUsedSpace"] = 3975729650688  # type: ignore[index]
    disk = (await poll_fake(fake)).disks[0]
    assert disk.capacity_bytes and disk.used_bytes and disk.used_bytes / disk.capacity_bytes > 0.99
    older = await poll_fake(fake_zm(storage=None))  # /api/storage.json answers 404: getDiskPercent's used GB
    assert [(d.id, d.capacity_bytes, d.used_bytes) for d in older.disks] == [("events", None, int(2227.2 * GIB))]


async def test_zoneminder_wrong_password_is_unauthorized() -> None:
    report = await poll_fake(fake_zm(), password="not-the-password")
    assert (report.ok, report.reason) == (False, "zoneminder 401 unauthorized")


async def test_zoneminder_unreachable_and_hung() -> None:
    refused = await poll(SourceConfig(kind="zoneminder", url=f"http://127.0.0.1:{closed_port()}/zm"), timeout=3)
    assert (refused.ok, refused.reason) == (False, "connection refused")
    with silent_port() as port:
        started = time.monotonic()
        hung = await poll(SourceConfig(kind="zoneminder", url=f"http://127.0.0.1:{port}/zm"), timeout=1)
    assert (hung.ok, hung.reason) == (False, "zoneminder timeout")
    assert time.monotonic() - started < 2


async def test_zoneminder_lists_at_most_max_cameras() -> None:
    assert len((await poll_fake(fake_zm(), max_cameras=1)).cameras) == 1
