"""Alerts, wording: one bounded message per site group, naming what is down, however many devices that is."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from nvrmon.alerts.feed import NOT_DOWN, Incident

MAX_TITLE = 200
MAX_BODY = 4000
MAX_LINES = 20  # incidents listed in a body; the rest are counted
NAMES = 3  # device names in a headline


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    body: str
    level: str  # Apprise notify type: failure | warning | success | info
    incidents: tuple[int, ...]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:NAMES])
    return f"{shown}, … +{len(names) - NAMES}" if len(names) > NAMES else shown


def headline(site: str, incidents: Sequence[Incident], cameras_of: Mapping[int, int], word: str | None = None) -> str:
    """`Site 1: 3 NVRs offline (site1-nvr1, …), 48 cameras`: NVRs by name, cameras counted (those of a down NVR
    included: they are down with it). `word` replaces the devices' status (e.g. "recovered")."""
    nvrs: dict[int, tuple[str, str]] = {}
    cameras: dict[tuple[int, int], tuple[str, str]] = {}
    for incident in incidents:
        for device in incident.devices:
            if word is None and device.status in NOT_DOWN:
                continue  # recovered inside a still open incident: not what is down
            label = device.hostname or device.name
            if device.camera_id is None:
                nvrs.setdefault(device.nvr_id, (label, device.status))
            else:
                cameras.setdefault((device.nvr_id, device.camera_id), (device.name or label, device.status))
    camera_count = len({key for key in cameras if key[0] not in nvrs})
    for nvr_id in nvrs:
        listed = sum(1 for key in cameras if key[0] == nvr_id)
        camera_count += max(listed, cameras_of.get(nvr_id, 0))
    parts: list[str] = []
    if nvrs:
        statuses = sorted({status for _, status in nvrs.values()})
        status = word or "/".join(statuses)
        parts.append(f"{_plural(len(nvrs), 'NVR')} {status} ({_names([n for n, _ in nvrs.values()])})")
        if camera_count:
            parts.append(_plural(camera_count, "camera"))
    elif cameras:
        statuses = sorted({status for _, status in cameras.values()})
        status = word or "/".join(statuses)
        parts.append(f"{_plural(len(cameras), 'camera')} {status} ({_names([n for n, _ in cameras.values()])})")
    else:
        parts.append(_plural(len(incidents), "incident"))
    return _bounded(f"{site}: {', '.join(parts)}", MAX_TITLE)


def _when(ts: float) -> str:
    return time.strftime("%H:%M UTC", time.gmtime(ts))


def _duration(seconds: float) -> str:
    minutes = int(max(seconds, 0) // 60)
    if minutes < 1:
        return f"{int(max(seconds, 0))} s"
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def _line(incident: Incident) -> str:
    ack = f"; acknowledged by {incident.acknowledged_by}" if incident.state == "acknowledged" else ""
    return f"- {incident.severity}: {incident.title} (since {_when(incident.opened_at)}{ack})"


def _body(lines: Sequence[str], more: str) -> str:
    kept = list(lines[:MAX_LINES])
    if len(lines) > MAX_LINES:
        kept.append(f"… and {len(lines) - MAX_LINES} more {more}")
    return _bounded("\n".join(kept), MAX_BODY)


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _level(incidents: Sequence[Incident]) -> str:
    return "failure" if any(i.severity == "critical" for i in incidents) else "warning"


def group(
    site: str, current: Sequence[Incident], resolved: Sequence[Incident], new: set[int],
    cameras_of: Mapping[int, int], now: Callable[[], float] = time.time,
) -> Message:  # fmt: skip
    """What a site's group says now: what is down (new ones first), what recovered since the last message; or, when
    nothing is down any more, one "resolved"."""
    ids = tuple(i.id for i in (*current, *resolved))
    if not current:
        lines = [f"- recovered: {i.title} (down {_duration((i.resolved_at or now()) - i.opened_at)})" for i in resolved]
        title = "RESOLVED " + headline(site, resolved, cameras_of, "recovered")
        return Message(_bounded(title, MAX_TITLE), _body(lines, "recovered"), "success", ids)
    ordered = sorted(current, key=lambda i: (i.id not in new, i.opened_at))
    lines = [("NEW " if i.id in new else "") + _line(i) for i in ordered]
    if resolved:
        lines.append("Recovered since the last message:")
        lines += [f"- {i.title}" for i in resolved[:MAX_LINES]]
    return Message(headline(site, current, cameras_of), _body(lines, "incidents"), _level(current), ids)


def reminder(site: str, unacknowledged: Sequence[Incident], cameras_of: Mapping[int, int]) -> Message:
    """A repeat for incidents nobody has acknowledged yet (acknowledged ones are left out)."""
    title = "STILL DOWN, unacknowledged: " + headline(site, unacknowledged, cameras_of)
    lines = [_line(i) for i in unacknowledged]
    return Message(
        _bounded(title, MAX_TITLE), _body(lines, "incidents"), "warning", tuple(i.id for i in unacknowledged)
    )


def test(channel: str) -> Message:
    return Message(
        f"nvrmon test message for channel {channel}",
        "If you read this, nvrmon's alerts reach this channel.",
        "info",
        (),
    )
