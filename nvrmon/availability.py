"""Shared vocabulary, availability: figures from state intervals as pure functions, so tests check them by hand.

A device's time in a range is split by what it was: up, stale (a missed heartbeat, not yet an outage) and degraded
count as available; down counts against it; maintenance (whatever the state, while a window covered it), parent-down
(a camera whose NVR is offline: it can't be seen, and the NVR's outage is the NVR's), unknown (an NVR whose agent is
not back after a hub restart, and its cameras) and hub-down (no hub ran, so nobody saw anything) are reported apart
and left out: availability = available / (available + down). Groups (NVR, site, region) add their devices' seconds,
so the figure is time-weighted over devices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any, Literal

Scope = Literal["camera", "nvr", "site", "region"]
SCOPES: tuple[Scope, ...] = ("site", "region", "nvr", "camera")
STATES = ("up", "stale", "degraded", "down", "parent_down", "unknown", "hub_down")
AVAILABLE = ("up", "stale", "degraded")


def nvr_state(status: str) -> str:
    """An NVR's history state from its status in the fleet table."""
    return {"online": "up", "stale": "stale", "offline": "down", "degraded": "degraded"}.get(status, "unknown")


def camera_state(nvr_status: str, status: str) -> str:
    """A camera's history state from its NVR's status and its own."""
    if nvr_status == "offline":
        return "parent_down"
    if nvr_status not in ("online", "stale", "degraded"):
        return "unknown"  # its NVR's agent is not back after a hub restart: its last status says nothing
    return {"online": "up", "degraded": "degraded"}.get(status, "down")


@dataclass(frozen=True, slots=True)
class Interval:
    """One stretch of one device's history: [start, end), end None while it is the device's current state."""

    device: str  # nvr:<id> | camera:<id>
    state: str
    maintenance: bool
    start: float
    end: float | None
    region: str = ""
    site: str = ""

    @property
    def kind(self) -> str:
        return self.device.split(":", 1)[0]


def clip(interval: Interval, start: float, end: float, now: float) -> float:
    """Seconds of `interval` inside [start, end); an open interval lasts until `now`."""
    upto = now if interval.end is None else interval.end
    return max(0.0, min(upto, end, now) - max(interval.start, start))


@dataclass(slots=True)
class Totals:
    """Seconds by what the devices were; `maintenance` takes the time a window covered, whatever the state."""

    up: float = 0.0
    stale: float = 0.0
    degraded: float = 0.0
    down: float = 0.0
    parent_down: float = 0.0
    unknown: float = 0.0
    hub_down: float = 0.0
    maintenance: float = 0.0

    def add(self, state: str, maintenance: bool, seconds: float) -> None:
        name = "maintenance" if maintenance else state
        setattr(self, name, getattr(self, name) + seconds)

    def merge(self, other: Totals) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def available(self) -> float:
        return self.up + self.stale + self.degraded

    @property
    def counted(self) -> float:
        """The time the figure is over: everything but maintenance, parent-down, unknown and hub-down."""
        return self.available + self.down

    @property
    def excluded(self) -> float:
        return self.maintenance + self.parent_down + self.unknown + self.hub_down

    @property
    def availability(self) -> float | None:
        """Percent, or None when nothing was counted (a range the device spent entirely in maintenance, say)."""
        return 100.0 * self.available / self.counted if self.counted > 0 else None

    def as_json(self) -> dict[str, Any]:
        seconds = {f"{f.name}_s": round(getattr(self, f.name), 3) for f in fields(self)}
        figure = self.availability
        return {"availability": None if figure is None else round(figure, 4), "counted_s": round(self.counted, 3),
                **seconds}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Outage:
    """An incident as the report counts it."""

    opened_at: float
    resolved_at: float | None
    merged: bool  # resolved because a site incident took its devices over: part of that one, not an outage of its own
    region: str
    site: str
    devices: frozenset[str]  # nvr:<id> | camera:<id>


def incident_figures(outages: Iterable[Outage], start: float, end: float) -> tuple[int, float | None]:
    """Incidents opened in [start, end) (merged ones are part of the incident they joined) and their MTTR: the mean
    duration of those resolved, or None when none was."""
    counted = [o for o in outages if start <= o.opened_at < end and not o.merged]
    repaired = [o.resolved_at - o.opened_at for o in counted if o.resolved_at is not None]
    return len(counted), (sum(repaired) / len(repaired) if repaired else None)


def interval_group(scope: Scope) -> Callable[[Interval], str | None]:
    """Which group of `scope` an interval's time belongs to (None: not one of that scope's)."""
    if scope == "camera":
        return lambda i: i.device if i.kind == "camera" else None
    if scope == "nvr":
        return lambda i: i.device if i.kind == "nvr" else None
    if scope == "site":
        return lambda i: f"{i.region}/{i.site}"
    return lambda i: i.region


def outage_groups(scope: Scope) -> Callable[[Outage], set[str]]:
    """The groups of `scope` an incident counts for."""
    if scope in ("camera", "nvr"):
        return lambda o: {d for d in o.devices if d.startswith(f"{scope}:")}
    if scope == "site":
        return lambda o: {f"{o.region}/{o.site}"}
    return lambda o: {o.region}


@dataclass(slots=True)
class Row:
    """One group's figures: all its devices, and its NVRs and cameras apart."""

    key: str
    region: str = ""  # where its time was recorded (a site's or region's own; a device's latest in range)
    site: str = ""
    totals: Totals = field(default_factory=Totals)
    nvrs: Totals = field(default_factory=Totals)
    cameras: Totals = field(default_factory=Totals)
    devices: set[str] = field(default_factory=set)
    incidents: int = 0
    mttr: float | None = None

    def add(self, interval: Interval, seconds: float) -> None:
        self.totals.add(interval.state, interval.maintenance, seconds)
        (self.nvrs if interval.kind == "nvr" else self.cameras).add(interval.state, interval.maintenance, seconds)
        self.devices.add(interval.device)
        self.region, self.site = interval.region, interval.site


def report(
    intervals: Iterable[Interval], outages: Iterable[Outage], scope: Scope, start: float, end: float, now: float
) -> tuple[list[Row], Row]:
    """Rows per group of `scope` (worst availability first; groups with nothing counted last) and the whole fleet."""
    group_of, outage_keys = interval_group(scope), outage_groups(scope)
    rows: dict[str, Row] = {}
    fleet = Row("")
    for interval in intervals:
        seconds = clip(interval, start, end, now)
        if seconds <= 0:
            continue
        fleet.add(interval, seconds)
        key = group_of(interval)
        if key is not None:
            rows.setdefault(key, Row(key)).add(interval, seconds)
    kept = list(outages)
    fleet.incidents, fleet.mttr = incident_figures(kept, start, end)
    by_group: dict[str, list[Outage]] = {}
    for outage in kept:
        for key in outage_keys(outage):
            by_group.setdefault(key, []).append(outage)
    for key, found in by_group.items():
        outage = found[0]
        row = rows.get(key)
        if row is None:  # an incident in a group with no recorded time in range (opened just before `end`)
            row = rows[key] = Row(key, outage.region, outage.site)
        row.incidents, row.mttr = incident_figures(found, start, end)
    ordered = sorted(rows.values(), key=lambda r: (r.totals.availability is None, r.totals.availability or 0, r.key))
    return [r for r in ordered if r.devices or r.incidents], fleet
