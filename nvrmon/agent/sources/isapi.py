"""Agent side, the Hikvision ISAPI source: an NVR's identity, clock, disks and channels (online state per camera)."""

from __future__ import annotations

import asyncio
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable
from datetime import datetime, timedelta, timezone

import httpx

from nvrmon.agent.facts import DeviceFacts, Disk, SourceCamera, SourceReport, StreamFacts
from nvrmon.agent.sources import SourceConfig
from nvrmon.agent.sources.http import client, credentials, get_xml, number
from nvrmon.agent.sources.reasons import SourceError, clean

MB = 1 << 20  # ISAPI's hdd capacity and freeSpace are in MB
# hdd status (ISAPI ContentMgmt/Storage) -> the wire's disk state.
DISK_STATES = {
    "ok": "ok", "idle": "ok", "sleeping": "ok",
    "smartfailed": "failing", "reparing": "failing", "repairing": "failing",
    "error": "failed", "offline": "failed", "notexist": "failed", "unformatted": "failed", "mismatch": "failed",
    "unrecordhostformatted": "failed", "abnormal": "failed",
}  # fmt: skip
# chanDetectResult (InputProxy/channels/status) -> why an offline channel is offline, in words.
DETECT_REASONS = {
    "usernameorpassworderror": "isapi: camera refused the NVR's credentials",
    "netunreachable": "isapi: camera unreachable from the NVR",
    "ipcstreamfail": "isapi: camera stream failed",
    "oversysbandwidth": "isapi: NVR bandwidth exceeded",
    "ipcunsupported": "isapi: camera not supported",
}
_POSIX_ZONE = re.compile(r"^[A-Za-z]+([+-])(\d{1,2})(?::(\d{2}))?")


async def poll(config: SourceConfig, *, timeout: float) -> SourceReport:
    """GET /ISAPI/System/deviceInfo, /ISAPI/System/time, /ISAPI/ContentMgmt/Storage,
    /ISAPI/ContentMgmt/InputProxy/channels[/status] and /ISAPI/System/status (uptime), with HTTP Digest
    authentication (Hikvision requires it)."""
    try:
        _, username, password = credentials(config)
        async with asyncio.timeout(timeout), client(config, timeout, httpx.DigestAuth(username, password)) as http:
            info = await get_xml(http, config, "/ISAPI/System/deviceInfo")
            sent = time.time()
            clock = await optional(get_xml(http, config, "/ISAPI/System/time"))
            middle = (sent + time.time()) / 2
            storage = await optional(get_xml(http, config, "/ISAPI/ContentMgmt/Storage"))
            channels = await optional(get_xml(http, config, "/ISAPI/ContentMgmt/InputProxy/channels"))
            states = await optional(get_xml(http, config, "/ISAPI/ContentMgmt/InputProxy/channels/status"))
            status = await optional(get_xml(http, config, "/ISAPI/System/status"))
    except TimeoutError:
        return SourceReport(ok=False, reason="isapi timeout")
    except SourceError as error:
        return SourceReport(ok=False, reason=error.reason)
    skew = clock_skew(clock, middle) if clock is not None else None
    if channels is None:  # an IP camera answers ISAPI too, without InputProxy: it is its own one channel
        name = clean(text(info, "deviceName") or "camera")
        cameras: tuple[SourceCamera, ...] = (SourceCamera(id="1", name=name, online=True),)
    else:
        cameras = listed(channels, states, config.max_cameras)
    cameras = tuple(with_device(c, skew) for c in cameras)
    firmware = " ".join(filter(None, (text(info, "firmwareVersion"), text(info, "firmwareReleasedDate"))))
    return SourceReport(
        ok=True, cameras=cameras, disks=disks(storage), clock_skew_s=skew,
        uptime_s=number(text(status, "deviceUpTime")) if status is not None else None,
        model=clean(text(info, "model")), firmware=clean(firmware),
    )  # fmt: skip


async def optional(request: Awaitable[ET.Element]) -> ET.Element | None:
    """An answer the device may not support (ISAPI refuses with 403 "notSupport" or 404): None then."""
    try:
        return await request
    except SourceError as error:
        if re.search(r"http (403|404|501)", error.reason):
            return None
        raise


def listed(channels: ET.Element, states: ET.Element | None, max_cameras: int) -> tuple[SourceCamera, ...]:
    status = {text(s, "id"): s for s in states.iter("InputProxyChannelStatus")} if states is not None else {}
    found = []
    for channel in list(channels.iter("InputProxyChannel"))[:max_cameras]:
        channel_id = text(channel, "id")
        state = status.get(channel_id)
        if state is None:
            online, reason = False, "isapi: no channel status"
        else:
            online = text(state, "online").lower() == "true"
            detect = text(state, "chanDetectResult")
            reason = (
                ""
                if online
                else DETECT_REASONS.get(
                    detect.lower(), clean(f"isapi: channel offline ({detect})" if detect else "isapi: channel offline")
                )
            )
        found.append(SourceCamera(
            id=clean(channel_id), name=clean(text(channel, "name") or f"Channel {channel_id}"), online=online,
            reason=reason, stream=StreamFacts(ok=online, reason=reason),
        ))  # fmt: skip
    return tuple(found)


def with_device(camera: SourceCamera, skew: float | None) -> SourceCamera:
    # ISAPI's channel list says nothing about recording; the NVR's clock is every channel's recording clock.
    return SourceCamera(
        id=camera.id, name=camera.name, online=camera.online, reason=camera.reason, stream=camera.stream,
        device=DeviceFacts(clock_skew_s=skew),
    )  # fmt: skip


def disks(storage: ET.Element | None) -> tuple[Disk, ...]:
    if storage is None:
        return ()
    found = []
    for hdd in list(storage.iter("hdd"))[:64]:
        capacity, free = number(text(hdd, "capacity")), number(text(hdd, "freeSpace"))
        found.append(
            Disk(
                id=clean(text(hdd, "hddName") or f"hdd{text(hdd, 'id')}"),
                capacity_bytes=int(capacity * MB) if capacity is not None else None,
                used_bytes=int((capacity - free) * MB) if capacity is not None and free is not None else None,
                state=DISK_STATES.get(text(hdd, "status").lower(), "unknown"),
            )
        )
    return tuple(found)


def clock_skew(clock: ET.Element, local: float) -> float | None:
    """Device clock minus ours: localTime carries its UTC offset on current firmware; older ones give only the
    POSIX timeZone ("CST-8:00:00" means UTC+8: POSIX signs are inverted)."""
    raw = text(clock, "localTime")
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        zone = _POSIX_ZONE.match(text(clock, "timeZone"))
        if zone is None:
            return None
        offset = timedelta(hours=int(zone.group(2)), minutes=int(zone.group(3) or 0))
        moment = moment.replace(tzinfo=timezone(-offset if zone.group(1) == "+" else offset))
    return round(moment.timestamp() - local, 1)


def text(element: ET.Element, tag: str) -> str:
    found = element.find(tag)
    return (found.text or "").strip() if found is not None else ""
