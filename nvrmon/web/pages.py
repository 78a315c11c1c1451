"""Stage 7, first paint: server-rendered pages that are complete without JavaScript; the stream only makes them live."""

from __future__ import annotations

from typing import Literal

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from nvrmon.access.guard import page_context
from nvrmon.filters import LAYOUTS
from nvrmon.live.renderer import Renderer
from nvrmon.live.viewkey import View
from nvrmon.live.views import Views
from nvrmon.settings import Settings

TRANSPORTS = ("auto", "sse", "poll")
LAYOUT_COOKIE = "nvrmon_camera_layout"
NOUNS = {"nvr": "NVR", "camera": "camera"}  # as a sentence names them ("No such NVR")


async def _page(request: Request, view: View, template: str, title: str) -> Response:
    views: Views = request.state.views
    renderer: Renderer = request.state.renderer
    settings: Settings = request.state.settings
    context = await views.page(view)
    if context is None:
        raise HTTPException(404, f"No such {NOUNS.get(view.kind, view.kind)}")
    if "redirect" in context:
        return RedirectResponse(context["redirect"], status_code=303)  # past the last page: show the last one
    # ?transport=poll|sse forces a transport for this page (for networks known to break one of them).
    transport = request.query_params.get("transport", settings.transport)
    if transport not in TRANSPORTS:
        transport = settings.transport
    html = renderer.render(
        template, title=title, active=view.kind, oob=False, transport=transport, toasts="", **context,
        **page_context(request),
    )  # fmt: skip
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


async def dashboard(request: Request) -> Response:
    return await _page(request, View("dashboard"), "dashboard.html", "Dashboard")


async def nvr_list(request: Request) -> Response:
    return await _page(request, View.for_list("nvrs", request.query_params), "nvrs.html", "NVR Management")


async def camera_list(request: Request) -> Response:
    params = dict(request.query_params)
    chosen = params.get("layout")
    # The tiles/table choice is remembered per browser in a cookie, so it holds without JavaScript too.
    if chosen not in LAYOUTS:
        remembered = request.cookies.get(LAYOUT_COOKIE)
        if remembered in LAYOUTS:
            params["layout"] = remembered
    response = await _page(request, View.for_list("cameras", params), "cameras.html", "Camera Management")
    if chosen in LAYOUTS and request.cookies.get(LAYOUT_COOKIE) != chosen:
        response.set_cookie(LAYOUT_COOKIE, chosen, max_age=365 * 86400, samesite="lax", httponly=True)
    return response


async def _detail(request: Request, kind: Literal["nvr", "camera"], ident: int, template: str, title: str) -> Response:
    if request.query_params.get("fragment") == "detail":
        # What the list pages' detail dialog shows: the same content as the page, without the page around it.
        views: Views = request.state.views
        html = await views.detail_html(kind, ident)
        if html is None:
            raise HTTPException(404, f"No such {NOUNS[kind]}")
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})
    return await _page(request, View(kind, ident), template, title)


async def nvr_detail(request: Request) -> Response:
    return await _detail(request, "nvr", request.path_params["nvr_id"], "nvr.html", "NVR")


async def camera_detail(request: Request) -> Response:
    return await _detail(request, "camera", request.path_params["camera_id"], "camera.html", "Camera")
