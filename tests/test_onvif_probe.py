"""The ONVIF probe driving the real onvif-zeep-async client against a fake ONVIF device on 127.0.0.1
(tests/fake_onvif.py: SOAP shaped from the ONVIF specifications, WS-UsernameToken digest checked; not a real
camera: no ONVIF simulator exists)."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from nvrmon.agent.facts import DeviceFacts
from nvrmon.agent.onvif_probe import ProbeFailure, probe_onvif
from tests.fake_http import closed_port, serve, silent_port
from tests.fake_onvif import FakeOnvifDevice, FakeRecording

pytestmark = pytest.mark.anyio
DAY = 86400.0


@contextlib.contextmanager
def running(device: FakeOnvifDevice, password: str | None = None) -> Iterator[str]:
    """The device served on 127.0.0.1; yields the probe URL with the given (default: right) password."""
    with serve(device.app()) as base:
        device.base_url = base
        yield base.replace("http://", f"http://{device.username}:{password or device.password}@")


def camera_with_edge_recording(now: float, **recording: Any) -> FakeOnvifDevice:
    values = {"token": "REC1", "source_id": "VideoSource_1", "earliest": now - 9 * DAY, "latest": now, **recording}
    return FakeOnvifDevice(recordings=[FakeRecording(**values)])


async def test_onvif_probe_reads_device_information() -> None:
    device = FakeOnvifDevice(with_recording=False)
    with running(device) as url:
        facts = await probe_onvif(url, timeout=3)
    assert isinstance(facts, DeviceFacts), facts
    assert (facts.model, facts.firmware, facts.serial) == (device.model, device.firmware, device.serial)
    assert facts.clock_skew_s is not None and abs(facts.clock_skew_s) <= 1.5
    assert facts.recording == "unknown" and facts.oldest_recording is None
    # the password travelled only as a digest
    assert "GetDeviceInformation" in device.operations


async def test_onvif_probe_measures_clock_drift() -> None:
    with running(FakeOnvifDevice(clock_offset_s=90, with_recording=False)) as url:
        facts = await probe_onvif(url, timeout=3)
    assert isinstance(facts, DeviceFacts), facts
    assert facts.clock_skew_s is not None and 88.5 <= facts.clock_skew_s <= 91.5


async def test_onvif_probe_wrong_password_is_unauthorized_and_still_reads_the_clock() -> None:
    with running(FakeOnvifDevice(clock_offset_s=90), password="wrong-password") as url:
        result = await probe_onvif(url, timeout=3)
    assert isinstance(result, ProbeFailure), result
    assert result.reason == "onvif 401 unauthorized"
    assert result.clock_skew_s is not None and 88.5 <= result.clock_skew_s <= 91.5
    assert "wrong-password" not in repr(result)


async def test_onvif_probe_http_401_device_is_unauthorized() -> None:
    with running(FakeOnvifDevice(http_401=True), password="wrong-password") as url:
        result = await probe_onvif(url, timeout=3)
    assert isinstance(result, ProbeFailure) and result.reason == "onvif 401 unauthorized"


async def test_onvif_probe_unreachable_is_connection_refused() -> None:
    result = await probe_onvif(f"http://admin:x@127.0.0.1:{closed_port()}", timeout=3)
    assert result == ProbeFailure("connection refused")


async def test_onvif_probe_silent_device_times_out_within_the_limit() -> None:
    with silent_port() as port:
        started = time.monotonic()
        result = await probe_onvif(f"http://admin:x@127.0.0.1:{port}", timeout=1)
        elapsed = time.monotonic() - started
    assert result == ProbeFailure("onvif timeout")
    assert elapsed < 2


async def test_onvif_probe_reads_recording_state_and_oldest_recording() -> None:
    now = time.time()
    with running(camera_with_edge_recording(now)) as url:
        facts = await probe_onvif(url, timeout=3)
    assert isinstance(facts, DeviceFacts), facts
    assert facts.recording == "recording" and facts.recording_since is None
    assert facts.oldest_recording is not None and abs(facts.oldest_recording - (now - 9 * DAY)) < 2


async def test_onvif_probe_stopped_recording_says_since_when() -> None:
    now = time.time()
    device = camera_with_edge_recording(now, latest=now - 3600, status="Stopped", job_state="Idle", job_mode="Idle")
    with running(device) as url:
        facts = await probe_onvif(url, timeout=3)
    assert isinstance(facts, DeviceFacts), facts
    assert facts.recording == "not_recording"
    assert facts.recording_since is not None and abs(facts.recording_since - (now - 3600)) < 2


async def test_onvif_probe_device_fault_is_reported_in_words() -> None:
    with running(FakeOnvifDevice(fault_on={"GetDeviceInformation"})) as url:
        result = await probe_onvif(url, timeout=3)
    assert result == ProbeFailure("onvif fault: GetDeviceInformation failed", clock_skew_s=result.clock_skew_s)
    assert isinstance(result, ProbeFailure) and len(result.reason) <= 200


async def test_onvif_probe_loads_its_wsdl_locally() -> None:
    """Every connection the probe opens goes to the device: the WSDL and XSD files come from the package."""
    device = camera_with_edge_recording(time.time())
    connects: list[Any] = []

    def audit(event: str, args: tuple[Any, ...]) -> None:
        if event == "socket.connect" and RECORD:
            connects.append(args[1])

    sys.addaudithook(audit)  # audit hooks cannot be removed: RECORD switches this one off after the test
    with running(device) as url:
        RECORD.append(True)
        try:
            facts = await probe_onvif(url, timeout=3)
        finally:
            RECORD.clear()
    assert isinstance(facts, DeviceFacts), facts
    port = int(device.base_url.rsplit(":", 1)[1])
    assert connects and {address[:2] for address in connects} == {("127.0.0.1", port)}


RECORD: list[bool] = []


async def test_onvif_probe_without_the_library_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onvif", None)  # as if the `agent` extra were not installed
    with running(FakeOnvifDevice()) as url:
        result = await probe_onvif(url, timeout=3)
    assert isinstance(result, ProbeFailure) and result.reason == "onvif support not installed"
