"""Stage 7, availability reports: the /reports page (range, grouping, table, bar chart; complete without JavaScript)
and /api/reports (the same figures as JSON or CSV, and one device's recorded intervals, with their OpenAPI entries)."""

from __future__ import annotations

import csv
import io
import re
import time
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from nvrmon.access.guard import api_error, guard, page_context
from nvrmon.availability import SCOPES, clip
from nvrmon.live.renderer import Renderer
from nvrmon.store import history as sql
from nvrmon.store.database import Database
from nvrmon.web import alert_schemas as s
from nvrmon.web.openapi import ApiSection, Operation, ref
from nvrmon.web.report_data import BAR_LEGEND, RANGES, Report, ReportError, build, period, scope_of

DEVICE = re.compile(r"(nvr|camera):([0-9]{1,15})")  # ASCII digits: \d would take any script's
MAX_DEVICE_INTERVALS = 10_000
SCOPE_NAMES = {"site": "Site", "region": "Region", "nvr": "NVR", "camera": "Camera"}


def _query(params: Any) -> dict[str, str]:
    """The report's own parameters, to link the same report as CSV or JSON."""
    return {k: str(params[k]) for k in ("scope", "range", "from", "to") if params.get(k)}


async def reports_page(request: Request) -> Response:
    database: Database = request.state.store.database
    renderer: Renderer = request.state.renderer
    params = request.query_params
    now = time.time()
    found: Report | None = None
    error, status = "", 200
    try:
        found = await build(database, scope_of(params), period(params, now), now)
    except ReportError as exc:
        error, status = str(exc), 400
    query = _query(params)
    html = renderer.render(
        "reports.html", title="Availability", active="reports", report=found, error=error, form=params,
        ranges=list(RANGES), scopes=[(s, SCOPE_NAMES[s]) for s in SCOPES], scope_names=SCOPE_NAMES, legend=BAR_LEGEND,
        csv_url="/api/reports/availability?" + urlencode({**query, "format": "csv"}),
        json_url="/api/reports/availability?" + urlencode(query), **page_context(request),
    )  # fmt: skip
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


async def availability(request: Request) -> Response:
    database: Database = request.state.store.database
    params = request.query_params
    kind = params.get("format") or "json"
    if kind not in ("json", "csv"):
        return api_error(400, "format must be json or csv")
    now = time.time()
    try:
        found = await build(database, scope_of(params), period(params, now), now)
    except ReportError as exc:
        return api_error(400, str(exc))
    if kind == "json":
        return JSONResponse(found.as_json())
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(found.csv_rows())
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{found.filename}"', "Cache-Control": "no-store"},
    )


async def device_history(request: Request) -> Response:
    """?device=nvr:ID|camera:ID and the range parameters: the device's intervals, as recorded."""
    database: Database = request.state.store.database
    params = request.query_params
    device = params.get("device") or ""
    if not DEVICE.fullmatch(device):
        return api_error(400, "device must be nvr:ID or camera:ID")
    now = time.time()
    try:
        chosen = period(params, now)
    except ReportError as exc:
        return api_error(400, str(exc))
    found = await sql.device_intervals(database, device, chosen.start, chosen.end, MAX_DEVICE_INTERVALS)
    rows = [
        {"state": i.state, "maintenance": i.maintenance, "start": i.start, "end": i.end, "region": i.region,
         "site": i.site, "seconds_in_range": round(clip(i, chosen.start, chosen.end, now), 6)}
        for i in found
    ]  # fmt: skip
    return JSONResponse({"device": device, **chosen.as_json(), "intervals": rows, "count": len(rows)})


def routes() -> list[Route]:
    return [Route("/reports", guard("viewer", reports_page))]


API = ApiSection(
    (
        Operation("GET", "/api/reports/availability", availability, "viewer",
                  "Availability by site, region, NVR or camera over a range, worst first (JSON or CSV)",
                  ref("AvailabilityReport"), s.REPORT_QUERY,
                  media=(("text/csv", {"type": "string", "description": "a header line, then one row a group"}),),
                  description="docs/availability.md. A custom range (from, to) covers at most 366 days and to comes "
                  "after from; a range holding too many state changes is refused (400) asking for a shorter one."),
        Operation("GET", "/api/reports/history", device_history, "viewer",
                  "One device's recorded state intervals over a range", ref("DeviceHistory"), s.DEVICE_QUERY,
                  description="start and end are Unix seconds; end is null while the interval is open."),
    ),
    s.REPORT_SCHEMAS,
)  # fmt: skip
