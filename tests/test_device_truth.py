"""Device truth on a real hub: camera reasons and stream detail, health facts, degraded (docs/protocol.md)."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from tests.agent import Agent, hello
from tests.conftest import LiveHub

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
