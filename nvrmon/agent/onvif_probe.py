"""Agent side, the ONVIF probe: one camera's model, firmware, serial, clock skew and recording state over ONVIF."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from nvrmon.agent.facts import DeviceFacts
from nvrmon.agent.sources.onvif_recording import field, oldest, overall, recordings
from nvrmon.agent.sources.onvif_session import OnvifSession
from nvrmon.agent.sources.reasons import SourceError, clean

CALLS = 4  # the probe's budget is this many call timeouts (clock, device information, services, recordings)


@dataclass(frozen=True, slots=True)
class ProbeFailure:
    """Why the ONVIF probe failed, in words (e.g. "onvif 401 unauthorized"), with the clock skew when the device
    answered GetSystemDateAndTime, which needs no credentials."""

    reason: str
    clock_skew_s: float | None = None


async def probe_onvif(url: str, *, timeout: float) -> DeviceFacts | ProbeFailure:
    """Probe the device at `url` (http://user:pass@host:port); every call is bounded by `timeout` seconds and the
    whole probe by CALLS times that. Never raises for a device's failure: it returns ProbeFailure."""
    try:
        session = OnvifSession(url, timeout=timeout)
    except SourceError as error:
        return ProbeFailure(error.reason)
    skew: float | None = None
    try:
        async with asyncio.timeout(timeout * CALLS), session:
            try:
                skew = await session.read_clock()
            except SourceError as error:
                if error.reason in ("onvif timeout", "connection refused", "dns lookup failed", "host unreachable"):
                    return ProbeFailure(error.reason)
                # some devices (AXIS) want credentials even for the clock: carry on without a skew
            info = await session.call("devicemgmt", "GetDeviceInformation")
            recording, since, first = "unknown", None, None
            try:
                await session.discover()
                found = await recordings(session)
                recording, since = overall(found)
                first = await oldest(session) if found else None
            except SourceError:
                pass  # recording state stays unknown; the device facts above still hold
            return DeviceFacts(
                model=clean(field(info, "Model")),
                firmware=clean(field(info, "FirmwareVersion")),
                serial=clean(field(info, "SerialNumber")),
                clock_skew_s=skew,
                recording=recording,
                recording_since=since,
                oldest_recording=first,
            )
    except SourceError as error:
        return ProbeFailure(error.reason, clock_skew_s=skew)
    except TimeoutError:
        return ProbeFailure("onvif timeout", clock_skew_s=skew)
