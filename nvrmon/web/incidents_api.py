"""Stage 7, machine readers of incidents: /api/incidents (list, one, acknowledge, comment) and /api/maintenance."""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nvrmon.access.guard import guard
from nvrmon.access.sessions import Identity, read_form
from nvrmon.alerts.actions import ActionError, Alerts
from nvrmon.alerts.window_input import WindowError, parse_window
from nvrmon.incidents import SEVERITIES, STATES
from nvrmon.store import incidents as sql
from nvrmon.store.database import Database

MAX_BODY = 16_384
FILTER_STATES = (*STATES, "active")


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def read_json(request: Request) -> dict[str, Any]:
    """A small JSON object body, or (from a form post) the form's fields; ValueError says what is wrong."""
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind == "application/x-www-form-urlencoded":
        return dict(await read_form(request))
    length = request.headers.get("content-length", "")
    if length and (not length.isdigit() or int(length) > MAX_BODY):
        raise ValueError(f"the body is larger than {MAX_BODY} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise ValueError(f"the body is larger than {MAX_BODY} bytes")
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise ValueError("the body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


def list_filters(params: Any) -> dict[str, str]:
    """state / site / severity from a query string, checked; ValueError names the bad one."""
    state, site, level = params.get("state", ""), params.get("site", ""), params.get("severity", "")
    if state and state not in FILTER_STATES:
        raise ValueError(f"state must be one of {', '.join(FILTER_STATES)}")
    if level and level not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}")
    if len(site) > 100:
        raise ValueError("site is longer than 100 characters")
    return {"state": state, "site": site, "severity": level}


async def incidents(request: Request) -> Response:
    database: Database = request.state.store.database
    params = request.query_params
    limit = params.get("limit", "100")
    if not (limit.isdigit() and 1 <= int(limit) <= 1000):
        return _error("limit must be a number from 1 to 1000")
    try:
        filters = list_filters(params)
    except ValueError as exc:
        return _error(str(exc))
    found = await sql.incidents(
        database, state=filters["state"], site=filters["site"], severity=filters["severity"], limit=int(limit)
    )
    now = time.time()
    return JSONResponse({"incidents": [i.as_json(now) for i in found], "count": len(found)})


async def incident(request: Request) -> Response:
    database: Database = request.state.store.database
    found = await sql.incident(database, request.path_params["incident_id"])
    if found is None:
        return _error("no such incident", 404)
    timeline = await sql.entries(database, found.id)
    return JSONResponse({**found.as_json(time.time()), "timeline": [e.as_json() for e in timeline]})


async def acknowledge(request: Request) -> Response:
    alerts: Alerts = request.state.alerts
    identity: Identity = request.state.identity
    try:
        data = await read_json(request)
        note = data.get("note") or ""
        if not isinstance(note, str):
            raise ValueError("note must be text")
        done = await alerts.acknowledge(request.path_params["incident_id"], identity.name, note)
    except ActionError as exc:
        return _error(str(exc), exc.status)
    except ValueError as exc:
        return _error(str(exc))
    return JSONResponse(done.as_json(time.time()))


async def comment(request: Request) -> Response:
    alerts: Alerts = request.state.alerts
    identity: Identity = request.state.identity
    try:
        data = await read_json(request)
        note = data.get("note") or ""
        if not isinstance(note, str):
            raise ValueError("note must be text")
        done = await alerts.comment(request.path_params["incident_id"], identity.name, note)
    except ActionError as exc:
        return _error(str(exc), exc.status)
    except ValueError as exc:
        return _error(str(exc))
    return JSONResponse(done.as_json(time.time()), status_code=201)


async def windows(request: Request) -> Response:
    alerts: Alerts = request.state.alerts
    now = time.time()
    found = alerts.maintenance.windows
    return JSONResponse({"maintenance": [w.as_json(now) for w in found], "count": len(found)})


async def create_window(request: Request) -> Response:
    alerts: Alerts = request.state.alerts
    identity: Identity = request.state.identity
    try:
        window = parse_window(await read_json(request), identity.name, time.time())
        created = await alerts.create_window(window)
    except ActionError as exc:
        return _error(str(exc), exc.status)
    except (WindowError, ValueError) as exc:
        return _error(str(exc))
    return JSONResponse(created.as_json(time.time()), status_code=201)


async def delete_window(request: Request) -> Response:
    alerts: Alerts = request.state.alerts
    identity: Identity = request.state.identity
    try:
        await alerts.delete_window(request.path_params["window_id"], identity.name)
    except ActionError as exc:
        return _error(str(exc), exc.status)
    return Response(status_code=204)


def routes() -> list[Route]:
    return [
        Route("/api/incidents", guard("viewer", incidents, "api")),
        Route("/api/incidents/{incident_id:int}", guard("viewer", incident, "api")),
        Route("/api/incidents/{incident_id:int}/ack", guard("operator", acknowledge, "api"), methods=["POST"]),
        Route("/api/incidents/{incident_id:int}/comments", guard("operator", comment, "api"), methods=["POST"]),
        Route("/api/maintenance", guard("viewer", windows, "api"), methods=["GET"]),
        Route("/api/maintenance", guard("operator", create_window, "api"), methods=["POST"]),
        Route("/api/maintenance/{window_id:int}", guard("operator", delete_window, "api"), methods=["DELETE"]),
    ]
