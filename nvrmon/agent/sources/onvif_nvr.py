"""Agent side, the ONVIF NVR source: an NVR's channels (video sources and profiles), their recording state from
the Recording services, stream URLs, and the NVR's clock, over onvif-zeep-async."""

from __future__ import annotations

import asyncio
from typing import Any

from nvrmon.agent.facts import DeviceFacts, SourceCamera, SourceReport, StreamFacts
from nvrmon.agent.sources import SourceConfig
from nvrmon.agent.sources.onvif_recording import CONCURRENT_CALLS, Recording, field, oldest, overall, recordings
from nvrmon.agent.sources.onvif_session import OnvifSession
from nvrmon.agent.sources.reasons import SourceError, clean

UNREACHABLE = ("onvif timeout", "connection refused", "dns lookup failed", "host unreachable")


async def poll(config: SourceConfig, *, timeout: float) -> SourceReport:
    """One poll within `timeout` seconds (each call, and all of them together): GetSystemDateAndTime,
    GetDeviceInformation, GetServices, GetVideoSources + GetProfiles (Media), GetStreamUri per channel, then the
    recordings (GetRecordings, GetRecordingJobs, GetRecordingJobState, GetRecordingInformation, GetRecordingSummary)."""
    try:
        session = OnvifSession(config.url, timeout=timeout, username=config.username, password=config.password)
    except SourceError as error:
        return SourceReport(ok=False, reason=error.reason)
    skew: float | None = None
    try:
        async with asyncio.timeout(timeout), session:
            try:
                skew = await session.read_clock()
            except SourceError as error:
                if error.reason in UNREACHABLE:
                    raise
            info = await session.call("devicemgmt", "GetDeviceInformation")
            await session.discover()
            if not session.offers("media"):
                raise SourceError("onvif: device offers no media service")
            sources = (await session.call("media", "GetVideoSources") or [])[: config.max_cameras]
            profiles = await session.call("media", "GetProfiles") or []
            first = first_profiles(profiles)
            uris = await stream_uris(session, [first[token] for token in tokens(sources) if token in first])
            try:
                found = await recordings(session)
                since_first = await oldest(session) if found else None
            except SourceError:
                found, since_first = [], None
    except TimeoutError:
        return SourceReport(ok=False, reason="onvif timeout", clock_skew_s=skew)
    except SourceError as error:
        return SourceReport(ok=False, reason=error.reason, clock_skew_s=skew)
    cameras = tuple(channel(token, first.get(token), uris, found, skew) for token in tokens(sources))
    return SourceReport(
        ok=True, cameras=cameras, clock_skew_s=skew, oldest_recording=since_first,
        model=clean(field(info, "Model")), firmware=clean(field(info, "FirmwareVersion")),
    )  # fmt: skip


def tokens(sources: list[Any]) -> list[str]:
    return [str(source.token) for source in sources if getattr(source, "token", None)]


def first_profiles(profiles: list[Any]) -> dict[str, Any]:
    """Video source token -> its first media profile (the main stream, by ONVIF convention the first listed)."""
    found: dict[str, Any] = {}
    for profile in profiles:
        source = getattr(getattr(profile, "VideoSourceConfiguration", None), "SourceToken", None)
        if source is not None:
            found.setdefault(str(source), profile)
    return found


async def stream_uris(session: OnvifSession, profiles: list[Any]) -> dict[str, str]:
    gate = asyncio.Semaphore(CONCURRENT_CALLS)
    setup = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}

    async def uri(profile: Any) -> tuple[str, str]:
        async with gate:
            try:
                answer = await session.call(
                    "media", "GetStreamUri", {"StreamSetup": setup, "ProfileToken": profile.token}
                )
            except SourceError:
                return str(profile.token), ""
        return str(profile.token), str(getattr(answer, "Uri", "") or "")

    return dict(await asyncio.gather(*(uri(profile) for profile in profiles if field(profile, "token"))))


def channel(token: str, profile: Any, uris: dict[str, str], found: list[Recording], skew: float | None) -> SourceCamera:
    mine = [r for r in found if r.source_id == token]
    recording, since = overall(mine)
    # A recording job in Error while the NVR answers: the NVR cannot reach this channel's camera.
    online = not any(r.job_error for r in mine)
    reason = "" if online else "onvif: recording job in error (camera unreachable from the NVR)"
    encoder = getattr(profile, "VideoEncoderConfiguration", None)
    resolution = getattr(encoder, "Resolution", None)
    rate = getattr(getattr(encoder, "RateControl", None), "FrameRateLimit", None)
    earliest = [r.earliest for r in mine if r.earliest is not None]
    return SourceCamera(
        id=clean(token),
        name=clean(str(getattr(profile, "Name", "") or token)),
        online=online,
        reason=reason,
        stream=StreamFacts(
            ok=online,
            reason=reason,
            codec=clean(str(getattr(encoder, "Encoding", "") or ""))[:32],
            width=getattr(resolution, "Width", None),
            height=getattr(resolution, "Height", None),
            nominal_fps=float(rate) if rate else None,
        ),  # fmt: skip
        device=DeviceFacts(
            clock_skew_s=skew,
            recording=recording,
            recording_since=since,
            oldest_recording=min(earliest) if earliest else None,
        ),  # fmt: skip
        rtsp=uris.get(str(getattr(profile, "token", "")), "") if profile is not None else "",
    )
