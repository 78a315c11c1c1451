"""Stage 7, machine readers: the JSON API over the same store reads the pages use."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from nvrmon.models import HubInfo
from nvrmon.store.fleet import Store

CAMERA_STATUSES = {"online", "degraded", "offline", "nvr_offline", "unknown"}
NVR_STATUSES = {"online", "degraded", "stale", "offline", "unknown"}


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def summary(request: Request) -> JSONResponse:
    store: Store = request.state.store
    data: dict[str, Any] = (await store.summary()).as_json()
    data["epoch"] = store.epoch
    return JSONResponse(data)


async def nvrs(request: Request) -> JSONResponse:
    store: Store = request.state.store
    status = request.query_params.get("status")
    region = request.query_params.get("region")
    if status is not None and status not in NVR_STATUSES:
        return _error(f"status must be one of {', '.join(sorted(NVR_STATUSES))}")
    rows = [
        n
        for n in await store.nvrs()
        if (status is None or n.display == status) and (region is None or n.region == region)
    ]
    return JSONResponse({"nvrs": [n.as_json() for n in rows], "count": len(rows)})


async def nvr(request: Request) -> JSONResponse:
    store: Store = request.state.store
    found = await store.nvr(request.path_params["nvr_id"])
    if found is None:
        return _error("no such NVR", 404)
    cameras = await store.cameras(nvr_id=found.id)
    return JSONResponse({**found.as_json(), "cameras": [c.as_json() for c in cameras]})


async def cameras(request: Request) -> JSONResponse:
    store: Store = request.state.store
    params = request.query_params
    status = params.get("status")
    if status is not None and status not in CAMERA_STATUSES:
        return _error(f"status must be one of {', '.join(sorted(CAMERA_STATUSES))}")
    nvr_param = params.get("nvr")
    if nvr_param is not None and not (nvr_param.isdigit() and len(nvr_param) < 13):
        return _error("nvr must be a numeric NVR id")
    rows = await store.cameras(
        status=status, region=params.get("region"), nvr_id=int(nvr_param) if nvr_param is not None else None
    )
    return JSONResponse({"cameras": [c.as_json() for c in rows], "count": len(rows)})


async def camera(request: Request) -> JSONResponse:
    store: Store = request.state.store
    found = await store.camera(request.path_params["camera_id"])
    if found is None or found.removed:
        return _error("no such camera", 404)
    return JSONResponse(found.as_json())


async def events(request: Request) -> JSONResponse:
    store: Store = request.state.store
    params = request.query_params
    limit = params.get("limit", "50")
    nvr_param = params.get("nvr")
    if not (limit.isdigit() and 1 <= int(limit) <= 500):
        return _error("limit must be a number from 1 to 500")
    if nvr_param is not None and not (nvr_param.isdigit() and len(nvr_param) < 13):
        return _error("nvr must be a numeric NVR id")
    rows = await store.events(limit=int(limit), nvr_id=int(nvr_param) if nvr_param is not None else None)
    return JSONResponse({"events": [e.as_json() for e in rows], "count": len(rows)})


async def healthz(request: Request) -> JSONResponse:
    """503 while the hub's store refuses writes, so a load balancer or container check notices (docs/protocol.md)."""
    hub: HubInfo = request.state.hub
    health = hub.health
    code = 503 if health.degraded else 200
    if request.state.identity is None:
        return JSONResponse({"status": health.status}, status_code=code)  # public: nothing about the fleet
    store: Store = request.state.store
    seq = await store.current_seq()
    return JSONResponse(
        {
            "status": health.status,
            "storage": health.as_json(),
            "seq": seq,
            "epoch": store.epoch,
            "agents": hub.agents_connected,
            "subscribers": request.state.broadcaster.subscriber_count,
            "uptime_s": round(time.time() - hub.started, 1),
        },
        status_code=code,
    )
