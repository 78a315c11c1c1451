"""Stage 7, the audit log for admins: a filtered, paged page at /admin/audit, and the same rows as CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route

from nvrmon.access.audit import note
from nvrmon.access.guard import guard, page_context
from nvrmon.access.sessions import Auth
from nvrmon.live.renderer import Renderer
from nvrmon.store.audit import MAX_EXPORT, AuditEntry, AuditLog, AuditQuery

PAGE = 100
EXPORT_BATCH = 1000  # rows read per query while an export streams: memory stays flat for a large export
FIELDS = ("id", "ts", "time", "actor", "action", "target", "detail", "address")
# The action families the filter offers before any of their entries exist (an auditor asks "any acknowledgements?"
# and gets an empty answer, not a missing choice); choosing one matches every action under it (AuditQuery.where).
FAMILIES = ("login", "user", "api_token", "agent_token", "embed", "nvr", "camera", "inventory", "incident",
            "maintenance", "channel", "push", "audit")  # fmt: skip


def families(actions: list[str]) -> list[str]:
    """The known families and any other one an action recorded names ("x.y" is in family "x")."""
    return sorted({*FAMILIES, *(a.split(".", 1)[0] for a in actions if "." in a)})


def _day(raw: str, *, end: bool = False) -> float:
    """A YYYY-MM-DD date (UTC) as a timestamp: its start, or with `end` the next day's start; 0 when empty or bad."""
    try:
        day = datetime.strptime(raw.strip(), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return 0.0
    return day.timestamp() + (86400 if end else 0)


def parse(params: Mapping[str, str], *, limit: int = PAGE) -> tuple[AuditQuery, dict[str, str]]:
    """The query of the page's filter form (bad values are dropped, never an error) and its cleaned form values."""
    form = {name: " ".join(params.get(name, "").split())[:80] for name in ("actor", "action", "q", "since", "until")}
    page = params.get("page", "1")
    number = int(page) if page.isdigit() and len(page) < 6 and int(page) > 0 else 1
    query = AuditQuery(
        actor=form["actor"], action=form["action"], q=form["q"], since=_day(form["since"]),
        until=_day(form["until"], end=True), limit=limit, offset=(number - 1) * limit,
    )  # fmt: skip
    form["page"] = str(number)
    return query, form


def _log(request: Request) -> AuditLog:
    auth: Auth = request.state.auth
    return AuditLog(auth.credentials.database)


async def page(request: Request) -> Response:
    renderer: Renderer = request.state.renderer
    audit = _log(request)
    query, form = parse(request.query_params)
    entries = await audit.entries(query)
    total = await audit.count(query)
    filters = {k: v for k, v in form.items() if v and k != "page"}
    actions = await audit.actions()
    html = renderer.render(
        "audit.html", title="Audit log", active="admin", entries=entries, total=total, form=form,
        actions=actions, families=families(actions), page=int(form["page"]), pages=max(1, -(-total // PAGE)),
        filters=filters, now=time.time(), **page_context(request),
    )  # fmt: skip
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


def _row(entry: AuditEntry) -> dict[str, object]:
    when = datetime.fromtimestamp(entry.ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return {**entry.as_json(), "time": when}


async def _rows(audit: AuditLog, query: AuditQuery) -> AsyncIterator[dict[str, object]]:
    """Every entry of the query, newest first, read in batches; at most MAX_EXPORT of them."""
    sent = 0
    while sent < MAX_EXPORT:
        batch = await audit.entries(replace(query, limit=EXPORT_BATCH, offset=sent))
        for entry in batch:
            yield _row(entry)
        sent += len(batch)
        if len(batch) < EXPORT_BATCH:
            return


def _described(form: Mapping[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in form.items() if v and k != "page") or "everything"


def _filename(ext: str) -> dict[str, str]:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return {"Content-Disposition": f'attachment; filename="nvrmon-audit-{stamp}.{ext}"', "Cache-Control": "no-store"}


async def export_csv(request: Request) -> Response:
    query, form = parse(request.query_params, limit=MAX_EXPORT)
    await note(request, "audit.export", "csv", _described(form))  # who took a copy of the log is itself audited

    async def lines() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, FIELDS, lineterminator="\r\n")
        writer.writeheader()
        async for row in _rows(_log(request), query):
            # A cell starting with = + - @ would run as a formula in a spreadsheet: quote it as text (OWASP).
            writer.writerow({k: f"'{v}" if isinstance(v, str) and v[:1] in "=+-@\t\r" else v for k, v in row.items()})
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue()

    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8", headers=_filename("csv"))


async def export_json(request: Request) -> Response:
    query, form = parse(request.query_params, limit=MAX_EXPORT)
    await note(request, "audit.export", "json", _described(form))

    async def chunks() -> AsyncIterator[str]:
        yield '{"entries": ['
        first = True
        async for row in _rows(_log(request), query):
            yield ("" if first else ",") + json.dumps(row)
            first = False
        yield "]}"

    return StreamingResponse(chunks(), media_type="application/json", headers=_filename("json"))


def routes() -> list[Route]:
    return [
        Route("/admin/audit", guard("admin", page), methods=["GET"]),
        Route("/admin/audit.csv", guard("admin", export_csv), methods=["GET"]),
        Route("/admin/audit.json", guard("admin", export_json), methods=["GET"]),
    ]
