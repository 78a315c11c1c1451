"""Agent side, verdicts: consecutive probe results turned into online/offline with hysteresis, and what to tell.

No I/O and no clock of its own: the prober feeds each observation in and sends what `observe` says changed. A camera
goes offline after `down_after` consecutive failures and online after `up_after` successes, and the first verdict
after start needs the same evidence ("the false positive case is catastrophic": one lost probe is not an outage).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from nvrmon.agent.facts import DeviceFacts, StreamFacts

FPS_CHANGE = 0.2  # a measured fps this far (share) from the one reported is news; jitter below it is not
BITRATE_CHANGE = 0.5


def stream_detail(facts: StreamFacts | None) -> dict[str, Any]:
    """The contract's `detail` object: only what is known."""
    if facts is None:
        return {}
    detail: dict[str, Any] = {"codec": facts.codec, "width": facts.width, "height": facts.height, "fps": facts.fps,
                              "nominal_fps": facts.nominal_fps, "bitrate_kbps": facts.bitrate_kbps}  # fmt: skip
    return {key: value for key, value in detail.items() if value not in (None, "")}


def _far(new: Any, old: Any, share: float) -> bool:
    if isinstance(new, int | float) and isinstance(old, int | float):
        return abs(new - old) > share * max(abs(old), 1e-9)
    return (new is None) != (old is None)


def detail_news(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """Worth a camera_status of its own: the codec or size changed, or fps or bitrate moved far."""
    if any(new.get(key) != old.get(key) for key in ("codec", "width", "height", "nominal_fps")):
        return True
    return _far(new.get("fps"), old.get("fps"), FPS_CHANGE) or _far(
        new.get("bitrate_kbps"), old.get("bitrate_kbps"), BITRATE_CHANGE
    )


def printable(text: str, limit: int = 200) -> str:
    """What a device said, fit for the wire: the hub refuses control and format characters (nvrmon/names.py)."""
    return "".join(ch if ch.isprintable() else " " for ch in text).strip()[:limit]


def reason_kind(reason: str) -> str:
    """`no frames for 30 s` and `no frames for 40 s` are the same news."""
    return re.sub(r"\d+(\.\d+)?", "N", reason)


@dataclass
class Camera:
    """One camera as the agent judges it: configured, or listed by the NVR source."""

    id: str
    name: str
    ip_address: str = ""
    status: str = ""  # what the hub was told: "online" | "offline"; "" until the first verdict
    reason: str = ""  # reported with offline
    detail: dict[str, Any] = field(default_factory=dict)  # reported detail
    good: int = 0  # consecutive successes
    bad: int = 0  # consecutive failures
    last_reason: str = ""  # of the latest failure
    stream: StreamFacts | None = None  # the latest successful measurement
    device: DeviceFacts | None = None  # ONVIF or source facts
    last_frames_at: float | None = None  # monotonic time of the latest probe that saw frames

    def wire(self) -> dict[str, Any]:
        """As in hello.cameras / cameras.cameras."""
        wire: dict[str, Any] = {"id": self.id, "name": self.name, "status": self.status}
        if self.ip_address:
            wire["ip_address"] = self.ip_address
        if self.reason and self.status == "offline":
            wire["reason"] = self.reason
        if self.detail:
            wire["detail"] = self.detail
        return wire

    def observe(self, ok: bool, reason: str, facts: StreamFacts | None, *, down_after: int, up_after: int) -> str:
        """Count one observation. Returns "decided" (first verdict), "changed" (a transition), "news" (same status,
        reason or detail worth telling) or "" (nothing to tell)."""
        if ok:
            self.good, self.bad = self.good + 1, 0
            if facts is not None:
                self.stream = facts
        else:
            self.good, self.bad = 0, self.bad + 1
            reason = printable(reason) or "failed"
            self.last_reason = reason
        first = not self.status
        if self.status != "online" and self.good >= up_after:
            self.status, self.reason, self.detail = "online", "", stream_detail(self.stream)
            return "decided" if first else "changed"
        if self.status != "offline" and self.bad >= down_after:
            self.status, self.reason = "offline", reason
            return "decided" if first else "changed"
        if self.status == "online" and ok:
            detail = stream_detail(self.stream)
            if detail_news(detail, self.detail):
                self.detail = detail
                return "news"
        if self.status == "offline" and not ok and reason_kind(reason) != reason_kind(self.reason):
            self.reason = reason
            return "news"
        return ""

    def status_frame(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "camera_status", "camera_id": self.id, "status": self.status}
        if self.reason and self.status == "offline":
            frame["reason"] = self.reason
        if self.detail:
            frame["detail"] = self.detail
        return frame
