"""Agent side, the health message: per-NVR facts (from the source) and per-camera facts (probes, ONVIF)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nvrmon.agent.facts import SourceReport
from nvrmon.agent.verdicts import Camera

MAX_DISKS = 64
MAX_CAMERAS = 1000


def _known(values: dict[str, Any]) -> dict[str, Any]:
    """Unknown means absent."""
    return {key: value for key, value in values.items() if value not in (None, "", "unknown")}


def health_frame(cameras: Iterable[Camera], source: SourceReport | None) -> dict[str, Any]:
    nvr: dict[str, Any] = {}
    if source is not None:
        nvr = _known(
            {
                "uptime_s": source.uptime_s,
                "temperature_c": source.temperature_c,
                "clock_skew_s": source.clock_skew_s,
                "oldest_recording": source.oldest_recording,
            }
        )
        if source.disks:
            nvr["disks"] = [
                _known({"id": d.id[:64], "capacity_bytes": d.capacity_bytes, "used_bytes": d.used_bytes})
                | {"state": d.state if d.state in ("ok", "failing", "failed") else "unknown"}
                for d in source.disks[:MAX_DISKS]
            ]
    entries = []
    for camera in list(cameras)[:MAX_CAMERAS]:
        entry: dict[str, Any] = {"camera_id": camera.id}
        stream = camera.stream
        if stream is not None and camera.status == "online":
            entry |= _known(
                {
                    "fps": stream.fps,
                    "nominal_fps": stream.nominal_fps,
                    "codec": stream.codec,
                    "width": stream.width,
                    "height": stream.height,
                    "bitrate_kbps": stream.bitrate_kbps,
                }
            )
        device = camera.device
        if device is not None:
            entry |= _known(
                {
                    "model": device.model,
                    "firmware": device.firmware,
                    "serial": device.serial,
                    "clock_skew_s": device.clock_skew_s,
                    "recording": device.recording,
                    "recording_since": device.recording_since,
                    "oldest_recording": device.oldest_recording,
                }
            )
            if device.recording in ("recording", "not_recording"):
                entry["recording"] = device.recording
        entries.append(entry)
    return {"type": "health", "nvr": nvr, "cameras": entries}


def _coarse(value: Any) -> Any:
    """Measurements rounded to what would be news (2 significant digits): jitter is not a change."""
    if isinstance(value, float | int) and not isinstance(value, bool):
        return float(f"{value:.2g}")
    return value


def signature(frame: dict[str, Any]) -> tuple[Any, ...]:
    """What a health message says, without what changes on every probe (uptime ticks, fps jitter)."""
    nvr = {k: _coarse(v) for k, v in frame["nvr"].items() if k not in ("uptime_s", "disks")}
    disks = tuple((d["id"], d["state"], _coarse(d.get("used_bytes"))) for d in frame["nvr"].get("disks", []))
    cameras = tuple(tuple(sorted((k, _coarse(v)) for k, v in c.items())) for c in frame["cameras"])
    return tuple(sorted(nvr.items())), disks, cameras
