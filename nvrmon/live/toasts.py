"""Stage 4, notifications: the toasts of one flush, a burst folded into one that still names what changed."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from typing import Any
from urllib.parse import urlencode

from nvrmon.models import Toast

NAMED = 2  # devices named in a burst's summary per group; the rest are counted and linked


def summarise(toasts: list[Toast], limit: int = 4) -> list[Toast]:
    """A burst (an NVR with 64 cameras going down) becomes one toast, not 65, naming the first few devices.

    The counts stay in "N went offline" form (ui.js folds summaries by them); the link opens the list page filtered
    to the larger group, where the devices not named can be seen."""
    if len(toasts) <= limit:
        return toasts
    degraded = [t for t in toasts if t.change == "degraded"]
    recovered = [t for t in toasts if t.change == "recovered"]
    # A wiped recorder's cameras all go missing at once: they are said as missing, and linked to the missing ones.
    missing = [t for t in toasts if t.status == "missing"]
    down = [t for t in toasts if t.level == "error" and not t.change and t.status != "missing"]
    up = [t for t in toasts if t.level == "success" and not t.change]
    other = len(toasts) - len(down) - len(up) - len(degraded) - len(recovered) - len(missing)
    parts = [
        _group(len(missing), "went missing", missing),
        _group(len(down), "went offline", down),
        _group(len(up), "came online", up),
        _group(len(degraded), "degraded", degraded),
        _group(len(recovered), "no longer degraded", recovered),
        f"{other} alerts" if other else "",
    ]
    level = "error" if down or missing else "warning" if other or degraded else "success"
    groups = ((missing, "missing"), (down, "offline"), (up, "online"), (degraded, "degraded"))
    biggest, status = max(groups, key=lambda group: len(group[0]))
    return [Toast(level, f"{len(toasts)} changes", "; ".join(p for p in parts if p), link=_link(biggest, status))]


def _group(count: int, verb: str, toasts: list[Toast]) -> str:
    if not count:
        return ""
    names = [t.device for t in toasts if t.device]
    if not names:
        return f"{count} {verb}"
    shown = names[:NAMED]
    rest = count - len(shown)
    listed = ", ".join(shown) + (f" and {rest} more" if rest else "")
    return f"{count} {verb}: {listed}"


def _link(toasts: list[Toast], status: str) -> str:
    """The list page showing the group: cameras or NVRs (whichever most of it is), filtered by the new status."""
    kinds = Counter(t.kind for t in toasts if t.kind)
    if not kinds:
        return ""
    kind = kinds.most_common(1)[0][0]
    return f"/{'cameras' if kind == 'camera' else 'nvrs'}?{urlencode({'status': status})}"


def wire(toast: Toast) -> dict[str, Any]:
    """A toast as it travels to every browser, in every change message: its empty fields left out (ui.js reads a
    missing field as empty), which about halves a camera flip's notification."""
    return {key: value for key, value in asdict(toast).items() if value or key in ("level", "title")}
