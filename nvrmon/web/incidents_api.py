"""Stage 7, machine readers of incidents: /api/incidents (list, one, acknowledge, comment) and /api/maintenance,
declared with their OpenAPI entries (web/openapi.py)."""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from nvrmon.access.audit import client_address
from nvrmon.access.guard import api_error
from nvrmon.access.sessions import Identity, read_form
from nvrmon.alerts.actions import ActionError, Alerts
from nvrmon.alerts.window_input import parse_window
from nvrmon.incidents import SEVERITIES
from nvrmon.store import incidents as sql
from nvrmon.store.database import Database
from nvrmon.web import alert_schemas as s
from nvrmon.web.openapi import ApiSection, Operation, Schema, ref

MAX_BODY = 16_384
MAX_ID = 2**53  # larger path ids match nothing (and would overflow SQLite's integers)


def _refused(exc: ValueError) -> JSONResponse:
    """An ActionError carries its status (404, 409); any other ValueError is a bad request. The API's one shape."""
    return api_error(exc.status if isinstance(exc, ActionError) else 400, str(exc))


def _id(request: Request, name: str) -> int:
    found: int = request.path_params[name]
    if found > MAX_ID:
        raise ActionError("no such " + name.removesuffix("_id").replace("window", "maintenance window"), 404)
    return found


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
    if state and state not in s.FILTER_STATES:
        raise ValueError(f"state must be one of {', '.join(s.FILTER_STATES)}")
    if level and level not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}")
    if len(site) > 100:
        raise ValueError("site is longer than 100 characters")
    return {"state": state, "site": site, "severity": level}


async def incidents(request: Request) -> Response:
    database: Database = request.state.store.database
    params = request.query_params
    limit = params.get("limit", "100")
    if not (limit.isascii() and limit.isdigit() and len(limit) < 8 and 1 <= int(limit) <= s.MAX_INCIDENTS):
        return api_error(400, f"limit must be a number from 1 to {s.MAX_INCIDENTS}")
    try:
        filters = list_filters(params)
    except ValueError as exc:
        return api_error(400, str(exc))
    found = await sql.incidents(
        database, state=filters["state"], site=filters["site"], severity=filters["severity"], limit=int(limit)
    )
    now = time.time()
    return JSONResponse({"incidents": [i.as_json(now) for i in found], "count": len(found)})


async def incident(request: Request) -> Response:
    database: Database = request.state.store.database
    incident_id: int = request.path_params["incident_id"]
    found = await sql.incident(database, incident_id) if incident_id <= MAX_ID else None
    if found is None:
        return api_error(404, "no such incident")
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
        done = await alerts.acknowledge(
            _id(request, "incident_id"), identity.name, note, address=client_address(request)
        )
    except ValueError as exc:
        return _refused(exc)
    return JSONResponse(done.as_json(time.time()))


async def comment(request: Request) -> Response:
    alerts: Alerts = request.state.alerts
    identity: Identity = request.state.identity
    try:
        data = await read_json(request)
        note = data.get("note") or ""
        if not isinstance(note, str):
            raise ValueError("note must be text")
        done = await alerts.comment(_id(request, "incident_id"), identity.name, note, address=client_address(request))
    except ValueError as exc:
        return _refused(exc)
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
        created = await alerts.create_window(window, address=client_address(request))
    except ValueError as exc:  # WindowError and ActionError among them
        return _refused(exc)
    return JSONResponse(created.as_json(time.time()), status_code=201)


async def delete_window(request: Request) -> Response:
    alerts: Alerts = request.state.alerts
    identity: Identity = request.state.identity
    try:
        await alerts.delete_window(_id(request, "window_id"), identity.name, address=client_address(request))
    except ActionError as exc:
        return _refused(exc)
    return Response(status_code=204)


_NOTHING: Schema = {"description": "no body"}
_WRITE_ERRORS = (409,)

API = ApiSection(
    (
        Operation("GET", "/api/incidents", incidents, "viewer", "Incidents, open ones first",
                  ref("IncidentList"), s.INCIDENT_QUERY, description="docs/incidents.md"),
        Operation("GET", "/api/incidents/{incident_id:int}", incident, "viewer", "One incident with its timeline",
                  ref("IncidentDetail")),
        Operation("POST", "/api/incidents/{incident_id:int}/ack", acknowledge, "operator",
                  "Acknowledge an open incident (with an optional note)", ref("Incident"), body=ref("Note"),
                  errors=_WRITE_ERRORS, description="409 when it is acknowledged or resolved already."),
        Operation("POST", "/api/incidents/{incident_id:int}/comments", comment, "operator",
                  "Comment on an incident (on its timeline)", ref("Incident"), body=ref("Note"), status=201),
        Operation("GET", "/api/maintenance", windows, "viewer", "Maintenance windows", ref("MaintenanceList")),
        Operation("POST", "/api/maintenance", create_window, "operator",
                  "Create a maintenance window (one-off or recurring)", ref("MaintenanceWindow"),
                  body=ref("MaintenanceInput"), errors=_WRITE_ERRORS, status=201,
                  description="Devices it matches raise no incidents while it is active; their availability counts "
                  "the time apart. 409 when the hub holds its most windows already."),
        Operation("DELETE", "/api/maintenance/{window_id:int}", delete_window, "operator",
                  "Delete a maintenance window", _NOTHING, status=204),
    ),
    s.INCIDENT_SCHEMAS,
)  # fmt: skip
