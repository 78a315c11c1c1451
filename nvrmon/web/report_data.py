"""Stage 7, availability reports: a range and grouping from a query, the figures built from the store's history, and
their shapes (JSON, CSV rows, chart bars) shared by /reports and /api/reports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nvrmon.availability import SCOPES, Row, Scope, Totals, report
from nvrmon.incidents import iso, parse_iso
from nvrmon.live.charts import Segment, segments
from nvrmon.store import history as sql
from nvrmon.store.database import Database
from nvrmon.store.history import Facts

RANGES = {"24h": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0}
MAX_SPAN = 366 * 86400.0  # a custom range; history is kept for the events' retention anyway
MAX_INTERVALS = 500_000  # read at most this many state intervals for one report (bounded memory and time)
MAX_OUTAGES = 100_000
CHART_BARS = 20  # the chart draws the worst groups, the page's table the TABLE_ROWS worst; the CSV has them all
TABLE_ROWS = 500
# (key, label, icon): the chart's bars say each part in words and a glyph, never by colour alone.
BAR_LEGEND: tuple[tuple[str, str, str], ...] = (
    ("available", "Available", "●"),
    ("down", "Down", "✕"),
    ("maintenance", "Maintenance", "⚒"),
    ("parent_down", "NVR offline", "⊘"),
    ("unknown", "Unknown / hub down", "?"),
)
CSV_COLUMNS = (
    "scope", "key", "name", "region", "site", "hostname", "devices", "availability_percent", "counted_s", "up_s",
    "stale_s", "degraded_s", "down_s", "maintenance_s", "parent_down_s", "unknown_s", "hub_down_s",
    "nvr_availability_percent", "camera_availability_percent", "incidents", "mttr_s",
)  # fmt: skip


class ReportError(ValueError):
    """A query that names no report: a bad scope, range or date."""


@dataclass(frozen=True, slots=True)
class Period:
    name: str  # 24h | 7d | 30d | custom
    start: float
    end: float

    def as_json(self) -> dict[str, Any]:
        return {"range": self.name, "from": _iso_exact(self.start), "to": _iso_exact(self.end)}


def _iso_exact(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()  # with its fraction: a report's edges are exact instants


def period(params: Mapping[str, str], now: float) -> Period:
    """?range=24h|7d|30d (default 24h), or from=…&to=… (ISO 8601; `to` defaults to now) for a chosen range."""
    start_raw, end_raw = (params.get("from") or "").strip(), (params.get("to") or "").strip()
    name = params.get("range") or ("custom" if start_raw else "24h")
    if name not in RANGES and name != "custom":
        raise ReportError(f"range must be one of {', '.join([*RANGES, 'custom'])}")
    try:
        # Checked even when a named range wins over them: a typo in from or to is said, not silently ignored.
        start = parse_iso(start_raw) if start_raw else None
        end = parse_iso(end_raw) if end_raw else now
    except ValueError as exc:
        raise ReportError(str(exc)) from exc
    if name in RANGES:
        return Period(name, now - RANGES[name], now)
    if start is None:
        raise ReportError("a custom range needs from (and optionally to), as ISO 8601 date and time")
    if end <= start:
        raise ReportError("to must be after from")
    if end - start > MAX_SPAN:
        raise ReportError("a report covers at most 366 days")
    return Period("custom", start, end)


def scope_of(params: Mapping[str, str]) -> Scope:
    raw = params.get("scope") or "site"
    for scope in SCOPES:
        if raw == scope:
            return scope
    raise ReportError(f"scope must be one of {', '.join(SCOPES)}")


@dataclass(frozen=True, slots=True)
class Line:
    """One group as a person reads it: its name, where it is, and its figures."""

    key: str
    name: str
    region: str
    site: str
    hostname: str
    nvr_id: int | None
    camera_id: int | None
    row: Row

    @property
    def totals(self) -> Totals:
        return self.row.totals

    def bar(self) -> list[Segment]:
        t = self.totals
        parts = {"available": t.available, "down": t.down, "maintenance": t.maintenance,
                 "parent_down": t.parent_down, "unknown": t.unknown + t.hub_down}  # fmt: skip
        return segments({k: round(v * 1000) for k, v in parts.items()}, BAR_LEGEND)  # ms: tiny shares still show

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "name": self.name, "region": self.region, "site": self.site,
                "hostname": self.hostname or None, "nvr_id": self.nvr_id, "camera_id": self.camera_id,
                **figures(self.row)}  # fmt: skip

    def csv(self, scope: str) -> list[Any]:
        t = self.as_json()
        return [scope, self.key, _cell(self.name), _cell(self.region), _cell(self.site), _cell(self.hostname),
                t["devices"], _num(t["availability"]), t["counted_s"], t["up_s"], t["stale_s"], t["degraded_s"],
                t["down_s"], t["maintenance_s"], t["parent_down_s"], t["unknown_s"], t["hub_down_s"],
                _num(t["nvr_availability"]), _num(t["camera_availability"]), t["incidents"],
                _num(t["mttr_s"])]  # fmt: skip


def figures(row: Row) -> dict[str, Any]:
    nvrs, cameras = row.nvrs.availability, row.cameras.availability
    return {"devices": len(row.devices), **row.totals.as_json(),
            "nvr_availability": None if nvrs is None else round(nvrs, 4),
            "camera_availability": None if cameras is None else round(cameras, 4),
            "incidents": row.incidents, "mttr_s": None if row.mttr is None else round(row.mttr, 3)}  # fmt: skip


def _cell(text: str) -> str:
    # A spreadsheet runs a cell that starts with one of these as a formula (CSV injection): make it text.
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


@dataclass(frozen=True, slots=True)
class Report:
    scope: Scope
    period: Period
    lines: list[Line]
    fleet: Row
    generated_at: float

    def as_json(self) -> dict[str, Any]:
        return {"scope": self.scope, **self.period.as_json(), "generated_at": iso(self.generated_at),
                "fleet": figures(self.fleet), "groups": [line.as_json() for line in self.lines],
                "count": len(self.lines)}  # fmt: skip

    def csv_rows(self) -> list[list[Any]]:
        return [list(CSV_COLUMNS), *(line.csv(self.scope) for line in self.lines)]

    @property
    def chart(self) -> list[Line]:
        return self.lines[:CHART_BARS]

    @property
    def table(self) -> list[Line]:
        return self.lines[:TABLE_ROWS]

    @property
    def filename(self) -> str:
        day = (iso(self.period.start) or "")[:10]
        return f"availability-{self.scope}-{self.period.name}-{day}.csv"


async def build(database: Database, scope: Scope, chosen: Period, now: float) -> Report:
    found = await sql.intervals(database, chosen.start, chosen.end, MAX_INTERVALS)
    if found is None:
        raise ReportError(f"this range holds more than {MAX_INTERVALS:,} state changes; choose a shorter one")
    outages = await sql.outages(database, chosen.start, chosen.end, MAX_OUTAGES)
    rows, fleet = report(found, outages, scope, chosen.start, chosen.end, now)
    names = await sql.labels(database, [r.key for r in rows]) if scope in ("nvr", "camera") else {}
    return Report(scope, chosen, [_line(scope, r, names) for r in rows], fleet, now)


def _line(scope: Scope, row: Row, names: Mapping[str, Facts]) -> Line:
    if scope in ("nvr", "camera"):
        f = names.get(row.key)
        if f is None:  # pruned from the fleet tables while its history is still kept
            return Line(row.key, row.key, "", "", "", None, None, row)
        return Line(row.key, f.name, f.region, f.site, f.hostname, f.nvr_id, f.camera_id, row)
    if scope == "site":
        return Line(row.key, row.site or "(no site)", row.region, row.site, "", None, None, row)
    return Line(row.key, row.key or "(no region)", row.key, "", "", None, None, row)
