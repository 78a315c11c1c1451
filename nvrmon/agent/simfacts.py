"""Agent side, the simulator's device truth: seeded offline reasons, stream detail and NVR health messages.

Its own seeded generator, apart from the scenario's, so adding facts leaves the scenario's timeline as it was.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

# What probes say about a camera that went dark, weighted as field reports have them: auth changes after a password
# rotation, a camera that lost power or its network, a stream that stalls while the camera still answers.
REASONS = (
    ("connection refused", 0.35),
    ("rtsp 401 unauthorized", 0.2),
    ("no frames for 30 s", 0.3),
    ("DESCRIBE timeout", 0.15),
)
STREAMS = (  # codec, width, height, nominal fps, bitrate kbps
    ("H264", 1920, 1080, 25, 4096),
    ("H264", 2688, 1520, 20, 6144),
    ("H265", 2560, 1440, 25, 3072),
    ("H264", 1280, 720, 15, 1536),
)
TB = 1_000_000_000_000


@dataclass
class NvrProfile:
    """An NVR's steady facts: what its disks are, how far its clock is off, how long it keeps recordings."""

    disks: int
    disk_tb: int
    failing_disk: int | None
    clock_skew_s: float
    temperature_c: float
    retention_days: float
    booted: float
    not_recording: dict[int, float]  # camera index -> since when it has not been recording (online all the same)


class SimFacts:
    def __init__(self, seed: int | None) -> None:
        self.random = random.Random(None if seed is None else seed * 7919 + 1)
        self.profiles: list[NvrProfile] = []

    def profile(self, cameras: int) -> NvrProfile:
        rnd, now = self.random, time.time()
        skew = rnd.gauss(0, 0.4) if rnd.random() > 0.04 else rnd.choice((-1, 1)) * rnd.uniform(120, 900)
        stopped = {c: now - rnd.uniform(600, 7200) for c in range(cameras) if rnd.random() < 0.02}
        profile = NvrProfile(
            disks=rnd.choice((1, 2, 2, 4)),
            disk_tb=rnd.choice((4, 6, 8)),
            failing_disk=0 if rnd.random() < 0.03 else None,
            clock_skew_s=round(skew, 2),
            temperature_c=round(rnd.uniform(36, 52), 1),
            retention_days=rnd.uniform(3, 6) if rnd.random() < 0.05 else rnd.uniform(14, 60),
            booted=now - rnd.uniform(86400, 60 * 86400),
            not_recording=stopped,
        )
        self.profiles.append(profile)
        return profile

    def detail(self) -> dict[str, Any]:
        codec, width, height, fps, kbps = self.random.choice(STREAMS)
        measured = round(fps * self.random.uniform(0.97, 1.0), 1)
        return {"codec": codec, "width": width, "height": height, "fps": measured, "nominal_fps": fps,
                "bitrate_kbps": round(kbps * self.random.uniform(0.8, 1.1))}  # fmt: skip

    def reason(self) -> str:
        return self.random.choices([r for r, _ in REASONS], [w for _, w in REASONS])[0]


def health(
    profile: NvrProfile, disk_free_pct: int, cameras: list[Any], offline_since: dict[str, float]
) -> dict[str, Any]:
    """One health message (latest wins at the hub): disks from the NVR's free share, recording per camera."""
    now = time.time()
    capacity = profile.disk_tb * TB
    used = round(capacity * (100 - disk_free_pct) / 100)
    disks = [
        {"id": f"disk{n + 1}", "capacity_bytes": capacity, "used_bytes": used,
         "state": "failing" if n == profile.failing_disk else "ok"}
        for n in range(profile.disks)
    ]  # fmt: skip
    oldest = now - profile.retention_days * 86400
    entries: list[dict[str, Any]] = []
    for index, camera in enumerate(cameras):
        # A camera keeps its own clock (NTP from the NVR or not): an NVR that is off is one problem, not nine.
        skew = round((index % 5 - 2) * 0.15, 2)
        entry: dict[str, Any] = {"camera_id": camera.id, "oldest_recording": round(oldest, 1),
                                 "clock_skew_s": skew}  # fmt: skip
        if camera.status == "offline":
            entry |= {"recording": "not_recording", "recording_since": offline_since.get(camera.id, now)}
        elif index in profile.not_recording:
            entry |= {"recording": "not_recording", "recording_since": round(profile.not_recording[index], 1)}
        else:
            entry |= {"recording": "recording", "recording_since": round(profile.booted, 1)}
            entry |= camera.detail
        entries.append(entry)
    return {
        "type": "health",
        "nvr": {"uptime_s": round(now - profile.booted), "temperature_c": profile.temperature_c,
                "clock_skew_s": profile.clock_skew_s, "oldest_recording": round(oldest, 1), "disks": disks},
        "cameras": entries,
    }  # fmt: skip
