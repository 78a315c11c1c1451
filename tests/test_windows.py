"""Maintenance windows as values: when one-off and weekly windows are active, and when that next changes."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

from nvrmon.incidents import Match, Window

LONDON = ZoneInfo("Europe/London")


def at(text: str, zone: tzinfo = LONDON) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


def weekly(days: tuple[int, ...], start: str, end: str, **kw: float | None) -> Window:
    return Window(1, Match(site="Depot"), kw.get("starts_at") or 0.0, kw.get("ends_at"), "backup", "alice", 0.0,
                  days, start, end, "Europe/London")  # fmt: skip


def test_one_off_window_is_active_from_start_until_end() -> None:
    window = Window(1, Match(nvr="nvr-a"), 100.0, 200.0, "upgrade", "alice", 0.0)
    assert [window.active(t) for t in (99.9, 100.0, 199.9, 200.0)] == [False, True, True, False]
    assert (window.next_change(50.0), window.next_change(150.0), window.next_change(250.0)) == (100.0, 200.0, None)


def test_weekly_window_past_midnight_ends_the_next_day() -> None:
    monday_night = weekly((0,), "22:00", "06:00")  # 2026-11-30 is a Monday
    assert monday_night.active(at("2026-11-30T23:30"))
    assert monday_night.active(at("2026-12-01T05:59"))
    assert not monday_night.active(at("2026-12-01T06:00"))
    assert not monday_night.active(at("2026-12-01T23:30"))  # Tuesday night is not in it
    assert monday_night.next_change(at("2026-12-01T07:00")) == at("2026-12-07T22:00")
    assert monday_night.next_change(at("2026-11-30T23:00")) == at("2026-12-01T06:00")


def test_weekly_window_follows_its_time_zone_across_the_clock_change() -> None:
    sundays = weekly((6,), "09:00", "10:00")  # BST starts on Sunday 2026-03-29: London is then UTC+1
    assert sundays.active(at("2026-03-22T09:30", UTC))
    assert sundays.active(at("2026-03-29T08:30", UTC))
    assert not sundays.active(at("2026-03-29T09:30", UTC))


def test_weekly_window_is_bounded_by_its_span() -> None:
    bounded = weekly(
        (0, 1, 2, 3, 4), "09:00", "17:00", starts_at=at("2026-12-02T00:00"), ends_at=at("2026-12-04T12:00")
    )
    assert not bounded.active(at("2026-12-01T10:00"))  # before the span
    assert bounded.active(at("2026-12-02T10:00"))
    assert not bounded.active(at("2026-12-02T18:00"))
    assert not bounded.active(at("2026-12-04T13:00"))  # after it
    assert bounded.next_change(at("2026-12-04T10:00")) == at("2026-12-04T12:00")
    assert bounded.next_change(at("2026-12-05T10:00")) is None


def test_matchers_combine_and_cover_cameras_of_an_nvr() -> None:
    site_in_region = Match(site="Depot", region="North")
    assert site_in_region.covers_nvr("nvr-a", "Depot", "North")
    assert not site_in_region.covers_nvr("nvr-a", "Depot", "South")
    assert Match(nvr="nvr-a").covers_camera(7, "nvr-a", "Depot", "North")
    assert Match(camera=7).covers_camera(7, "nvr-a", "Depot", "North")
    assert not Match(camera=7).covers_camera(8, "nvr-a", "Depot", "North")
    assert not Match(camera=7).covers_nvr("nvr-a", "Depot", "North")  # a camera's window leaves its NVR alone
