"""Availability figures from hand-made intervals: each expected number is worked out by hand in the test."""

from __future__ import annotations

import pytest

from nvrmon.availability import (
    Interval,
    Outage,
    Row,
    Totals,
    camera_state,
    clip,
    incident_figures,
    nvr_state,
    report,
)
from nvrmon.web.report_data import Line, Period, ReportError, period, scope_of

CAM = "camera:7"


def camera_story(device: str = CAM, site: str = "North 1") -> list[Interval]:
    """Online 0-100, offline 100-130, offline but in a maintenance window 130-160, its NVR offline 160-200."""
    return [
        Interval(device, "up", False, 0, 100, "North", site),
        Interval(device, "down", False, 100, 130, "North", site),
        Interval(device, "down", True, 130, 160, "North", site),
        Interval(device, "parent_down", False, 160, 200, "North", site),
    ]


def totals(intervals: list[Interval], start: float, end: float, now: float = 1e9) -> Totals:
    _, fleet = report(intervals, [], "camera", start, end, now)
    return fleet.totals


def test_availability_leaves_maintenance_and_parent_down_out() -> None:
    t = totals(camera_story(), 0, 200)
    assert (t.up, t.down, t.maintenance, t.parent_down) == (100, 30, 30, 40)
    assert t.counted == 130  # 200 - 30 maintenance - 40 parent-down
    assert t.availability == pytest.approx(100 * 100 / 130)


def test_availability_clips_intervals_to_the_range() -> None:
    t = totals(camera_story(), 50, 150)
    assert (t.up, t.down, t.maintenance, t.parent_down) == (50, 30, 20, 0)
    assert t.availability == pytest.approx(100 * 50 / 80)


def test_open_interval_counts_until_now_and_never_past_it() -> None:
    open_one = Interval(CAM, "down", False, 150, None)
    assert clip(open_one, 0, 1000, now=180) == 30
    assert clip(open_one, 0, 160, now=180) == 10
    assert clip(open_one, 200, 300, now=180) == 0


def test_unknown_and_hub_down_time_is_reported_apart_and_left_out() -> None:
    story = [
        Interval(CAM, "up", False, 0, 60),
        Interval(CAM, "hub_down", False, 60, 90),
        Interval(CAM, "unknown", False, 90, 100),
        Interval(CAM, "down", False, 100, 120),
    ]
    t = totals(story, 0, 120)
    assert (t.hub_down, t.unknown, t.excluded) == (30, 10, 40)
    assert t.availability == pytest.approx(100 * 60 / 80)


def test_a_range_spent_in_maintenance_has_no_figure() -> None:
    t = totals([Interval(CAM, "down", True, 0, 50)], 0, 50)
    assert t.availability is None and t.maintenance == 50


def test_stale_and_degraded_count_as_available() -> None:
    story = [Interval("nvr:1", "stale", False, 0, 10), Interval(CAM, "degraded", False, 0, 30),
             Interval(CAM, "down", False, 30, 40)]  # fmt: skip
    t = totals(story, 0, 40)
    assert t.available == 40 and t.availability == pytest.approx(80.0)


def test_site_figure_is_time_weighted_over_its_devices() -> None:
    story = [
        Interval("nvr:1", "up", False, 0, 100, "North", "North 1"),
        Interval("camera:1", "up", False, 0, 100, "North", "North 1"),
        Interval("camera:2", "up", False, 0, 50, "North", "North 1"),
        Interval("camera:2", "down", False, 50, 100, "North", "North 1"),
        Interval("camera:3", "down", False, 0, 100, "South", "South 1"),
    ]
    rows, fleet = report(story, [], "site", 0, 100, 1e9)
    assert [r.key for r in rows] == ["South/South 1", "North/North 1"]  # worst first
    north = rows[1]
    assert north.totals.availability == pytest.approx(100 * 250 / 300)
    assert north.nvrs.availability == 100 and north.cameras.availability == pytest.approx(75.0)
    assert len(north.devices) == 3 and (north.region, north.site) == ("North", "North 1")
    assert fleet.totals.availability == pytest.approx(100 * 250 / 400)
    by_region, _ = report(story, [], "region", 0, 100, 1e9)
    assert {r.key: r.totals.availability for r in by_region} == {"South": 0.0, "North": pytest.approx(250 / 3)}


def test_nvr_and_camera_scopes_keep_their_own_kind() -> None:
    story = [*camera_story("camera:1"), Interval("nvr:1", "up", False, 0, 160), Interval("nvr:1", "down", False, 160,
                                                                                          200)]  # fmt: skip
    nvrs, _ = report(story, [], "nvr", 0, 200, 1e9)
    cameras, _ = report(story, [], "camera", 0, 200, 1e9)
    assert [(r.key, r.totals.availability) for r in nvrs] == [("nvr:1", 80.0)]
    assert [(r.key, r.totals.availability) for r in cameras] == [("camera:1", pytest.approx(100 * 100 / 130))]


def test_mttr_is_the_mean_of_resolved_incidents_opened_in_range() -> None:
    outages = [
        Outage(10, 40, False, "North", "North 1", frozenset({"nvr:1"})),  # 30 s
        Outage(50, 110, False, "North", "North 1", frozenset({"camera:7"})),  # 60 s
        Outage(120, None, False, "North", "North 1", frozenset({"nvr:1"})),  # still open: counted, no duration
        Outage(20, 30, True, "North", "North 1", frozenset({"nvr:2"})),  # merged into another: not its own outage
        Outage(-50, 5, False, "North", "North 1", frozenset({"nvr:1"})),  # opened before the range
    ]
    assert incident_figures(outages, 0, 200) == (3, 45.0)
    rows, fleet = report([], outages, "nvr", 0, 200, 1e9)
    assert (fleet.incidents, fleet.mttr) == (3, 45.0)
    assert [(r.key, r.incidents, r.mttr) for r in rows] == [("nvr:1", 2, 30.0)]
    assert incident_figures(outages, 130, 200) == (0, None)


def test_states_from_fleet_statuses() -> None:
    assert [nvr_state(s) for s in ("online", "stale", "offline", "unknown")] == ["up", "stale", "down", "unknown"]
    assert camera_state("offline", "online") == "parent_down"
    assert camera_state("unknown", "online") == "unknown"
    assert camera_state("stale", "offline") == "down"
    assert camera_state("online", "online") == "up"


def test_report_period_from_presets_or_a_chosen_range() -> None:
    now = 1_800_000_000.0
    assert period({}, now) == Period("24h", now - 86400, now)
    assert period({"range": "30d"}, now) == Period("30d", now - 30 * 86400, now)
    chosen = period({"from": "2026-12-01T10:00:00Z", "to": "2026-12-01T12:30:00+02:00"}, now)
    assert (chosen.name, chosen.end - chosen.start) == ("custom", 1800.0)
    assert period({"range": "custom", "from": "2026-12-01T10:00:00"}, now).end == now  # `to` defaults to now
    for bad, words in (
        ({"range": "1y"}, "range must be one of"),
        ({"range": "custom"}, "needs from"),
        ({"from": "soon"}, "not an ISO 8601"),
        ({"from": "2026-12-02", "to": "2026-12-01"}, "after"),
    ):
        with pytest.raises(ReportError, match=words):
            period(bad, now)
    with pytest.raises(ReportError, match="scope must be one of"):
        scope_of({"scope": "building"})


def test_csv_cells_a_spreadsheet_would_run_are_made_text() -> None:
    row = Row("camera:1")
    row.add(Interval("camera:1", "up", False, 0, 10), 10)
    line = Line("camera:1", "=HYPERLINK(1)", "North", "+site", "nvr-a", 1, 1, row)
    cells = line.csv("camera")
    assert cells[2:6] == ["'=HYPERLINK(1)", "North", "'+site", "nvr-a"]
    assert cells[7] == "100"  # availability_percent
