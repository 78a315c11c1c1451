"""Agent side, the prober's other eyes: the ONVIF probe per camera and the NVR source, as the prober calls them."""

from __future__ import annotations

import logging

from nvrmon.agent.config import AgentConfig, SourceSpec
from nvrmon.agent.facts import DeviceFacts, SourceReport
from nvrmon.agent.onvif_probe import ProbeFailure, probe_onvif
from nvrmon.agent.prober import DeviceProbe, SourcePoll
from nvrmon.agent.sources import SourceConfig, make_source

log = logging.getLogger("nvrmon.agent.integrations")
MAX_CAMERAS = 1024  # the hub's default max_cameras_per_nvr
# SOAP devices are slow (a second or two per call on small cameras) and the first session loads the WSDLs: ONVIF gets
# this much per call even when the RTSP steps are given less.
ONVIF_MIN_TIMEOUT = 5.0


def device_probe(timeout: float) -> DeviceProbe:
    """ONVIF facts of one camera; a failure keeps the clock skew when the device told it (no credentials needed)."""

    async def probe(url: str) -> DeviceFacts | None:
        result = await probe_onvif(url, timeout=timeout)
        if isinstance(result, ProbeFailure):
            log.info("ONVIF: %s", result.reason)
            return DeviceFacts(clock_skew_s=result.clock_skew_s) if result.clock_skew_s is not None else None
        return result

    return probe


def source_poll(spec: SourceSpec, timeout: float) -> SourcePoll:
    """ValueError when this build has no poller for the kind."""
    try:
        poll = make_source(spec.kind)
    except ImportError:
        raise ValueError(f"source kind {spec.kind!r} is not available in this build of nvrmon") from None
    config = SourceConfig(kind=spec.kind, url=spec.url, username=spec.username, password=spec.password,
                          verify_tls=spec.verify_tls, max_cameras=MAX_CAMERAS)  # fmt: skip

    async def once() -> SourceReport:
        return await poll(config, timeout=timeout)

    return once


def for_config(config: AgentConfig) -> tuple[DeviceProbe | None, SourcePoll | None]:
    """The ONVIF probe and the source poll the configuration asks for (None: not configured)."""
    wants_onvif = any(camera.onvif for camera in config.cameras)
    return (
        device_probe(max(config.timeout, ONVIF_MIN_TIMEOUT)) if wants_onvif else None,
        source_poll(config.source, config.timeout) if config.source else None,
    )
