"""Stage 4, rendering: one Jinja2 environment, needing no request, shared by first paint (pages) and live pushes."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from nvrmon.incidents import span
from nvrmon.settings import Settings


def ago(ts: float, now: float | None = None) -> str:
    """Server-side relative time; the browser keeps it fresh from the element's datetime attribute."""
    if not ts:
        return "never"
    seconds = max(0, int((now or time.time()) - ts))
    if seconds < 5:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts else ""


def duration(seconds: float) -> str:
    """A span of time in its two largest units: "3 d 4 h", "2 h 5 min", "42 s" (the incident timeline's words)."""
    return span(seconds)


def filesize(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" or value >= 100 else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def disk_size(size: int | None) -> str:
    """Disk sizes as their makers count them (powers of 1000): "4 TB", "3.1 TB", "500 GB"."""
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if value >= 100 or value == int(value) else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def skew(seconds: float) -> str:
    """A clock's offset in words: "0.4 s ahead", "93 s behind", "in step"."""
    if abs(seconds) < 0.05:
        return "in step"
    size = abs(seconds)
    shown = f"{size:.1f}".removesuffix(".0") + " s" if size < 10 else f"{size:.0f} s" if size < 120 else duration(size)
    return f"{shown} {'ahead' if seconds > 0 else 'behind'}"


def num(value: int) -> str:
    """Thousands separated, for figures read across a room."""
    return f"{value:,}"


def percent(part: int, whole: int) -> int:
    return round(100 * part / whole) if whole else 0


def client_timings(settings: Settings) -> dict[str, int]:
    """What transport.js must know of the hub's timing, in ms; rendered on its script tag, so the two never disagree."""
    return {
        "heartbeat_ms": round(settings.sse_heartbeat * 1000),
        "poll_timeout_ms": round(settings.poll_timeout * 1000),
    }


class Renderer:
    def __init__(self, templates_dir: Path, static_dir: Path, settings: Settings | None = None) -> None:
        self.env = Environment(
            loader=FileSystemLoader(templates_dir),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        self.env.filters.update(ago=ago, iso=iso, duration=duration, filesize=filesize, num=num, disk_size=disk_size)
        self.env.filters.update(skew=skew)
        self.env.globals.update(percent=percent, static=self._static_urls(static_dir))
        self.env.globals.update(timings=client_timings(settings or Settings()))

    @staticmethod
    def _static_urls(static_dir: Path) -> dict[str, str]:
        # Content hashes in the query string let browsers cache static files forever yet pick up new releases.
        urls: dict[str, str] = {}
        for path in sorted(static_dir.glob("*")):
            if path.is_file():
                digest = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
                urls[path.name] = f"/static/{path.name}?v={digest}"
        return urls

    def warm_up(self) -> None:
        """Compile every template now rather than on the first page or push that needs it."""
        for name in self.env.list_templates(extensions=["html"]):
            self.env.get_template(name)

    def render(self, name: str, **context: Any) -> str:
        return self.env.get_template(name).render(**context)

    def macro(self, name: str, macro: str, *args: Any, **kwargs: Any) -> str:
        """Call one macro of a template (its module is compiled and cached once), e.g. the live-change wrappers."""
        return str(getattr(self.env.get_template(name).module, macro)(*args, **kwargs))
