"""Agent side, ONVIF recording state: which recordings a device (camera edge storage or NVR) is writing, since
when they stopped, and how far back they reach (Recording Control and Recording Search services)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nvrmon.agent.sources.onvif_session import OnvifSession
from nvrmon.agent.sources.reasons import SourceError

MAX_RECORDINGS = 256  # a device listing more is read only this far
CONCURRENT_CALLS = 4  # per device: NVRs answer one recording at a time on a small CPU


@dataclass(frozen=True, slots=True)
class Recording:
    token: str
    source_id: str  # the video source (channel) it records, as the device names it
    state: str = "unknown"  # recording | not_recording | unknown
    job_error: bool = False  # the job says Error: typically the channel's camera is unreachable
    earliest: float | None = None
    latest: float | None = None


async def recordings(session: OnvifSession) -> list[Recording]:
    """Every recording with its job state and time span; [] when the device offers no recording service."""
    if not session.offers("recording"):
        return []
    items = [i for i in await session.call("recording", "GetRecordings") or [] if field(i, "RecordingToken")]
    items = items[:MAX_RECORDINGS]
    try:
        jobs = await session.call("recording", "GetRecordingJobs") or []
    except SourceError:
        jobs = []
    jobs = [job for job in jobs if field(job, "JobToken") and field(job, "JobConfiguration", "RecordingToken")]
    gate = asyncio.Semaphore(CONCURRENT_CALLS)
    states = await asyncio.gather(*(job_state(session, job, gate) for job in jobs[:MAX_RECORDINGS]))
    by_recording: dict[str, list[str]] = {}
    for job, state in zip(jobs, states, strict=False):
        by_recording.setdefault(field(job, "JobConfiguration", "RecordingToken"), []).append(state)
    spans = await asyncio.gather(*(span(session, field(item, "RecordingToken"), gate) for item in items))
    found = []
    for item, (earliest, latest) in zip(items, spans, strict=True):
        token = field(item, "RecordingToken")
        job_states = by_recording.get(token, [])
        if any(state in ("Active", "PartiallyActive") for state in job_states):
            state = "recording"
        elif job_states:
            state = "not_recording"
        else:
            state = "unknown"  # no job we can see: recorded by something else, or never
        source = getattr(getattr(item, "Configuration", None), "Source", None)
        found.append(
            Recording(
                token=token,
                source_id=str(getattr(source, "SourceId", "") or ""),
                state=state,
                job_error="Error" in job_states,
                earliest=earliest,
                latest=latest,
            )  # fmt: skip
        )
    return found


async def job_state(session: OnvifSession, job: Any, gate: asyncio.Semaphore) -> str:
    """The job's live state (GetRecordingJobState: Idle | Active | PartiallyActive | Error), else its mode."""
    async with gate:
        try:
            answer = await session.call("recording", "GetRecordingJobState", {"JobToken": field(job, "JobToken")})
            return field(answer, "State")
        except SourceError:
            return field(job, "JobConfiguration", "Mode")


async def span(session: OnvifSession, token: str, gate: asyncio.Semaphore) -> tuple[float | None, float | None]:
    if not session.offers("search"):
        return None, None
    async with gate:
        try:
            info = await session.call("search", "GetRecordingInformation", {"RecordingToken": token})
        except SourceError:
            return None, None
    return stamp(getattr(info, "EarliestRecording", None)), stamp(getattr(info, "LatestRecording", None))


async def oldest(session: OnvifSession) -> float | None:
    """The start of the oldest recorded data (GetRecordingSummary's DataFrom), or None."""
    if not session.offers("search"):
        return None
    try:
        summary = await session.call("search", "GetRecordingSummary")
    except SourceError:
        return None
    return stamp(getattr(summary, "DataFrom", None))


def overall(found: list[Recording]) -> tuple[str, float | None]:
    """A device's recording state and since when, from its recordings: stopped ones say when they stopped."""
    if any(r.state == "recording" for r in found):
        return "recording", None
    if any(r.state == "not_recording" for r in found):
        stopped = [r.latest for r in found if r.latest is not None]
        return "not_recording", max(stopped) if stopped else None
    return "unknown", None


def field(value: object, *path: str) -> str:
    """A nested text of a SOAP answer, "" where any level is missing (devices leave out what they like)."""
    for name in path:
        value = getattr(value, name, None)
    return "" if value is None else str(value)


def stamp(value: object) -> float | None:
    return value.timestamp() if isinstance(value, datetime) and value.tzinfo is not None else None
