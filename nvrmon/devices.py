"""Shared vocabulary, device truth: what agents measure of NVRs and cameras (streams, disks, recording, clocks)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

# Protocol v1 additions: a camera's stream detail (camera_status), the health message's NVR and camera facts.

Recording = Literal["recording", "not_recording", "unknown"]
DiskState = Literal["ok", "failing", "failed", "unknown"]


def _known(data: dict[str, Any], key: str) -> Any:
    value = data.get(key)
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def days_between(earlier: float | None, now: float) -> float | None:
    """Days of footage kept: from the oldest recording to now; None when the device did not say."""
    return None if earlier is None else max(0.0, (now - earlier) / 86400)


@dataclass(frozen=True, slots=True)
class StreamDetail:
    """What a probe measured of a camera's stream (all optional: unknown is None or empty)."""

    codec: str = ""
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    nominal_fps: float | None = None
    bitrate_kbps: float | None = None

    @classmethod
    def of(cls, data: dict[str, Any]) -> StreamDetail:
        """From stored JSON (written by the hub from a parsed frame, so only shapes are checked)."""
        width, height = _known(data, "width"), _known(data, "height")
        return cls(str(data.get("codec") or ""), None if width is None else int(width),
                   None if height is None else int(height), _known(data, "fps"), _known(data, "nominal_fps"),
                   _known(data, "bitrate_kbps"))  # fmt: skip

    @property
    def resolution(self) -> str:
        return f"{self.width}×{self.height}" if self.width and self.height else ""

    def __bool__(self) -> bool:
        return self != StreamDetail()


@dataclass(frozen=True, slots=True)
class Disk:
    id: str
    capacity_bytes: int | None = None
    used_bytes: int | None = None
    state: DiskState = "unknown"

    @property
    def used_pct(self) -> float | None:
        if not self.capacity_bytes or self.used_bytes is None:
            return None
        return min(100.0, 100 * self.used_bytes / self.capacity_bytes)


@dataclass(frozen=True, slots=True)
class NvrHealth:
    """The latest `health` facts about an NVR itself; `received` is when the hub stored them (0: never)."""

    uptime_s: float | None = None
    temperature_c: float | None = None
    clock_skew_s: float | None = None
    oldest_recording: float | None = None
    disks: tuple[Disk, ...] = ()
    received: float = 0.0

    @classmethod
    def of(cls, data: dict[str, Any]) -> NvrHealth:
        disks = tuple(
            Disk(str(d.get("id", "")), _known(d, "capacity_bytes"), _known(d, "used_bytes"), d.get("state", "unknown"))
            for d in data.get("disks") or ()
            if isinstance(d, dict)
        )
        return cls(_known(data, "uptime_s"), _known(data, "temperature_c"), _known(data, "clock_skew_s"),
                   _known(data, "oldest_recording"), disks, float(data.get("received") or 0.0))  # fmt: skip

    def days_retained(self, now: float) -> float | None:
        return days_between(self.oldest_recording, now)

    def as_json(self, now: float) -> dict[str, Any]:
        data = asdict(self)
        data["days_retained"] = self.days_retained(now)
        return data


@dataclass(frozen=True, slots=True)
class CameraHealth:
    """The latest `health` facts about one camera (by its id on the NVR); `stream` holds its measured fps etc."""

    camera_id: str = ""
    recording: Recording = "unknown"
    recording_since: float | None = None
    clock_skew_s: float | None = None
    oldest_recording: float | None = None
    stream: StreamDetail = field(default_factory=StreamDetail)
    model: str = ""
    firmware: str = ""
    serial: str = ""

    @classmethod
    def of(cls, data: dict[str, Any]) -> CameraHealth:
        stream = data.get("stream")
        return cls(str(data.get("camera_id", "")), data.get("recording", "unknown"), _known(data, "recording_since"),
                   _known(data, "clock_skew_s"), _known(data, "oldest_recording"),
                   StreamDetail.of(stream if isinstance(stream, dict) else {}), str(data.get("model") or ""),
                   str(data.get("firmware") or ""), str(data.get("serial") or ""))  # fmt: skip

    def days_retained(self, now: float) -> float | None:
        return days_between(self.oldest_recording, now)

    def as_json(self, now: float) -> dict[str, Any]:
        data = asdict(self)
        data["days_retained"] = self.days_retained(now)
        return data
