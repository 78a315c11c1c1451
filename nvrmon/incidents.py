"""Shared vocabulary, incidents: outages as records (incident, device, timeline entry) and maintenance windows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

IncidentState = Literal["open", "acknowledged", "resolved"]
IncidentScope = Literal["site", "nvr", "camera"]
IncidentSeverity = Literal["critical", "major", "minor"]
STATES: tuple[IncidentState, ...] = ("open", "acknowledged", "resolved")
SEVERITIES: tuple[IncidentSeverity, ...] = ("critical", "major", "minor")
ENTRY_KINDS = ("opened", "devices", "acknowledged", "comment", "resolved", "notified")
# What a device in an incident is: down (offline > degraded > unstable), or no longer (recovered, removed).
DOWN = ("offline", "degraded", "unstable")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_NOTE = 500  # an acknowledgement's note or a comment, in characters
MAX_REASON = 200  # a maintenance window's reason


def severity(kind: IncidentScope, state: str) -> IncidentSeverity:
    """Severity from the device kind and its state: a site or NVR offline is critical (every camera behind it is
    blind), a camera offline or an NVR degraded is major, anything unstable (or a degraded camera) is minor."""
    if state == "offline":
        return "major" if kind == "camera" else "critical"
    if state == "degraded":
        return "minor" if kind == "camera" else "major"
    return "minor"


def worst(levels: list[IncidentSeverity]) -> IncidentSeverity:
    return min(levels, key=SEVERITIES.index) if levels else "minor"


def span(seconds: float) -> str:
    """A duration as the timeline says it: "42 s", "5 min", "2 h 5 min", "3 d 4 h"."""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else f"{secs} s"


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def parse_iso(raw: str) -> float:
    """An ISO 8601 instant ("2026-12-01T22:00:00Z", "+01:00" offsets); one without an offset is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(raw.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except (ValueError, AttributeError) as exc:
        raise ValueError(f"{raw!r} is not an ISO 8601 date and time") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


@dataclass(frozen=True, slots=True)
class IncidentDevice:
    nvr_id: int
    camera_id: int | None
    name: str
    hostname: str
    status: str  # offline | degraded | unstable while down; recovered | removed once it no longer is
    down_since: float = 0.0
    recovered_at: float | None = None

    @property
    def down(self) -> bool:
        return self.status in DOWN

    @property
    def kind(self) -> str:
        return "nvr" if self.camera_id is None else "camera"

    @property
    def key(self) -> str:
        return f"nvr:{self.nvr_id}" if self.camera_id is None else f"camera:{self.camera_id}"

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "nvr_id": self.nvr_id, "camera_id": self.camera_id, "name": self.name,
                "hostname": self.hostname, "status": self.status, "down_since": iso(self.down_since),
                "recovered_at": iso(self.recovered_at)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Incident:
    id: int
    state: IncidentState
    severity: IncidentSeverity
    scope: IncidentScope
    site: str
    region: str
    title: str
    devices: tuple[IncidentDevice, ...]
    opened_at: float
    acknowledged_at: float | None
    acknowledged_by: str
    ack_note: str
    resolved_at: float | None
    updated_seq: int
    merged_into: int | None = None  # resolved because a site incident took its devices over

    @property
    def dom_id(self) -> str:
        return f"incident-{self.id}"

    @property
    def active(self) -> bool:
        return self.state != "resolved"

    @property
    def down_count(self) -> int:
        return sum(1 for d in self.devices if d.down)

    def duration(self, now: float) -> float:
        return (self.resolved_at or now) - self.opened_at

    def as_json(self, now: float) -> dict[str, Any]:
        return {"id": self.id, "state": self.state, "severity": self.severity, "scope": self.scope,
                "site": self.site, "region": self.region, "title": self.title,
                "devices": [d.as_json() for d in self.devices], "opened_at": iso(self.opened_at),
                "acknowledged_at": iso(self.acknowledged_at), "acknowledged_by": self.acknowledged_by or None,
                "ack_note": self.ack_note, "resolved_at": iso(self.resolved_at),
                "duration_s": round(self.duration(now), 1), "merged_into": self.merged_into,
                "updated_seq": self.updated_seq}  # fmt: skip


@dataclass(frozen=True, slots=True)
class IncidentEntry:
    id: int
    incident_id: int
    ts: float
    kind: str  # opened | devices | acknowledged | comment | resolved | notified
    actor: str
    note: str

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "incident_id": self.incident_id, "ts": iso(self.ts), "kind": self.kind,
                "actor": self.actor, "note": self.note}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Match:
    """Which devices a maintenance window covers: every given field must match (a matcher combining them)."""

    camera: int | None = None  # a camera id
    nvr: str = ""  # an NVR hostname (its cameras too)
    site: str = ""
    region: str = ""

    def __bool__(self) -> bool:
        return self.camera is not None or bool(self.nvr or self.site or self.region)

    def _place(self, hostname: str, site: str, region: str) -> bool:
        return (
            (not self.nvr or self.nvr == hostname)
            and (not self.site or self.site == site)
            and (not self.region or self.region == region)
        )

    def covers_nvr(self, hostname: str, site: str, region: str) -> bool:
        return self.camera is None and self._place(hostname, site, region)

    def covers_camera(self, camera_id: int, hostname: str, site: str, region: str) -> bool:
        return (self.camera is None or self.camera == camera_id) and self._place(hostname, site, region)

    def as_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"camera": self.camera, "nvr": self.nvr, "site": self.site, "region": self.region}
        return {k: v for k, v in found.items() if v not in (None, "")}

    def describe(self) -> str:
        parts = [f"camera #{self.camera}"] if self.camera is not None else []
        parts += [f"{label} {value}" for label, value in (("NVR", self.nvr), ("site", self.site),
                                                          ("region", self.region)) if value]  # fmt: skip
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class Window:
    """A maintenance window: from starts_at to ends_at (None: open-ended), or within that span only on `days`
    (0 Monday … 6 Sunday) between time_from and time_to ("HH:MM" in `tz`; a range past midnight ends the next day)."""

    id: int
    match: Match
    starts_at: float
    ends_at: float | None
    reason: str
    created_by: str
    created_at: float
    days: tuple[int, ...] = ()
    time_from: str = ""
    time_to: str = ""
    tz: str = "UTC"

    @property
    def recurring(self) -> bool:
        return bool(self.days)

    def _spans(self, now: float) -> list[tuple[float, float]]:
        """The weekly spans around `now` (from yesterday to a week ahead), clipped to starts_at..ends_at."""
        zone = ZoneInfo(self.tz)
        start_t, end_t = time.fromisoformat(self.time_from), time.fromisoformat(self.time_to)
        today = datetime.fromtimestamp(now, zone).date()
        spans = []
        for offset in range(-1, 8):
            day = today + timedelta(days=offset)
            if day.weekday() not in self.days:
                continue
            begin = datetime.combine(day, start_t, zone)
            end = datetime.combine(day + timedelta(days=1) if end_t <= start_t else day, end_t, zone)
            lo, hi = max(begin.timestamp(), self.starts_at), min(end.timestamp(), self.ends_at or float("inf"))
            if lo < hi:
                spans.append((lo, hi))
        return spans

    def active(self, now: float) -> bool:
        if now < self.starts_at or (self.ends_at is not None and now >= self.ends_at):
            return False
        return not self.recurring or any(lo <= now < hi for lo, hi in self._spans(now))

    def next_change(self, now: float) -> float | None:
        """The next instant after `now` at which `active` may change (None: never again)."""
        edges = [self.starts_at, self.ends_at or 0.0]
        if self.recurring and (self.ends_at is None or now < self.ends_at):
            edges += [edge for span in self._spans(max(now, self.starts_at)) for edge in span]
        later = [edge for edge in edges if edge > now]
        return min(later) if later else None

    def as_json(self, now: float) -> dict[str, Any]:
        recurring = (
            {"days": [DAYS[d] for d in self.days], "from": self.time_from, "to": self.time_to, "tz": self.tz}
            if self.recurring
            else None
        )
        return {"id": self.id, "match": self.match.as_json(), "starts_at": iso(self.starts_at),
                "ends_at": iso(self.ends_at), "recurring": recurring, "reason": self.reason,
                "created_by": self.created_by, "created_at": iso(self.created_at),
                "active": self.active(now)}  # fmt: skip


def check_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc
    return name


@dataclass(frozen=True, slots=True)
class IncidentFilter:
    """The /incidents page's filters, normalised (unknown values dropped) so equal pages share one live view."""

    state: str = ""  # one of STATES, "active" (open or acknowledged), or "" (all)
    site: str = ""
    severity: str = ""

    @classmethod
    def parse(cls, params: Any) -> IncidentFilter:
        state, site, level = (str(params.get(k, "") or "") for k in ("state", "site", "severity"))
        return cls(
            state if state in (*STATES, "active") else "",
            site.strip() if len(site) <= 100 else "",
            level if level in SEVERITIES else "",
        )

    def params(self) -> dict[str, str]:
        return {k: v for k, v in (("state", self.state), ("site", self.site), ("severity", self.severity)) if v}
