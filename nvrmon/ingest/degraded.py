"""Stage 2, device truth: which health facts make an online NVR or camera degraded, in words, and applying them."""

from __future__ import annotations

import re
import time

from nvrmon.devices import CameraHealth, NvrHealth, StreamDetail, days_between
from nvrmon.ingest.batch import Effects
from nvrmon.ingest.session import AgentSession
from nvrmon.protocol import Health
from nvrmon.settings import Settings
from nvrmon.store.fleet import NewEvent, Transaction

MAX_WORDS = 200  # like an agent's reason: a row or toast shows it whole
MAX_DISKS_NAMED = 3


def clock_time(ts: float, now: float) -> str:
    """When, in the hub's local time: "14:02" today-ish, "28 Nov 14:02" when longer ago than a day."""
    moment = time.localtime(ts)
    return time.strftime("%H:%M" if now - ts < 86400 else "%d %b %H:%M", moment).lstrip("0")


def span(seconds: float) -> str:
    """A clock error in its largest sensible unit: "93 s", "12 min", "5 h", "20458 d"."""
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def clock(skew: float | None, settings: Settings) -> list[str]:
    if skew is None or not settings.degraded_clock_skew or abs(skew) <= settings.degraded_clock_skew:
        return []
    return [f"clock {span(skew)} {'ahead' if skew > 0 else 'behind'}"]


def retained(oldest: float | None, settings: Settings, now: float) -> list[str]:
    want = settings.degraded_min_retention_days
    days = days_between(oldest, now)
    if days is None or not want or days >= want:
        return []
    whole = int(days)
    return [f"{whole} {'day' if whole == 1 else 'days'} retained (want {want:g})"]


def frames(stream: StreamDetail, settings: Settings) -> list[str]:
    ratio, fps, nominal = settings.degraded_fps_ratio, stream.fps, stream.nominal_fps
    if not ratio or fps is None or not nominal or fps >= nominal * ratio:
        return []
    return [f"{fps:.0f} fps (want {nominal:g})"]


def camera_words(facts: CameraHealth | None, detail: StreamDetail, settings: Settings, now: float) -> str:
    """Why a camera is degraded ("" when it is not): recording stopped, its clock, its retention, its frame rate."""
    words: list[str] = []
    if facts is not None:
        if facts.recording == "not_recording":
            since = facts.recording_since
            words.append("not recording" + (f" since {clock_time(since, now)}" if since else ""))
        words += clock(facts.clock_skew_s, settings) + retained(facts.oldest_recording, settings, now)
    stream = facts.stream if facts is not None and facts.stream else detail
    return join(words + frames(stream, settings))


def nvr_words(facts: NvrHealth, settings: Settings, now: float) -> str:
    """Why an NVR is degraded ("" when it is not): failing disks, nearly full disks, its clock, its retention."""
    words: list[str] = []
    for state in ("failed", "failing"):
        bad = [disk.id for disk in facts.disks if disk.state == state]
        if bad:
            more = f" (+{len(bad) - MAX_DISKS_NAMED} more)" if len(bad) > MAX_DISKS_NAMED else ""
            words.append(f"{', '.join(bad[:MAX_DISKS_NAMED])}{more} {state}")
    if settings.degraded_disk_used_pct:
        for disk in facts.disks:
            used = disk.used_pct
            if used is not None and used > settings.degraded_disk_used_pct and disk.state not in ("failed", "failing"):
                words.append(f"{disk.id} {used:.0f} % full")
    return join(words + clock(facts.clock_skew_s, settings) + retained(facts.oldest_recording, settings, now))


def join(words: list[str]) -> str:
    text = "; ".join(words)
    return text if len(text) <= MAX_WORDS else text[: MAX_WORDS - 1] + "…"


def shape(text: str) -> str:
    """The kinds of problem, without their figures: a clock 93 s then 95 s ahead is one degraded state, not two."""
    return re.sub(r"\d+(?:[.:]\d+)*", "#", text).replace("# day ", "# days ")


async def apply_health(
    tx: Transaction, session: AgentSession, nvr_id: int, work: Health, settings: Settings, out: Effects
) -> None:
    """Store the facts (latest wins) and re-derive every camera's and the NVR's degraded words. Only changed words
    are stamped (pushed); a change of kind is an event and a toast. Facts about cameras the hub doesn't know (the
    message raced a list change) are ignored."""
    await out.flush_flips(tx)  # statuses as the frames before this one left them
    state = await tx.health_state(nvr_id)
    by_ext = {camera.ext_id: camera for camera in state.cameras}
    facts = {item.camera_id: item for item in work.cameras if item.camera_id in by_ext}
    await tx.replace_health(nvr_id, work.nvr, [(by_ext[ext].id, item) for ext, item in facts.items()])
    changed: list[tuple[int, str]] = []
    for camera in state.cameras:
        words = camera_words(facts.get(camera.ext_id), camera.detail, settings, tx.now)
        if words == camera.degraded:
            continue
        changed.append((camera.id, words))
        if camera.status == "online" and shape(words) != shape(camera.degraded):
            about = f"Camera {camera.name} on {session.hostname}"
            _announce(out, about, camera.name, "camera", words, nvr_id, camera.id)
    words = nvr_words(work.nvr, settings, tx.now)
    nvr = (nvr_id, words) if words != state.nvr_degraded else None
    await tx.set_degraded(nvr, changed)
    if changed:
        await tx.touch_nvr(nvr_id)  # its count of degraded cameras
    if nvr is not None and shape(words) != shape(state.nvr_degraded):
        _announce(out, f"NVR {session.hostname}", session.hostname, "nvr", words, nvr_id, None)


def _announce(out: Effects, about: str, device: str, kind: str, words: str, nvr_id: int, camera_id: int | None) -> None:
    label = f"Camera {device}" if kind == "camera" else device
    if words:
        out.events.append(NewEvent("status", "warning", f"{about} is degraded: {words}", nvr_id, camera_id))
        out.notify("warning", f"{label} degraded", words, device, kind, "degraded")
    else:
        out.events.append(NewEvent("status", "info", f"{about} is no longer degraded", nvr_id, camera_id))
        out.notify("success", f"{label} healthy again", "no longer degraded", device, kind, "recovered")
