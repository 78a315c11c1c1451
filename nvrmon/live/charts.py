"""Stage 4, charts: fleet statistics as numbers and SVG geometry, drawn by templates as inline SVG (no library)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from nvrmon.filters import camera_split, natural
from nvrmon.models import Nvr

# (status key, label, icon): every chart legend says its status in words and a glyph, never by colour alone.
NVR_LEGEND: tuple[tuple[str, str, str], ...] = (
    ("online", "Online", "●"),
    ("degraded", "Degraded", "▲"),
    ("stale", "Stale", "◔"),
    ("offline", "Offline", "✕"),
    ("unknown", "Unknown", "?"),
)
CAMERA_LEGEND: tuple[tuple[str, str, str], ...] = (
    ("online", "Online", "●"),
    ("degraded", "Degraded", "▲"),
    ("offline", "Offline", "✕"),
    ("nvr_offline", "NVR offline", "⊘"),
    ("unknown", "Unknown", "?"),
)
MIN_SHARE = 1.5  # percent: a single offline device among 5,000 still shows as a visible sliver
MAX_REGIONS = 12  # more regions than this fold into "Other" in the chart (the roll-up table lists them all)


@dataclass(frozen=True, slots=True)
class Segment:
    key: str
    label: str
    icon: str
    count: int
    percent: float  # true share, for the legend
    start: float  # drawn position and length, 0-100, with tiny non-zero shares enlarged to MIN_SHARE
    length: float

    @property
    def percent_text(self) -> str:
        if self.count and self.percent < 0.1:
            return "<0.1%"
        return f"{self.percent:.1f}%" if self.percent < 10 and self.percent % 1 else f"{self.percent:.0f}%"


def segments(counts: dict[str, int], legend: Sequence[tuple[str, str, str]]) -> list[Segment]:
    """Shares of a whole laid end to end on 0-100; non-zero shares get at least MIN_SHARE, the rest shrink to fit."""
    total = sum(counts.get(key, 0) for key, _, _ in legend)
    if not total:
        return []
    shares = {key: 100 * counts.get(key, 0) / total for key, _, _ in legend}
    small = {k for k, v in shares.items() if 0 < v < MIN_SHARE}
    big_total = sum(v for k, v in shares.items() if k not in small)
    scale = (100 - MIN_SHARE * len(small)) / big_total if big_total else 0.0
    out: list[Segment] = []
    start = 0.0
    for key, label, icon in legend:
        count = counts.get(key, 0)
        if not count:
            continue
        length = MIN_SHARE if key in small else shares[key] * scale
        out.append(Segment(key, label, icon, count, shares[key], round(start, 3), round(length, 3)))
        start += length
    return out


@dataclass(frozen=True, slots=True)
class LegendRow:
    key: str
    label: str
    icon: str
    count: int
    percent_text: str


@dataclass(frozen=True, slots=True)
class Donut:
    """A ring chart: each segment is a stroke-dasharray on one circle of circumference 100."""

    segments: list[Segment]
    total: int
    headline: str  # the share online, in the middle of the ring
    legend: list[LegendRow]  # every status, zeros included, so the legend never jumps about

    RADIUS = 100 / (2 * math.pi)

    def dash(self, segment: Segment) -> str:
        return f"{segment.length:.3f} {100 - segment.length:.3f}"

    def offset(self, segment: Segment) -> str:
        # Circles start drawing at 3 o'clock; offset by a quarter so the first segment starts at 12.
        return f"{(25 - segment.start) % 100:.3f}"


def donut(counts: dict[str, int], legend: Sequence[tuple[str, str, str]]) -> Donut:
    segs = segments(counts, legend)
    total = sum(counts.get(key, 0) for key, _, _ in legend)
    online = counts.get("online", 0)
    headline = "–" if not total else f"{math.floor(1000 * online / total) / 10:g}%"
    shown = {s.key: s.percent_text for s in segs}
    rows = [LegendRow(k, label, icon, counts.get(k, 0), shown.get(k, "0%")) for k, label, icon in legend]
    return Donut(segs, total, headline, rows)


def nvr_counts(fleet: Iterable[Nvr]) -> dict[str, int]:
    counts = dict.fromkeys((k for k, _, _ in NVR_LEGEND), 0)
    for nvr in fleet:
        counts[nvr.display] += 1
    return counts


def camera_counts(fleet: Iterable[Nvr]) -> dict[str, int]:
    counts = dict.fromkeys((k for k, _, _ in CAMERA_LEGEND), 0)
    for nvr in fleet:
        for key, count in camera_split(nvr).items():
            counts[key] += count
    return counts


@dataclass(slots=True)
class Region:
    """One region's roll-up: NVRs by status, cameras up, and a health verdict in words."""

    name: str
    nvrs: dict[str, int] = field(default_factory=lambda: dict.fromkeys((k for k, _, _ in NVR_LEGEND), 0))
    cameras_online: int = 0
    cameras_total: int = 0

    @property
    def nvrs_total(self) -> int:
        return sum(self.nvrs.values())

    @property
    def nvrs_up(self) -> int:
        return self.nvrs["online"] + self.nvrs["degraded"] + self.nvrs["stale"]

    @property
    def camera_share(self) -> float:
        return self.cameras_online / self.cameras_total if self.cameras_total else 1.0

    @property
    def nvr_share(self) -> float:
        known = self.nvrs_total - self.nvrs["unknown"]
        return self.nvrs_up / known if known else 1.0

    @property
    def health(self) -> str:
        """healthy / degraded / critical: the worse of NVR and camera availability (unknown NVRs don't count)."""
        if self.nvr_share < 0.9 or self.camera_share < 0.8:
            return "critical"
        if self.nvr_share < 1 or self.camera_share < 0.98:
            return "degraded"
        return "healthy"

    def bar(self) -> list[Segment]:
        return segments(self.nvrs, NVR_LEGEND)


def regions(fleet: Iterable[Nvr]) -> list[Region]:
    """Every region, worst health first, then by size."""
    found: dict[str, Region] = {}
    for nvr in fleet:
        region = found.get(nvr.region)
        if region is None:
            region = found[nvr.region] = Region(nvr.region or "(no region)")
        region.nvrs[nvr.display] += 1
        region.cameras_total += nvr.cameras_total
        region.cameras_online += camera_split(nvr).get("online", 0)
    rank = {"critical": 0, "degraded": 1, "healthy": 2}
    return sorted(found.values(), key=lambda r: (rank[r.health], -r.nvrs_total, natural(r.name)))


def region_chart(all_regions: Sequence[Region], limit: int = MAX_REGIONS) -> tuple[list[Region], int]:
    """The regions the bar chart draws (largest first, the rest folded into 'Other') and the widest bar's total."""
    by_size = sorted(all_regions, key=lambda r: (-r.nvrs_total, natural(r.name)))
    shown = by_size[:limit]
    if len(by_size) > limit:
        other = Region(f"Other ({len(by_size) - limit + 1})")
        for region in by_size[limit - 1 :]:
            for key, count in region.nvrs.items():
                other.nvrs[key] += count
            other.cameras_total += region.cameras_total
            other.cameras_online += region.cameras_online
        shown = by_size[: limit - 1] + [other]
    return shown, max((r.nvrs_total for r in shown), default=0)
