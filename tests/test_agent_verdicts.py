"""Verdicts, hello and health messages of the agent: hysteresis, what is news, what the hub is told (no I/O)."""

from __future__ import annotations

from pathlib import Path

from nvrmon.agent.config import parse
from nvrmon.agent.facts import DeviceFacts, Disk, SourceReport, StreamFacts
from nvrmon.agent.health import health_frame, signature
from nvrmon.agent.prober import Prober
from nvrmon.agent.verdicts import Camera

GOOD = StreamFacts(ok=True, codec="H264", width=1920, height=1080, fps=25.0, nominal_fps=25, bitrate_kbps=4000)


def feed(camera: Camera, results: str, facts: StreamFacts = GOOD) -> list[str]:
    """`results` like "++-+": + a good probe, - a failed one; returns what each observation says to tell."""
    said = []
    for result in results:
        ok = result == "+"
        said.append(camera.observe(ok, "" if ok else "connection refused", facts if ok else None,
                                   down_after=3, up_after=2))  # fmt: skip
    return said


def test_verdict_first_needs_up_after_successes_or_down_after_failures() -> None:
    assert feed(Camera("a", "A"), "++") == ["", "decided"]
    down = Camera("b", "B")
    assert feed(down, "---") == ["", "", "decided"] and (down.status, down.reason) == ("offline", "connection refused")
    mixed = Camera("c", "C")
    assert feed(mixed, "+-+-+-") == [""] * 6 and mixed.status == ""  # no evidence either way: no verdict yet


def test_verdict_single_failures_never_take_a_camera_offline() -> None:
    camera = Camera("a", "A")
    feed(camera, "++")
    assert feed(camera, "+--+--+-+") == [""] * 9 and camera.status == "online"
    assert feed(camera, "---") == ["", "", "changed"] and camera.status == "offline"
    assert feed(camera, "+-++") == ["", "", "", "changed"] and camera.status == "online" and camera.reason == ""


def test_verdict_detail_is_news_only_when_it_changes_meaningfully() -> None:
    camera = Camera("a", "A")
    feed(camera, "++")
    assert camera.detail == {"codec": "H264", "width": 1920, "height": 1080, "fps": 25.0, "nominal_fps": 25,
                             "bitrate_kbps": 4000}  # fmt: skip
    jitter = StreamFacts(ok=True, codec="H264", width=1920, height=1080, fps=24.1, nominal_fps=25, bitrate_kbps=3500)
    assert feed(camera, "+", jitter) == [""]
    slow = StreamFacts(ok=True, codec="H264", width=1920, height=1080, fps=12.0, nominal_fps=25, bitrate_kbps=2000)
    assert feed(camera, "+", slow) == ["news"] and camera.status_frame()["detail"]["fps"] == 12.0
    resized = StreamFacts(ok=True, codec="H264", width=1280, height=720, fps=12.0, nominal_fps=25, bitrate_kbps=2000)
    assert feed(camera, "+", resized) == ["news"]


def test_verdict_new_reason_while_offline_is_news_but_a_new_number_is_not() -> None:
    camera = Camera("a", "A")
    for reason in ("no frames for 30 s", "no frames for 40 s", "rtsp 401 unauthorized"):
        said = [camera.observe(False, reason, None, down_after=1, up_after=1)]
    assert said == ["news"] and camera.reason == "rtsp 401 unauthorized"
    again = Camera("b", "B")
    assert [again.observe(False, r, None, down_after=1, up_after=1) for r in
            ("no frames for 30 s", "no frames for 40 s")] == ["decided", ""]  # fmt: skip
    frame = again.status_frame()
    assert frame == {"type": "camera_status", "camera_id": "b", "status": "offline", "reason": "no frames for 30 s"}


def test_health_frame_carries_measured_streams_and_device_facts_and_ignores_jitter() -> None:
    camera = Camera("cam1", "Lobby")
    feed(camera, "++")
    camera.device = DeviceFacts(model="DS-2CD", clock_skew_s=0.4, recording="not_recording", recording_since=1.0)
    source = SourceReport(ok=True, uptime_s=100, disks=(Disk("d1", 4_000, 3_000, "failing"), Disk("d2", state="odd")))
    frame = health_frame([camera], source)
    disks = [
        {"id": "d1", "capacity_bytes": 4000, "used_bytes": 3000, "state": "failing"},
        {"id": "d2", "state": "unknown"},
    ]
    assert frame["nvr"] == {"uptime_s": 100, "disks": disks}
    assert frame["cameras"] == [{"camera_id": "cam1", "fps": 25.0, "nominal_fps": 25, "codec": "H264", "width": 1920,
                                 "height": 1080, "bitrate_kbps": 4000, "model": "DS-2CD", "clock_skew_s": 0.4,
                                 "recording": "not_recording", "recording_since": 1.0}]  # fmt: skip
    later = SourceReport(ok=True, uptime_s=160, disks=source.disks)
    feed(camera, "+", StreamFacts(ok=True, codec="H264", width=1920, height=1080, fps=24.6, nominal_fps=25,
                                  bitrate_kbps=4010))  # fmt: skip
    assert signature(health_frame([camera], later)) == signature(frame)  # uptime ticks and fps jitter: no news
    camera.device = DeviceFacts(model="DS-2CD", clock_skew_s=0.4, recording="recording", recording_since=2.0)
    assert signature(health_frame([camera], later)) != signature(frame)


def test_verdict_reason_from_a_device_is_made_printable_for_the_hub() -> None:
    # A camera's status phrase goes into the reason; the hub refuses control characters and would drop the frame.
    camera = Camera("a", "A")
    camera.observe(False, "rtsp 500 \x1b[31mboom\u200b\r\n", None, down_after=1, up_after=1)
    assert camera.reason == "rtsp 500  [31mboom" and camera.reason.isprintable()


def test_prober_hello_keeps_a_long_hostname_whole_and_lists_only_decided_cameras(tmp_path: Path) -> None:
    hostname = "site-" + "a" * 200  # a per-NVR token is bound to the whole name (up to 253 characters)
    text = (f'[hub]\nurl = "ws://127.0.0.1:9/ws/agent"\ntoken = "t0ken"\n[nvr]\nhostname = "{hostname}"\n'
            '[[camera]]\nid = "cam1"\nrtsp = "rtsp://192.0.2.1/s"\n'
            '[[camera]]\nid = "cam2"\nrtsp = "rtsp://x/s"\n')  # fmt: skip
    prober = Prober(parse(text, tmp_path / "agent.toml"))
    prober.cameras["cam1"].observe(True, "", GOOD, down_after=3, up_after=1)
    hello = prober.hello()
    assert hello["nvr"] == {"hostname": hostname}
    assert hello["cameras"] == [{"id": "cam1", "name": "cam1", "status": "online", "ip_address": "192.0.2.1",
                                 "detail": {"codec": "H264", "width": 1920, "height": 1080, "fps": 25.0,
                                            "nominal_fps": 25, "bitrate_kbps": 4000}}]  # fmt: skip
