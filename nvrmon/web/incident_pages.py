"""Stage 7, incident pages: /incidents (live list), /incidents/{id} (live detail, acknowledge, comment) and the
maintenance windows page; forms post with CSRF and answer with a redirect, so all of it works without JavaScript."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from nvrmon.access.audit import client_address
from nvrmon.access.guard import ErrorPage, guard, page_context
from nvrmon.access.sessions import Identity, read_form
from nvrmon.alerts.actions import ActionError, Alerts
from nvrmon.alerts.window_input import WindowError, window_from_form
from nvrmon.incidents import IncidentFilter
from nvrmon.live.renderer import Renderer
from nvrmon.live.viewkey import View
from nvrmon.web.pages import _page


async def incident_list(request: Request) -> Response:
    view = View("incidents", incidents=IncidentFilter.parse(request.query_params))
    return await _page(request, view, "incidents.html", "Incidents")


async def incident_detail(request: Request) -> Response:
    return await _page(request, View("incident", request.path_params["incident_id"]), "incident.html", "Incident")


async def _act(request: Request, action: str) -> Response:
    alerts: Alerts = request.state.alerts
    identity: Identity = request.state.identity
    incident_id = request.path_params["incident_id"]
    note = (await read_form(request)).get("note", "")
    try:
        if action == "ack":
            await alerts.acknowledge(incident_id, identity.name, note, address=client_address(request))
        else:
            await alerts.comment(incident_id, identity.name, note, address=client_address(request))
    except ActionError as exc:
        error_page: ErrorPage = request.state.error_page
        return error_page(request, exc.status, str(exc))
    return RedirectResponse(f"/incidents/{incident_id}", status_code=303)


async def acknowledge(request: Request) -> Response:
    return await _act(request, "ack")


async def comment(request: Request) -> Response:
    return await _act(request, "comment")


async def _maintenance_page(request: Request, *, status: int = 200, **extra: Any) -> HTMLResponse:
    alerts: Alerts = request.state.alerts
    renderer: Renderer = request.state.renderer
    context: dict[str, Any] = {"error": "", "form": {}, **extra}
    windows = sorted(alerts.maintenance.windows, key=lambda w: (w.ends_at or float("inf")) <= time.time())
    html = renderer.render(
        "maintenance.html", title="Maintenance", active="incidents", windows=windows, now=time.time(),
        **context, **page_context(request),
    )  # fmt: skip
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


async def maintenance(request: Request) -> Response:
    return await _maintenance_page(request)


async def create_window(request: Request) -> Response:
    alerts: Alerts = request.state.alerts
    identity: Identity = request.state.identity
    form = await read_form(request)
    try:
        await alerts.create_window(window_from_form(form, identity.name, time.time()), address=client_address(request))
    except (WindowError, ActionError) as exc:
        return await _maintenance_page(request, status=400, error=str(exc), form=form)
    return RedirectResponse("/maintenance", status_code=303)


async def delete_window(request: Request) -> Response:
    alerts: Alerts = request.state.alerts
    identity: Identity = request.state.identity
    try:
        await alerts.delete_window(request.path_params["window_id"], identity.name, address=client_address(request))
    except ActionError as exc:
        return await _maintenance_page(request, status=exc.status, error=str(exc))
    return RedirectResponse("/maintenance", status_code=303)


def routes() -> list[Route]:
    return [
        Route("/incidents", guard("viewer", incident_list)),
        Route("/incidents/{incident_id:int}", guard("viewer", incident_detail)),
        Route("/incidents/{incident_id:int}/ack", guard("operator", acknowledge), methods=["POST"]),
        Route("/incidents/{incident_id:int}/comments", guard("operator", comment), methods=["POST"]),
        Route("/maintenance", guard("viewer", maintenance), methods=["GET"]),
        Route("/maintenance", guard("operator", create_window), methods=["POST"]),
        Route("/maintenance/{window_id:int}/delete", guard("operator", delete_window), methods=["POST"]),
    ]
