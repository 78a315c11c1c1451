"""Agent side, the ZoneMinder source: monitors, their capture state and recording function, daemon and storage."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from nvrmon.agent.facts import DeviceFacts, Disk, SourceCamera, SourceReport, StreamFacts
from nvrmon.agent.sources import SourceConfig
from nvrmon.agent.sources.http import client, credentials, fetch, get_json, number
from nvrmon.agent.sources.reasons import SourceError, clean

# Monitor.Function (ZoneMinder <= 1.36): which ones write events to disk. Nodect records on external triggers.
RECORDING_FUNCTIONS = {"Record", "Mocord", "Modect", "Nodect"}
NOT_RECORDING_FUNCTIONS = {"None", "Monitor"}
# Monitor_Status.Status (zm_monitor_status, ZoneMinder 1.34+): only Connected means frames come from the camera.
STATUS_REASONS = {
    "NotRunning": "zoneminder: capture not running",
    "Running": "zoneminder: camera not connected",
    "Signal": "zoneminder: camera not connected",
}
GIB = 1 << 30  # getDiskPercent's space: `du`/`df` KiB / 1024 / 1024


async def poll(config: SourceConfig, *, timeout: float) -> SourceReport:
    """Log in (POST /api/host/login.json, a token) when credentials are given, then /api/host/daemonCheck.json,
    /api/monitors.json and the storage areas (/api/storage.json, else the older /api/host/getDiskPercent.json)."""
    try:
        async with asyncio.timeout(timeout):
            async with client(config, timeout) as http:
                params = await login(http, config)
                daemon = await get_json(http, config, "/api/host/daemonCheck.json", params=params)
                monitors = await get_json(http, config, "/api/monitors.json", params=params)
                disks = await storage(http, config, params)
    except TimeoutError:
        return SourceReport(ok=False, reason="zoneminder timeout")
    except SourceError as error:
        return SourceReport(ok=False, reason=error.reason)
    if not isinstance(monitors, dict) or not isinstance(monitors.get("monitors"), list):
        return SourceReport(ok=False, reason="zoneminder: /api/monitors.json has no monitors")
    running = isinstance(daemon, dict) and str(daemon.get("result")) == "1"
    items = [item for item in monitors["monitors"] if isinstance(item, dict)][: config.max_cameras]
    return SourceReport(
        ok=True, cameras=tuple(camera(item, running) for item in items), disks=disks, model="ZoneMinder"
    )


async def login(http: httpx.AsyncClient, config: SourceConfig) -> dict[str, str]:
    _, username, password = credentials(config)
    if not username:
        return {}
    answer = await post_login(http, config, {"user": username, "pass": password})
    token = answer.get("access_token") if isinstance(answer, dict) else None
    if not isinstance(token, str) or not token:
        raise SourceError("zoneminder: login gave no access token")
    return {"token": token}


async def post_login(http: httpx.AsyncClient, config: SourceConfig, form: dict[str, str]) -> Any:
    status, body = await fetch(http, config, "POST", "/api/host/login.json", data=form)
    if status != 200:
        raise SourceError(f"zoneminder http {status} on /api/host/login.json")
    try:
        return json.loads(body)
    except ValueError as error:
        raise SourceError("zoneminder: unreadable answer on /api/host/login.json") from error


async def storage(http: httpx.AsyncClient, config: SourceConfig, params: dict[str, str]) -> tuple[Disk, ...]:
    try:
        areas = await get_json(http, config, "/api/storage.json", params=params)
    except SourceError as error:
        if "http 404" not in error.reason:
            raise
        areas = None
    if isinstance(areas, dict) and isinstance(areas.get("storage"), list):
        return tuple(area(item.get("Storage")) for item in areas["storage"][:64] if isinstance(item, dict))
    # ZoneMinder before storage areas: only the space used under the events directory, no capacity.
    usage = await get_json(http, config, "/api/host/getDiskPercent.json", params=params)
    areas_used = usage.get("usage") if isinstance(usage, dict) else None
    total = areas_used.get("Total") if isinstance(areas_used, dict) else None
    used = number(total.get("space")) if isinstance(total, dict) else None
    return (Disk(id="events", used_bytes=int(used * GIB) if used is not None else None),)


def area(values: object) -> Disk:
    values = values if isinstance(values, dict) else {}
    total, used = number(values.get("DiskTotalSpace")), number(values.get("DiskUsedSpace"))
    return Disk(
        id=clean(str(values.get("Name") or values.get("Id") or "storage")),
        capacity_bytes=int(total) if total else None,
        used_bytes=int(used) if used is not None else None,
        state="unknown",  # ZoneMinder knows space (PHP disk_total_space), not disk health
    )


def camera(item: dict[str, Any], daemon_running: bool) -> SourceCamera:
    monitor = item.get("Monitor") if isinstance(item.get("Monitor"), dict) else {}
    status = item.get("Monitor_Status") if isinstance(item.get("Monitor_Status"), dict) else None
    assert isinstance(monitor, dict)
    enabled = str(monitor.get("Enabled", "1")) == "1"
    fps = number(status.get("CaptureFPS")) if status else None
    if not daemon_running:
        reason = "zoneminder: daemon not running"
    elif not enabled or monitor.get("Capturing") == "None" or monitor.get("Function") == "None":
        reason = "zoneminder: monitor disabled"
    elif status is None:
        reason = ""  # ZoneMinder < 1.34 has no Monitor_Status: enabled and running is all it says
    elif status.get("Status") != "Connected":
        reason = STATUS_REASONS.get(str(status.get("Status")), "zoneminder: capture state unknown")
    elif not fps:
        reason = "zoneminder: no frames"
    else:
        reason = ""
    online = reason == ""
    width, height = number(monitor.get("Width")), number(monitor.get("Height"))
    path = str(monitor.get("Path") or "")
    return SourceCamera(
        id=clean(str(monitor.get("Id", ""))),
        name=clean(str(monitor.get("Name") or monitor.get("Id") or "")),
        online=online,
        reason=reason,
        stream=StreamFacts(
            ok=online,
            reason=reason,
            fps=fps,
            width=int(width) if width else None,
            height=int(height) if height else None,
            bitrate_kbps=(b * 8 / 1000) if status and (b := number(status.get("CaptureBandwidth"))) else None,
        ),  # fmt: skip
        device=DeviceFacts(recording=recording(monitor, enabled and daemon_running)),
        rtsp=path if path.startswith(("rtsp://", "rtsps://")) else "",
    )


def recording(monitor: dict[str, Any], capturing: bool) -> str:
    if not capturing:
        return "not_recording"
    if "Recording" in monitor:  # ZoneMinder 1.37+: Capturing / Analysing / Recording replace Function
        return "not_recording" if monitor["Recording"] == "None" else "recording"
    function = monitor.get("Function")
    if function in RECORDING_FUNCTIONS:
        return "recording"
    return "not_recording" if function in NOT_RECORDING_FUNCTIONS else "unknown"
