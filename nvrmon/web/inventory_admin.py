"""Stage 7, the admin page's fleet inventory (admin role): preview or import a YAML/CSV file, download the fleet."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from nvrmon import fleetfile
from nvrmon.access.audit import actor_of, client_address
from nvrmon.access.guard import guard, page_context
from nvrmon.access.sessions import Identity, read_form
from nvrmon.inventory import Import, InventoryError, Outcome
from nvrmon.live.renderer import Renderer
from nvrmon.models import FleetAdmin, HubInfo
from nvrmon.settings import Settings
from nvrmon.store import inventory, inventory_rows
from nvrmon.store.fleet import Store


def _render(request: Request, status: int = 200, **context: Any) -> HTMLResponse:
    renderer: Renderer = request.state.renderer
    context.setdefault("result", None)
    context.setdefault("problems", ())
    html = renderer.render("admin_inventory.html", title="Fleet inventory", active="admin", now=time.time(),
                           **context, **page_context(request))  # fmt: skip
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


async def upload(request: Request) -> Response:
    """Preview (a rolled-back transaction) or import (through the hub's writer) the pasted or picked file."""
    form = await read_form(request)
    settings: Settings = request.state.settings
    identity: Identity = request.state.identity
    store: Store = request.state.store
    fmt: fleetfile.Format = "csv" if form.get("format") == "csv" else "yaml"
    dry_run = form.get("action") != "import"
    shown = {"format": fmt, "content": form.get("content", "")}
    try:
        declaration = fleetfile.parse(form.get("content", ""), fmt)
        edit = Import(declaration)
        result: Outcome
        if dry_run:
            result = await inventory.preview(
                store.database, edit, identity.name, max_cameras=settings.max_cameras_per_nvr
            )
        else:
            hub: HubInfo = request.state.hub
            if hub.health.degraded:
                return _render(request, 503, problems=["the hub's storage refuses writes now; try again later"],
                               inventory_form=shown)  # fmt: skip
            admin: FleetAdmin = request.state.hub
            result = await admin.edit_inventory(edit, actor_of(identity), client_address(request))
    except InventoryError as exc:
        return _render(request, 422, problems=list(exc.problems), inventory_form=shown)
    return _render(request, result=result, dry_run=dry_run, inventory_form=shown)


async def export(request: Request) -> Response:
    """The current fleet, declared and discovered, as a file that `nvrmon inventory import` reads back."""
    store: Store = request.state.store
    fmt: fleetfile.Format = "csv" if request.query_params.get("format") == "csv" else "yaml"
    content = fleetfile.dump(await inventory_rows.declaration(store.database), fmt)
    media = "text/csv" if fmt == "csv" else "application/yaml"
    headers = {"Content-Disposition": f'attachment; filename="fleet.{fmt}"', "Cache-Control": "no-store"}
    return Response(content, media_type=f"{media}; charset=utf-8", headers=headers)


async def page(request: Request) -> Response:
    return _render(request, inventory_form={})


def routes() -> list[Route]:
    return [
        Route("/admin/inventory", guard("admin", page), methods=["GET"]),
        Route("/admin/inventory", guard("admin", upload), methods=["POST"]),
        Route("/admin/inventory/export", guard("admin", export), methods=["GET"]),
    ]
