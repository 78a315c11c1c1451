"""Device truth on a real hub: camera reasons and stream detail, health facts, degraded (docs/protocol.md)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.agent import Agent, hello
from tests.conftest import LiveHub
from tests.sse import open_stream

pytestmark = pytest.mark.anyio

_numbers = itertools.count(1)


async def applied(agent: Agent, frame: dict[str, Any]) -> None:
    """Send a numbered frame and wait for its ack: it is committed when this returns."""
    seq = next(_numbers)
    await agent.send({**frame, "seq": seq})
    while True:
        reply = await agent.recv()
        assert reply["type"] != "error", reply
        if reply["type"] == "ack" and reply["seq"] >= seq:
            return


def cameras_of(hub: LiveHub, nvr_id: int) -> dict[str, dict[str, Any]]:
    return {c["ext_id"]: c for c in hub.get(f"/api/nvrs/{nvr_id}").json()["cameras"]}


def events_of(hub: LiveHub) -> list[str]:
    return [e["message"] for e in hub.get("/api/events").json()["events"]]


async def test_camera_reason_shows_as_status_reason_while_offline_and_is_empty_online(live_hub: LiveHub) -> None:
    agent, nvr_id = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-reasons", cameras=2)
    await applied(agent, {"type": "camera_status", "camera_id": "cam1", "status": "offline",
                          "reason": "rtsp 401 unauthorized"})  # fmt: skip
    cam = cameras_of(live_hub, nvr_id)["cam1"]
    assert (cam["status"], cam["display_status"], cam["status_reason"]) == (
        "offline",
        "offline",
        "rtsp 401 unauthorized",
    )
    assert live_hub.get(f"/api/cameras/{cam['id']}").json()["status_reason"] == "rtsp 401 unauthorized"
    listed = {c["ext_id"]: c for c in live_hub.get("/api/cameras").json()["cameras"]}
    assert listed["cam1"]["status_reason"] == "rtsp 401 unauthorized" and listed["cam2"]["status_reason"] == ""
    assert "Camera cam1 on nvr-reasons is offline (rtsp 401 unauthorized)" in events_of(live_hub)
    await applied(agent, {"type": "camera_status", "camera_id": "cam1", "status": "online", "reason": "stale words"})
    cam = live_hub.get(f"/api/cameras/{cam['id']}").json()
    assert (cam["status"], cam["status_reason"]) == ("online", "")
    await agent.close()


async def test_a_new_reason_while_still_offline_is_stored_without_an_event(live_hub: LiveHub) -> None:
    agent, nvr_id = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-reworded", cameras=1)
    await applied(agent, {"type": "camera_status", "camera_id": "cam1", "status": "offline",
                          "reason": "connection refused"})  # fmt: skip
    before = events_of(live_hub)
    seq = live_hub.get("/api/summary").json()["seq"]
    await applied(agent, {"type": "camera_status", "camera_id": "cam1", "status": "offline",
                          "reason": "DESCRIBE timeout"})  # fmt: skip
    assert cameras_of(live_hub, nvr_id)["cam1"]["status_reason"] == "DESCRIBE timeout"
    assert events_of(live_hub) == before
    assert live_hub.get("/api/summary").json()["seq"] > seq  # a change pages are told about
    await agent.close()


async def test_hello_and_cameras_lists_carry_reasons_and_detail(live_hub: LiveHub) -> None:
    frame = hello("nvr-listed", 2)
    frame["cameras"][0].update(status="offline", reason="dns lookup failed")
    frame["cameras"][1]["detail"] = {"codec": "H265", "width": 2560, "height": 1440, "fps": 14.9, "nominal_fps": 15}
    agent = await Agent.connect(live_hub.ws_url, live_hub.token)
    welcome = await agent.request(frame)
    cams = cameras_of(live_hub, welcome["nvr_id"])
    assert cams["cam1"]["status_reason"] == "dns lookup failed"
    assert cams["cam2"]["detail"] == {"codec": "H265", "width": 2560, "height": 1440, "fps": 14.9, "nominal_fps": 15.0,
                                      "bitrate_kbps": None}  # fmt: skip
    frame["cameras"][0].update(status="offline", reason="no frames for 30 s")
    await applied(agent, {"type": "cameras", "cameras": frame["cameras"]})
    assert cameras_of(live_hub, welcome["nvr_id"])["cam1"]["status_reason"] == "no frames for 30 s"
    await agent.close()


async def test_detail_alone_is_stored_quietly(live_hub: LiveHub) -> None:
    agent, nvr_id = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-quiet-detail", cameras=1)
    seq = live_hub.get("/api/summary").json()["seq"]
    detail = {"codec": "H264", "fps": 24.8, "nominal_fps": 25, "bitrate_kbps": 4000}
    await applied(agent, {"type": "camera_status", "camera_id": "cam1", "status": "online", "detail": detail})
    cam = cameras_of(live_hub, nvr_id)["cam1"]
    assert cam["detail"]["codec"] == "H264" and cam["detail"]["fps"] == 24.8
    assert live_hub.get("/api/summary").json()["seq"] == seq  # nothing a page shows changed: no seq, no push
    await agent.close()


async def test_cameras_of_an_offline_nvr_say_nvr_offline(live_hub: LiveHub) -> None:
    agent, nvr_id = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-going", cameras=1)
    await applied(agent, {"type": "camera_status", "camera_id": "cam1", "status": "offline", "reason": "401"})
    await agent.close()
    for _ in range(50):
        cam = cameras_of(live_hub, nvr_id)["cam1"]
        if cam["display_status"] == "nvr_offline":
            break
        await asyncio.sleep(0.1)
    assert (cam["display_status"], cam["status_reason"]) == ("nvr_offline", "nvr offline")
    nvr = live_hub.get(f"/api/nvrs/{nvr_id}").json()
    assert (nvr["status"], nvr["status_reason"]) == ("offline", "agent disconnected")


async def test_a_health_message_is_accepted_and_acknowledged(live_hub: LiveHub) -> None:
    agent, _ = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-health", cameras=1)
    cameras = [{"camera_id": "cam1", "recording": "recording"}, {"camera_id": "ghost"}]  # ghost: unknown, ignored
    await applied(agent, {"type": "health", "nvr": {"uptime_s": 5, "disks": [{"id": "disk1"}]}, "cameras": cameras})
    reply = await agent.request({"type": "health", "nvr": {"temperature_c": 500}})
    assert reply["type"] == "error" and reply["code"] == "invalid_message" and "temperature_c" in reply["message"]
    await agent.close()


# -- health facts and degraded ----------------------------------------------------------------------------------------


def hhmm(ts: float) -> str:
    return time.strftime("%H:%M", time.localtime(ts)).lstrip("0")


async def test_not_recording_makes_a_camera_degraded_with_an_event_and_back(live_hub: LiveHub) -> None:
    agent, nvr_id = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-rec", cameras=2)
    stopped = time.time() - 600
    await applied(agent, {"type": "health", "cameras": [
        {"camera_id": "cam1", "recording": "not_recording", "recording_since": stopped},
        {"camera_id": "cam2", "recording": "recording", "recording_since": stopped},
    ]})  # fmt: skip
    cam = cameras_of(live_hub, nvr_id)["cam1"]
    words = f"not recording since {hhmm(stopped)}"
    assert (cam["status"], cam["display_status"], cam["status_reason"]) == ("online", "degraded", words)
    assert cam["health"]["recording"] == "not_recording" and cam["health"]["recording_since"] == stopped
    assert cameras_of(live_hub, nvr_id)["cam2"]["display_status"] == "online"
    assert f"Camera Cam 1 on nvr-rec is degraded: {words}" in events_of(live_hub)
    assert [c["ext_id"] for c in live_hub.get("/api/cameras?status=degraded").json()["cameras"]] == ["cam1"]
    assert [c["ext_id"] for c in live_hub.get("/api/cameras?status=online").json()["cameras"]] == ["cam2"]
    summary = live_hub.get("/api/summary").json()
    assert (summary["cameras_degraded"], summary["cameras_online"], summary["cameras_offline"]) == (1, 1, 0)
    assert live_hub.get(f"/api/nvrs/{nvr_id}").json()["cameras_degraded"] == 1
    await applied(agent, {"type": "health", "cameras": [{"camera_id": "cam1", "recording": "recording"}]})
    cam = cameras_of(live_hub, nvr_id)["cam1"]
    assert (cam["display_status"], cam["status_reason"]) == ("online", "")
    assert "Camera Cam 1 on nvr-rec is no longer degraded" in events_of(live_hub)
    await agent.close()


async def test_an_unchanged_health_message_makes_no_event_and_no_seq(live_hub: LiveHub) -> None:
    agent, nvr_id = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-same", cameras=1)
    disk = {"id": "disk1", "state": "ok", "capacity_bytes": 4 * 10**12, "used_bytes": 3 * 10**12}
    camera = {"camera_id": "cam1", "recording": "not_recording", "recording_since": time.time() - 60}
    facts: dict[str, Any] = {"type": "health", "nvr": {"uptime_s": 100, "temperature_c": 40.0, "disks": [disk]}}
    facts["cameras"] = [camera]
    await applied(agent, facts)
    events, seq = events_of(live_hub), live_hub.get("/api/summary").json()["seq"]
    facts["nvr"].update(uptime_s=160, temperature_c=41.5)  # figures drift; nothing a list shows changes
    facts["nvr"]["disks"][0]["used_bytes"] = 3 * 10**12 + 10**9
    await applied(agent, facts)
    await applied(agent, facts)
    assert events_of(live_hub) == events and live_hub.get("/api/summary").json()["seq"] == seq
    health = live_hub.get(f"/api/nvrs/{nvr_id}").json()["health"]
    assert (health["uptime_s"], health["temperature_c"]) == (160, 41.5)  # stored all the same: latest wins
    assert health["disks"] == [{"id": "disk1", "capacity_bytes": 4 * 10**12, "used_bytes": 3 * 10**12 + 10**9,
                                "state": "ok"}]  # fmt: skip
    await agent.close()


async def test_nvr_disk_and_clock_make_it_degraded_in_words(live_hub: LiveHub) -> None:
    agent, nvr_id = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-disks", cameras=1)
    disks = [{"id": "disk1", "state": "ok"}, {"id": "disk2", "state": "failing"}]
    await applied(agent, {"type": "health", "nvr": {"disks": disks, "clock_skew_s": 93.4}})
    nvr = live_hub.get(f"/api/nvrs/{nvr_id}").json()
    assert (nvr["status"], nvr["display_status"]) == ("online", "degraded")
    assert nvr["status_reason"] == "disk2 failing; clock 93 s ahead"
    assert [n["hostname"] for n in live_hub.get("/api/nvrs?status=degraded").json()["nvrs"]] == ["nvr-disks"]
    assert live_hub.get("/api/summary").json()["nvrs_degraded"] == 1
    assert "NVR nvr-disks is degraded: disk2 failing; clock 93 s ahead" in events_of(live_hub)
    before = events_of(live_hub)
    await applied(agent, {"type": "health", "nvr": {"disks": disks, "clock_skew_s": 95.0}})  # same kinds of problem
    assert live_hub.get(f"/api/nvrs/{nvr_id}").json()["status_reason"] == "disk2 failing; clock 95 s ahead"
    assert events_of(live_hub) == before
    await applied(agent, {"type": "health", "nvr": {"disks": [{"id": "disk2", "state": "failed"}], "clock_skew_s": -4}})
    assert live_hub.get(f"/api/nvrs/{nvr_id}").json()["status_reason"] == "disk2 failed"
    await applied(agent, {"type": "health", "nvr": {"clock_skew_s": -400}})
    assert live_hub.get(f"/api/nvrs/{nvr_id}").json()["status_reason"] == "clock 7 min behind"
    await agent.close()


async def test_retention_and_frame_rate_thresholds_come_from_settings(start_hub: Callable[..., LiveHub]) -> None:
    hub = start_hub(DEGRADED_MIN_RETENTION_DAYS="30", DEGRADED_FPS_RATIO="0.6")
    agent, nvr_id = await Agent.register(hub.ws_url, hub.token, "nvr-short", cameras=2)
    now = time.time()
    await applied(agent, {"type": "health", "nvr": {"oldest_recording": now - 3.5 * 86400}, "cameras": [
        {"camera_id": "cam1", "fps": 12.2, "nominal_fps": 25},
        {"camera_id": "cam2", "fps": 16, "nominal_fps": 25, "oldest_recording": now - 40 * 86400},
        {"camera_id": "not-on-this-nvr", "recording": "not_recording"},
    ]})  # fmt: skip
    nvr = hub.get(f"/api/nvrs/{nvr_id}").json()
    assert nvr["status_reason"] == "3 days retained (want 30)" and 3.4 < nvr["health"]["days_retained"] < 3.6
    cams = cameras_of(hub, nvr_id)
    assert (cams["cam1"]["display_status"], cams["cam1"]["status_reason"]) == ("degraded", "12 fps (want 25)")
    assert cams["cam2"]["display_status"] == "online" and cams["cam2"]["health"]["days_retained"] > 39
    await agent.close()


async def test_a_degraded_camera_that_goes_offline_shows_offline_and_its_reason(live_hub: LiveHub) -> None:
    agent, nvr_id = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-worse", cameras=1)
    await applied(agent, {"type": "health", "cameras": [{"camera_id": "cam1", "recording": "not_recording"}]})
    assert cameras_of(live_hub, nvr_id)["cam1"]["status_reason"] == "not recording"
    await applied(agent, {"type": "camera_status", "camera_id": "cam1", "status": "offline", "reason": "401"})
    cam = cameras_of(live_hub, nvr_id)["cam1"]
    assert (cam["display_status"], cam["status_reason"]) == ("offline", "401")
    await applied(agent, {"type": "camera_status", "camera_id": "cam1", "status": "online"})
    assert cameras_of(live_hub, nvr_id)["cam1"]["display_status"] == "degraded"  # the latest facts still say so
    await agent.close()


async def test_an_open_page_hears_a_degraded_change_but_nothing_of_an_unchanged_health_message(
    live_hub: LiveHub,
) -> None:
    agent, nvr_id = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-pushes", cameras=1)
    camera_id = cameras_of(live_hub, nvr_id)["cam1"]["id"]
    facts: dict[str, Any] = {"type": "health", "nvr": {"uptime_s": 10}, "cameras": [{"camera_id": "cam1"}]}
    await applied(agent, facts)
    summary = live_hub.get("/api/summary").json()
    async with open_stream(live_hub, f"view=nvr&id={nvr_id}&since={summary['epoch']}-{summary['seq']}") as stream:
        assert (await stream.next(skip_heartbeats=False)).event == "ready"
        facts["nvr"]["uptime_s"] = 70
        await applied(agent, facts)  # nothing any page shows changes: no seq, nothing pushed
        facts["cameras"][0]["recording"] = "not_recording"
        await applied(agent, facts)
        pushed = await stream.next(timeout=3)  # so the first push after "ready" is the degraded camera
        assert f'id="camera-{camera_id}"' in pushed.data and pushed.id == f"{summary['epoch']}-{summary['seq'] + 1}"
        assert "Degraded: not recording" in pushed.data
    await agent.close()
