"""The ONVIF NVR source driving the real onvif-zeep-async client against a fake ONVIF NVR on 127.0.0.1
(tests/fake_onvif.py: SOAP shaped from the ONVIF Core, Media, Recording Control and Recording Search
specifications; not a real NVR)."""

from __future__ import annotations

import time

import pytest

from nvrmon.agent.facts import SourceReport
from nvrmon.agent.sources import SourceConfig, make_source
from nvrmon.agent.sources.onvif_nvr import poll
from tests.fake_http import closed_port, serve, silent_port
from tests.fake_onvif import FakeChannel, FakeOnvifDevice, FakeRecording

pytestmark = pytest.mark.anyio
DAY = 86400.0


def nvr(now: float, **kwargs: object) -> FakeOnvifDevice:
    return FakeOnvifDevice(
        model="DS-7608NI-K2", firmware="V4.61.025",
        channels=[FakeChannel("VideoSource_1", "Lobby"), FakeChannel("VideoSource_2", "Car Park", fps=15),
                  FakeChannel("VideoSource_3", "Gate", encoding="H265", width=2560, height=1440)],
        recordings=[
            FakeRecording("REC1", "VideoSource_1", earliest=now - 30 * DAY, latest=now),
            FakeRecording("REC2", "VideoSource_2", earliest=now - 20 * DAY, latest=now - 7200, status="Stopped",
                          job_state="Idle", job_mode="Idle"),
            FakeRecording("REC3", "VideoSource_3", earliest=now - 10 * DAY, latest=now - 60, job_state="Error"),
        ],
        **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


async def poll_fake(device: FakeOnvifDevice, password: str | None = None, **config: object) -> SourceReport:
    with serve(device.app()) as url:
        device.base_url = url
        source = SourceConfig(
            kind="onvif",
            url=url,
            username=device.username,
            password=password or device.password,
            **config,  # type: ignore[arg-type]
        )
        return await poll(source, timeout=3)


async def test_onvif_nvr_lists_channels_with_recording_state_and_streams() -> None:
    now = time.time()
    report = await poll_fake(nvr(now, clock_offset_s=40))
    assert report.ok, report.reason
    assert (report.model, report.firmware) == ("DS-7608NI-K2", "V4.61.025")
    assert report.clock_skew_s is not None and 38.5 <= report.clock_skew_s <= 41.5
    assert report.oldest_recording is not None and abs(report.oldest_recording - (now - 30 * DAY)) < 2
    lobby, car_park, gate = report.cameras
    assert [(c.id, c.name) for c in report.cameras] == [
        ("VideoSource_1", "Lobby"), ("VideoSource_2", "Car Park"), ("VideoSource_3", "Gate")
    ]  # fmt: skip
    assert lobby.online and lobby.device and lobby.device.recording == "recording"
    assert car_park.online and car_park.device and car_park.device.recording == "not_recording"
    assert car_park.device.recording_since is not None and abs(car_park.device.recording_since - (now - 7200)) < 2
    assert (gate.online, gate.reason) == (False, "onvif: recording job in error (camera unreachable from the NVR)")
    assert gate.stream and (gate.stream.codec, gate.stream.width, gate.stream.height) == ("H265", 2560, 1440)
    assert car_park.stream and car_park.stream.nominal_fps == 15
    assert lobby.rtsp == "rtsp://127.0.0.1:554/Streaming/Channels/VideoSource_1"
    assert lobby.device.oldest_recording is not None and abs(lobby.device.oldest_recording - (now - 30 * DAY)) < 2


async def test_onvif_nvr_without_recording_service_reports_unknown_recording() -> None:
    report = await poll_fake(nvr(time.time(), with_recording=False))
    assert report.ok and {c.device.recording for c in report.cameras if c.device} == {"unknown"}
    assert all(c.online for c in report.cameras)


async def test_onvif_nvr_wrong_password_is_unauthorized_with_the_clock() -> None:
    report = await poll_fake(nvr(time.time(), clock_offset_s=-90), password="nope")
    assert (report.ok, report.reason) == (False, "onvif 401 unauthorized")
    assert report.clock_skew_s is not None and -91.5 <= report.clock_skew_s <= -88.5


async def test_onvif_nvr_unreachable_and_hung() -> None:
    refused = await poll(SourceConfig(kind="onvif", url=f"http://127.0.0.1:{closed_port()}"), timeout=3)
    assert (refused.ok, refused.reason) == (False, "connection refused")
    with silent_port() as port:
        started = time.monotonic()
        hung = await poll(SourceConfig(kind="onvif", url=f"http://127.0.0.1:{port}"), timeout=1)
    assert (hung.ok, hung.reason) == (False, "onvif timeout")
    assert time.monotonic() - started < 2


async def test_onvif_nvr_lists_at_most_max_cameras_and_is_the_onvif_kind() -> None:
    report = await poll_fake(nvr(time.time()), max_cameras=2)
    assert [c.id for c in report.cameras] == ["VideoSource_1", "VideoSource_2"]
    assert make_source("onvif") is poll


async def test_onvif_nvr_without_get_services_finds_media_through_get_capabilities() -> None:
    device = nvr(time.time(), fault_on={"GetServices"})
    report = await poll_fake(device)
    assert report.ok, report.reason
    assert [c.name for c in report.cameras] == ["Lobby", "Car Park", "Gate"]
    assert "GetCapabilities" in device.operations
