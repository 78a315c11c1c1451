"""Agent side, the facts: what one probe of a camera, an ONVIF device or an NVR source measured (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StreamFacts:
    """What one probe of one camera's stream measured."""

    ok: bool
    reason: str = ""  # empty when ok
    codec: str = ""
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    nominal_fps: float | None = None
    bitrate_kbps: float | None = None


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """ONVIF / NVR-API facts about one camera."""

    model: str = ""
    firmware: str = ""
    serial: str = ""
    clock_skew_s: float | None = None
    recording: str = "unknown"  # recording | not_recording | unknown
    recording_since: float | None = None
    oldest_recording: float | None = None


@dataclass(frozen=True, slots=True)
class Disk:
    id: str
    capacity_bytes: int | None = None
    used_bytes: int | None = None
    state: str = "unknown"  # ok | failing | failed | unknown


@dataclass(frozen=True, slots=True)
class SourceCamera:
    """One camera as an NVR source lists it."""

    id: str
    name: str
    online: bool
    reason: str = ""
    stream: StreamFacts | None = None
    device: DeviceFacts | None = None
    rtsp: str = ""  # when the source knows the camera's stream URL (the agent may probe it too)


@dataclass(frozen=True, slots=True)
class SourceReport:
    """One poll of an NVR source (Frigate, ZoneMinder, ISAPI, ONVIF NVR)."""

    ok: bool
    reason: str = ""
    cameras: tuple[SourceCamera, ...] = ()
    disks: tuple[Disk, ...] = ()
    uptime_s: float | None = None
    temperature_c: float | None = None
    clock_skew_s: float | None = None
    oldest_recording: float | None = None
    model: str = ""
    firmware: str = ""
