"""Agent side, the Frigate source: cameras, their frame rates and recording, and storage from Frigate's HTTP API."""

from __future__ import annotations

import asyncio
from typing import Any

from nvrmon.agent.facts import DeviceFacts, Disk, SourceCamera, SourceReport, StreamFacts
from nvrmon.agent.sources import SourceConfig
from nvrmon.agent.sources.http import client, credentials, fetch, get_json, number
from nvrmon.agent.sources.reasons import SourceError, clean

# Frigate's own scratch space: tmpfs, not recording storage (a full /dev/shm is not a full disk).
SCRATCH = ("/dev/shm", "/tmp/cache")
MIB = 1 << 20  # Frigate reports storage in MiB (stats: total / 2**20)


async def poll(config: SourceConfig, *, timeout: float) -> SourceReport:
    """GET /api/stats (cameras' camera_fps, service uptime, version, storage, temperatures) and /api/config
    (camera names, enabled, record.enabled); logs in first (POST /api/login) when credentials are given."""
    try:
        async with asyncio.timeout(timeout):
            _, username, password = credentials(config)
            async with client(config, timeout) as http:
                if username:
                    status, _ = await fetch(
                        http, config, "POST", "/api/login", json={"user": username, "password": password}
                    )
                    if status != 200:
                        raise SourceError(f"frigate http {status} on /api/login")
                stats = await get_json(http, config, "/api/stats")
                try:
                    frigate_config = await get_json(http, config, "/api/config")
                except SourceError:
                    frigate_config = None  # older or restricted: recording state stays unknown
    except TimeoutError:
        return SourceReport(ok=False, reason="frigate timeout")
    except SourceError as error:
        return SourceReport(ok=False, reason=error.reason)
    if not isinstance(stats, dict) or not isinstance(stats.get("cameras"), dict):
        return SourceReport(ok=False, reason="frigate: /api/stats has no cameras")
    return report(stats, frigate_config if isinstance(frigate_config, dict) else {}, config.max_cameras)


def report(stats: dict[str, Any], frigate_config: dict[str, Any], max_cameras: int) -> SourceReport:
    service = stats.get("service") if isinstance(stats.get("service"), dict) else {}
    assert isinstance(service, dict)
    configured = frigate_config.get("cameras") if isinstance(frigate_config.get("cameras"), dict) else {}
    assert isinstance(configured, dict)
    cameras = tuple(
        camera(str(name), values if isinstance(values, dict) else {}, configured.get(name))
        for name, values in list(stats["cameras"].items())[:max_cameras]
    )
    readings = service.get("temperatures") if isinstance(service.get("temperatures"), dict) else {}
    assert isinstance(readings, dict)
    temperatures = [t for t in map(number, readings.values()) if t is not None]
    return SourceReport(
        ok=True,
        cameras=cameras,
        disks=disks(service.get("storage")),
        uptime_s=number(service.get("uptime")),
        temperature_c=max(temperatures) if temperatures else None,
        model="Frigate",
        firmware=clean(str(service.get("version") or "")),
    )


def camera(name: str, values: dict[str, Any], configured: object) -> SourceCamera:
    settings = configured if isinstance(configured, dict) else {}
    enabled = settings.get("enabled", True) is not False
    fps = number(values.get("camera_fps"))
    online = enabled and fps is not None and fps > 0
    reason = "" if online else ("frigate: camera disabled" if not enabled else "frigate: no frames")
    record = settings.get("record") if isinstance(settings.get("record"), dict) else None
    if record is None:
        recording = "unknown"
    elif record.get("enabled") is not True or not enabled:
        recording = "not_recording"
    else:
        # record.enabled with frames arriving: Frigate is writing segments. Without frames the record input may
        # still be a separate, healthy stream, so we do not claim either way.
        recording = "recording" if online else "unknown"
    return SourceCamera(
        id=name,
        name=clean(str(settings.get("friendly_name") or name)),
        online=online,
        reason=reason,
        stream=StreamFacts(ok=online, reason=reason, fps=fps),
        device=DeviceFacts(recording=recording),
    )


def disks(storage: object) -> tuple[Disk, ...]:
    if not isinstance(storage, dict):
        return ()
    found = []
    for path, values in list(storage.items())[:64]:
        if path in SCRATCH or not isinstance(values, dict) or values.get("mount_type") == "tmpfs":
            continue
        total, used = number(values.get("total")), number(values.get("used"))
        found.append(
            Disk(
                id=clean(str(path)),
                capacity_bytes=int(total * MIB) if total is not None else None,
                used_bytes=int(used * MIB) if used is not None else None,
                state="unknown",  # Frigate knows space, not the health of the disk under it
            )
        )
    return tuple(found)
