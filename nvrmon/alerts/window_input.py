"""Alerts, maintenance input: a window from what an operator sent (the API's JSON or the page's form), checked."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import time
from typing import Any

from nvrmon.incidents import DAYS, MAX_REASON, Match, Window, check_zone, parse_iso

MATCH_KEYS = ("camera", "nvr", "site", "region")
MAX_NAME = 100
MAX_SPAN = 366 * 86400  # a one-off window longer than a year is a mistake (use a recurring one)


class WindowError(ValueError):
    """Input that makes no window; the message says what to fix."""


def _text(value: Any, what: str, limit: int = MAX_NAME) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise WindowError(f"{what} must be text")
    text: str = value.strip()
    if len(text) > limit:
        raise WindowError(f"{what} is longer than {limit} characters")
    return text


def parse_match(raw: Any) -> Match:
    if not isinstance(raw, Mapping):
        raise WindowError("match must be an object with any of: camera, nvr, site, region")
    unknown = sorted(set(raw) - set(MATCH_KEYS))
    if unknown:
        raise WindowError(f"match has unknown keys {', '.join(map(str, unknown))} (use camera, nvr, site, region)")
    camera = raw.get("camera")
    if isinstance(camera, str) and camera.strip():
        camera = camera.strip()
        if not camera.isdigit() or len(camera) > 12:
            raise WindowError("match.camera must be a camera id (a number)")
        camera = int(camera)
    elif camera in ("", None):
        camera = None
    elif not isinstance(camera, int) or isinstance(camera, bool) or camera < 1:
        raise WindowError("match.camera must be a camera id (a number)")
    match = Match(camera, _text(raw.get("nvr"), "match.nvr"), _text(raw.get("site"), "match.site"),
                  _text(raw.get("region"), "match.region"))  # fmt: skip
    if not match:
        raise WindowError("match needs at least one of camera, nvr, site, region")
    return match


def _instant(raw: Any, what: str) -> float | None:
    if raw in (None, ""):
        return None
    if not isinstance(raw, str) or len(raw) > 64:
        raise WindowError(f"{what} must be an ISO 8601 date and time, e.g. 2026-12-01T22:00:00Z")
    try:
        return parse_iso(raw)
    except ValueError as exc:
        raise WindowError(f"{what}: {exc}") from exc


def _clock(raw: Any, what: str) -> str:
    text = _text(raw, what, 8)
    try:
        return time.fromisoformat(text).strftime("%H:%M")
    except ValueError as exc:
        raise WindowError(f"{what} must be a time of day as HH:MM") from exc


def parse_window(data: Mapping[str, Any], actor: str, now: float) -> Window:
    """A window from {match, starts_at, ends_at, reason, recurring: {days, from, to, tz}}; starts_at defaults to now."""
    match = parse_match(data.get("match"))
    reason = _text(data.get("reason"), "reason", MAX_REASON)
    if not reason:
        raise WindowError("reason is required: say why these devices are in maintenance")
    starts_at = _instant(data.get("starts_at"), "starts_at") or now
    ends_at = _instant(data.get("ends_at"), "ends_at")
    recurring = data.get("recurring")
    days: tuple[int, ...] = ()
    time_from = time_to = ""
    tz = "UTC"
    if recurring not in (None, {}):
        if not isinstance(recurring, Mapping):
            raise WindowError("recurring must be an object: {days, from, to, tz}")
        raw_days = recurring.get("days")
        if not isinstance(raw_days, list) or not raw_days or not all(d in DAYS for d in raw_days):
            raise WindowError(f"recurring.days must list days among {', '.join(DAYS)}")
        days = tuple(sorted({DAYS.index(d) for d in raw_days}))
        time_from, time_to = (
            _clock(recurring.get("from"), "recurring.from"),
            _clock(recurring.get("to"), "recurring.to"),
        )
        if time_from == time_to:
            raise WindowError("recurring.from and recurring.to must differ")
        try:
            tz = check_zone(_text(recurring.get("tz") or "UTC", "recurring.tz", 64))
        except ValueError as exc:
            raise WindowError(str(exc)) from exc
        if recurring.get("cron"):
            raise WindowError("cron schedules are not supported; use recurring days and times")
    elif ends_at is None:
        raise WindowError("ends_at is required (or make the window recurring)")
    if ends_at is not None:
        if ends_at <= starts_at:
            raise WindowError("ends_at must be after starts_at")
        if not days and ends_at - starts_at > MAX_SPAN:
            raise WindowError("a one-off window may last at most 366 days")
        if ends_at <= now:
            raise WindowError("ends_at is in the past")
    return Window(0, match, starts_at, ends_at, reason, actor, now, days, time_from, time_to, tz)


def window_from_form(form: Mapping[str, str], actor: str, now: float) -> Window:
    """The maintenance page's form: one field per match key, UTC times from datetime-local inputs, day checkboxes."""
    match = {key: form.get(key, "") for key in MATCH_KEYS}
    data: dict[str, Any] = {"match": match, "reason": form.get("reason", ""),
                            "starts_at": form.get("starts_at", ""), "ends_at": form.get("ends_at", "")}  # fmt: skip
    days = [day for day in DAYS if form.get(f"day_{day}")]
    if days:
        data["recurring"] = {"days": days, "from": form.get("time_from", ""), "to": form.get("time_to", ""),
                             "tz": form.get("tz", "") or "UTC"}  # fmt: skip
    return parse_window(data, actor, now)
