"""The Hikvision ISAPI source against a fake ISAPI NVR on 127.0.0.1 behind HTTP Digest (tests/fake_nvrs.py: XML
shaped from Hikvision's ISAPI documentation, served from tests/fixtures/; not a real Hikvision NVR)."""

from __future__ import annotations

import time

import pytest

from nvrmon.agent.facts import SourceReport
from nvrmon.agent.sources import SourceConfig
from nvrmon.agent.sources.isapi import MB, poll
from tests.fake_http import closed_port, serve, silent_port
from tests.fake_nvrs import FIXTURES, FakeHikvision

pytestmark = pytest.mark.anyio


async def poll_fake(fake: FakeHikvision, password: str | None = None, **config: object) -> SourceReport:
    with serve(fake.app()) as url:
        source = SourceConfig(
            kind="isapi",
            url=url,
            username=fake.username,
            password=password or fake.password,
            **config,  # type: ignore[arg-type]
        )
        return await poll(source, timeout=3)


def fixture_with(name: str, old: str, new: str, count: int = 1) -> str:
    text = (FIXTURES / name).read_text()
    assert text.count(old) >= count
    return text.replace(old, new, count)


async def test_isapi_healthy_nvr_lists_channels_disks_identity_and_clock() -> None:
    report = await poll_fake(FakeHikvision())
    assert report.ok, report.reason
    assert (report.model, report.firmware) == ("DS-7608NI-K2", "V4.61.025 build 211201")
    assert [(c.id, c.name, c.online) for c in report.cameras] == [
        ("1", "Lobby", True), ("2", "Car Park", True), ("3", "Gate", True)
    ]  # fmt: skip
    assert [(d.id, d.state) for d in report.disks] == [("hdd1", "ok"), ("hdd2", "ok")]
    assert report.disks[0].capacity_bytes == 3815447 * MB
    assert report.disks[0].used_bytes == (3815447 - 1245184) * MB
    assert report.clock_skew_s is not None and abs(report.clock_skew_s) <= 1.5
    assert report.uptime_s == 1209600


async def test_isapi_clock_skew_is_measured() -> None:
    report = await poll_fake(FakeHikvision(time_offset_s=-300))
    assert report.clock_skew_s is not None and -301.5 <= report.clock_skew_s <= -298.5
    assert {c.device.clock_skew_s for c in report.cameras if c.device} == {report.clock_skew_s}


async def test_isapi_offline_channel_says_why() -> None:
    status = "hikvision_contentmgmt_inputproxy_channels_status.xml"
    body = fixture_with(
        status,
        "<online>true</online>\n<chanDetectResult>connect</chanDetectResult>",
        "<online>false</online>\n<chanDetectResult>netUnreachable</chanDetectResult>",
    )
    fake = FakeHikvision(documents={"/ISAPI/ContentMgmt/InputProxy/channels/status": body})
    cameras = (await poll_fake(fake)).cameras
    assert (cameras[0].online, cameras[0].reason) == (False, "isapi: camera unreachable from the NVR")
    assert cameras[1].online and cameras[2].online


async def test_isapi_failed_and_nearly_full_disks() -> None:
    storage = fixture_with("hikvision_contentmgmt_storage.xml", "<status>ok</status>", "<status>error</status>")
    storage = storage.replace("<freeSpace>1245184</freeSpace>", "<freeSpace>20480</freeSpace>")
    storage = storage.replace("<status>ok</status>", "<status>smartFailed</status>")
    disks = (await poll_fake(FakeHikvision(documents={"/ISAPI/ContentMgmt/Storage": storage}))).disks
    assert [(d.id, d.state) for d in disks] == [("hdd1", "failed"), ("hdd2", "failing")]
    assert disks[0].used_bytes and disks[0].capacity_bytes
    assert disks[0].used_bytes / disks[0].capacity_bytes > 0.99


async def test_isapi_ip_camera_without_input_proxy_is_its_own_channel() -> None:
    fake = FakeHikvision(documents={"/ISAPI/ContentMgmt/InputProxy/channels": None})
    report = await poll_fake(fake)
    assert report.ok and [(c.id, c.name, c.online) for c in report.cameras] == [("1", "Site 1 NVR", True)]
    without_status = await poll_fake(FakeHikvision(documents={"/ISAPI/System/status": None}))
    assert without_status.ok and without_status.uptime_s is None


async def test_isapi_wrong_password_is_unauthorized() -> None:
    report = await poll_fake(FakeHikvision(), password="not-it")
    assert (report.ok, report.reason) == (False, "isapi 401 unauthorized")


async def test_isapi_unreachable_and_hung() -> None:
    refused = await poll(SourceConfig(kind="isapi", url=f"http://127.0.0.1:{closed_port()}"), timeout=3)
    assert (refused.ok, refused.reason) == (False, "connection refused")
    with silent_port() as port:
        started = time.monotonic()
        hung = await poll(SourceConfig(kind="isapi", url=f"http://127.0.0.1:{port}"), timeout=1)
    assert (hung.ok, hung.reason) == (False, "isapi timeout")
    assert time.monotonic() - started < 2


async def test_isapi_lists_at_most_max_cameras() -> None:
    assert [c.id for c in (await poll_fake(FakeHikvision(), max_cameras=2)).cameras] == ["1", "2"]
