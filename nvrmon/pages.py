"""Stage 7, first paint: server-rendered pages that are complete without JavaScript; the stream only makes them live."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse

from nvrmon.auth import page_context
from nvrmon.renderer import Renderer
from nvrmon.settings import Settings
from nvrmon.views import View, Views

TRANSPORTS = ("auto", "sse", "poll")


async def _page(request: Request, view: View, template: str, title: str) -> HTMLResponse:
    views: Views = request.state.views
    renderer: Renderer = request.state.renderer
    settings: Settings = request.state.settings
    context = await views.page(view)
    if context is None:
        raise HTTPException(404, f"No such {view.kind}")
    # ?transport=poll|sse forces a transport for this page (for networks known to break one of them).
    transport = request.query_params.get("transport", settings.transport)
    if transport not in TRANSPORTS:
        transport = settings.transport
    html = renderer.render(
        template, title=title, active=view.kind, oob=False, transport=transport, toasts="", **context,
        **page_context(request),
    )  # fmt: skip
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
