"""Sources and the ONVIF probe given answers of the wrong shape: a failed or partial report in words, never an
exception (fakes on 127.0.0.1: tests/fake_http.py, tests/fake_onvif.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nvrmon.agent.facts import DeviceFacts
from nvrmon.agent.onvif_probe import ProbeFailure, probe_onvif
from nvrmon.agent.sources import SourceConfig, make_source
from tests.fake_http import serve
from tests.fake_onvif import FakeOnvifDevice

pytestmark = pytest.mark.anyio


@contextlib.contextmanager
def answering(body: bytes, media_type: str) -> Iterator[str]:
    """A server answering every GET and POST with `body` (a device whose firmware answers nonsense)."""

    async def endpoint(_: Request) -> Response:
        return Response(body, media_type=media_type)

    with serve(Starlette(routes=[Route("/{path:path}", endpoint, methods=["GET", "POST"])])) as url:
        yield url


ODD_JSON: list[Any] = [
    b"not json",
    b"[1, 2, 3]",
    b'{"cameras": [], "monitors": "x"}',
    b'{"cameras": {"a": 5, "b": {"camera_fps": "fast"}}, "service": {"temperatures": [1], "storage": [2]}}',
    b'{"monitors": [5, {"Monitor": "x"}, {"Monitor": {"Id": 1}, "Monitor_Status": []}], "storage": {"x": 1},'
    b' "usage": [1], "result": "yes", "access_token": 7}',
]


@pytest.mark.parametrize("body", ODD_JSON)
@pytest.mark.parametrize("kind", ["frigate", "zoneminder"])
async def test_json_sources_survive_odd_answers(kind: str, body: bytes) -> None:
    with answering(body, "application/json") as url:
        for username in ("", "user"):  # without and with a login step
            config = SourceConfig(kind=kind, url=url, username=username, password="p")
            report = await make_source(kind)(config, timeout=2)
            assert report.ok or report.reason.startswith(kind), report
            assert all(isinstance(camera.id, str) for camera in report.cameras)


@pytest.mark.parametrize("body", [b"<not xml", b"<?xml version='1.0'?><Other><model>7</model></Other>", b"{}"])
async def test_isapi_survives_odd_answers(body: bytes) -> None:
    with answering(body, "application/xml") as url:
        report = await make_source("isapi")(SourceConfig(kind="isapi", url=url), timeout=2)
    assert report.ok or report.reason.startswith("isapi"), report


async def test_onvif_probe_survives_an_empty_clock_and_odd_recording_jobs() -> None:
    device = FakeOnvifDevice(
        bodies={
            "GetSystemDateAndTime": "<tds:GetSystemDateAndTimeResponse/>",
            "GetRecordings": "<trc:GetRecordingsResponse><trc:RecordingItem/></trc:GetRecordingsResponse>",
            "GetRecordingJobs": "<trc:GetRecordingJobsResponse><trc:JobItem/></trc:GetRecordingJobsResponse>",
        }
    )
    with serve(device.app()) as base:
        device.base_url = base
        result = await probe_onvif(base.replace("http://", "http://admin:correct-password@"), timeout=2)
    assert isinstance(result, DeviceFacts), result
    assert result.clock_skew_s is None and result.model == device.model
    assert result.recording == "unknown"


async def test_onvif_nvr_survives_odd_media_answers() -> None:
    device = FakeOnvifDevice(
        bodies={
            "GetVideoSources": "<trt:GetVideoSourcesResponse><trt:VideoSources/></trt:GetVideoSourcesResponse>",
            "GetProfiles": "<trt:GetProfilesResponse><trt:Profiles/></trt:GetProfilesResponse>",
        }
    )
    with serve(device.app()) as base:
        device.base_url = base
        config = SourceConfig(kind="onvif", url=base, username=device.username, password=device.password)
        report = await make_source("onvif")(config, timeout=2)
    assert report.ok and report.cameras == (), report


async def test_onvif_probe_failure_is_a_value() -> None:
    with answering(b"<html>not soap</html>", "text/html") as url:
        result = await probe_onvif(url.replace("http://", "http://a:b@"), timeout=2)
    assert isinstance(result, ProbeFailure) and result.reason.startswith("onvif"), result
