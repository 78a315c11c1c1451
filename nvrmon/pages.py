"""Stage 7, first paint: server-rendered pages that are complete without JavaScript; the stream only makes them live."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse

from nvrmon.renderer import Renderer
from nvrmon.views import View, Views


async def _page(request: Request, view: View, template: str, title: str) -> HTMLResponse:
    views: Views = request.state.views
    renderer: Renderer = request.state.renderer
    context = await views.page(view)
    if context is None:
        raise HTTPException(404, f"No such {view.kind}")
    html = renderer.render(template, title=title, active=view.kind, oob=False, **context)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


async def dashboard(request: Request) -> HTMLResponse:
    return await _page(request, View("dashboard"), "dashboard.html", "Dashboard")


async def nvr_list(request: Request) -> HTMLResponse:
    return await _page(request, View("nvrs"), "nvrs.html", "NVR Management")


async def camera_list(request: Request) -> HTMLResponse:
    return await _page(request, View("cameras"), "cameras.html", "Camera Management")


async def nvr_detail(request: Request) -> HTMLResponse:
    return await _page(request, View("nvr", request.path_params["nvr_id"]), "nvr.html", "NVR")


async def camera_detail(request: Request) -> HTMLResponse:
    return await _page(request, View("camera", request.path_params["camera_id"]), "camera.html", "Camera")
