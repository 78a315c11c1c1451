"""Stage 7, machine readers: the JSON API over the same store reads the pages use, declared with its OpenAPI entries."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from nvrmon.access.guard import api_error
from nvrmon.filters import CAMERA_STATUSES, NVR_STATUSES, ListKind, ListQuery, natural, nvr_matches
from nvrmon.models import HubInfo
from nvrmon.store.fleet import Store
from nvrmon.web import api_schemas as s
from nvrmon.web.openapi import ApiSection, Operation, query, ref

MAX_ID = 2**53  # larger path ids match nothing (and would overflow SQLite's integers)


class BadParameter(ValueError):
    """A query parameter out of its documented range; answered with 400 and the message."""


def _int(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not (raw.isdigit() and len(raw) < 17 and low <= int(raw) <= high):
        raise BadParameter(f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def _list_query(kind: ListKind, params: Mapping[str, str]) -> ListQuery:
    """The list pages' own filters (nvrmon/filters.py), but a value out of range is an error here, not ignored."""
    statuses = NVR_STATUSES if kind == "nvrs" else CAMERA_STATUSES
    status = params.get("status")
    if status is not None and status not in statuses:
        raise BadParameter(f"status must be one of {', '.join(statuses)}")
    for name in ("region", "site", "q"):
        if len(params.get(name, "")) > 64:
            raise BadParameter(f"{name} is at most 64 characters")
    if kind == "cameras":
        _int(params, "nvr", 0, 1, MAX_ID)
    return ListQuery.parse(kind, params)


def _window(params: Mapping[str, str], default: int = 100) -> tuple[int, int]:
    return _int(params, "limit", default, 1, s.MAX_LIMIT), _int(params, "offset", 0, 0, s.MAX_OFFSET)


def _page(key: str, rows: list[dict[str, Any]], total: int, limit: int, offset: int) -> JSONResponse:
    return JSONResponse({key: rows, "count": len(rows), "total": total, "limit": limit, "offset": offset})


async def summary(request: Request) -> JSONResponse:
    store: Store = request.state.store
    data: dict[str, Any] = (await store.summary()).as_json()
    data["epoch"] = store.epoch
    return JSONResponse(data)


async def nvrs(request: Request) -> Response:
    store: Store = request.state.store
    try:
        listed = _list_query("nvrs", request.query_params)
        limit, offset = _window(request.query_params)
    except BadParameter as exc:
        return api_error(400, str(exc))
    matching = sorted((n for n in await store.nvrs() if nvr_matches(n, listed)), key=lambda n: natural(n.hostname))
    rows = [n.as_json() for n in matching[offset : offset + limit]]
    return _page("nvrs", rows, len(matching), limit, offset)


async def nvr(request: Request) -> Response:
    store: Store = request.state.store
    nvr_id = request.path_params["nvr_id"]
    found = await store.nvr(nvr_id) if nvr_id <= MAX_ID else None
    if found is None:
        return api_error(404, "no such NVR")
    cameras = await store.cameras(nvr_id=found.id)
    return JSONResponse({**found.as_json(), "cameras": [c.as_json() for c in cameras]})


async def cameras(request: Request) -> Response:
    store: Store = request.state.store
    try:
        listed = _list_query("cameras", request.query_params)
        limit, offset = _window(request.query_params)
    except BadParameter as exc:
        return api_error(400, str(exc))
    rows, total = await store.camera_page(listed, limit, offset)
    return _page("cameras", [c.as_json() for c in rows], total, limit, offset)


async def camera(request: Request) -> Response:
    store: Store = request.state.store
    camera_id = request.path_params["camera_id"]
    found = await store.camera(camera_id) if camera_id <= MAX_ID else None
    if found is None or found.removed:
        return api_error(404, "no such camera")
    return JSONResponse(found.as_json())


async def events(request: Request) -> Response:
    store: Store = request.state.store
    params = request.query_params
    try:
        limit, offset = _window(params, 50)
        nvr_id = _int(params, "nvr", 0, 1, MAX_ID)
    except BadParameter as exc:
        return api_error(400, str(exc))
    rows = await store.events(limit=limit + 1, offset=offset, nvr_id=nvr_id or None)
    # One row more than asked tells whether another page follows, without counting a table of millions of events.
    more = len(rows) > limit
    body = [e.as_json() for e in rows[:limit]]
    return _page("events", body, offset + len(body) + (1 if more else 0), limit, offset)


async def healthz(request: Request) -> JSONResponse:
    """503 while the hub's store refuses writes, so a load balancer or container check notices (docs/protocol.md)."""
    hub: HubInfo = request.state.hub
    health = hub.health
    code = 503 if health.degraded else 200
    store: Store = request.state.store
    database = await store.database.health()
    if not database.get("ok"):
        code = 503  # a hub that can't reach its database can't serve a true page: the balancer should skip it
    if request.state.identity is None:
        # public: nothing about the fleet, only which hub answered and whether its database does
        return JSONResponse(
            {"status": health.status, "node": hub.node, "database": {"ok": bool(database.get("ok"))}},
            status_code=code,
        )
    seq = await store.current_seq()
    return JSONResponse(
        {
            "status": health.status,
            "node": hub.node,
            "database": database,
            "storage": health.as_json(),
            "seq": seq,
            "epoch": store.epoch,
            "agents": hub.agents_connected,
            "subscribers": request.state.broadcaster.subscriber_count,
            "uptime_s": round(time.time() - hub.started, 1),
        },
        status_code=code,
    )


def _status(values: tuple[str, ...]) -> dict[str, Any]:
    return query("status", s.enum(values), "only rows with this (shown) status")


API = ApiSection(
    (
        Operation("GET", "/api/summary", summary, "viewer", "Fleet figures: NVRs and cameras by status",
                  ref("Summary")),
        Operation("GET", "/api/nvrs", nvrs, "viewer", "NVRs, filtered and paged (sorted by hostname)", ref("NvrPage"),
                  (_status(NVR_STATUSES), s.REGION, s.SITE, s.Q, s.LIMIT, s.OFFSET)),
        Operation("GET", "/api/nvrs/{nvr_id:int}", nvr, "viewer", "One NVR with its cameras", ref("NvrDetail")),
        Operation("GET", "/api/cameras", cameras, "viewer", "Cameras, filtered and paged (by NVR, then name)",
                  ref("CameraPage"),
                  (_status(CAMERA_STATUSES), s.REGION, s.SITE, s.Q, s.NVR_ID, s.LIMIT, s.OFFSET)),
        Operation("GET", "/api/cameras/{camera_id:int}", camera, "viewer", "One camera", ref("Camera")),
        Operation("GET", "/api/events", events, "viewer", "Recent events, newest first", ref("EventPage"),
                  (s.NVR_ID, {**s.LIMIT, "schema": {**s.LIMIT["schema"], "default": 50}}, s.OFFSET),
                  description="`total` is a lower bound: offset + count, plus one when another page follows."),
        # Outside /api (load balancers know it there) but JSON like the API; details for a session or token only.
        Operation("GET", "/healthz", healthz, "public", "Liveness and storage state", ref("Health"), errors=(503,)),
    ),
    s.SCHEMAS,
)  # fmt: skip
