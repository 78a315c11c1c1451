"""Stage 7, machine readers of notification channels (admin): /api/channels (list, add, remove, test) and
/api/deliveries (the last messages with every attempt). Targets are always shown masked."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nvrmon.access.guard import guard
from nvrmon.access.sessions import Identity
from nvrmon.alerts import manage
from nvrmon.alerts.delivery import Delivery
from nvrmon.alerts.routing import KEYS, MatchError
from nvrmon.alerts.urls import UrlError
from nvrmon.incidents import iso
from nvrmon.store.channels import Channel, ChannelError
from nvrmon.store.outbox import OutboxRow
from nvrmon.web.incidents_api import read_json

MAX_DELIVERIES = 200


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _channel(channel: Channel) -> dict[str, Any]:
    return {"id": channel.id, "name": channel.name, "kind": channel.kind, "target": channel.shown,
            "match": {k: v for k, v in channel.match.items() if v}, "owner": channel.owner,
            "created": iso(channel.created)}  # fmt: skip


async def _delivery(delivery: Delivery, row: OutboxRow, names: dict[int, str]) -> dict[str, Any]:
    return {"id": row.id, "channel_id": row.channel_id, "channel": names.get(row.channel_id), "kind": row.kind,
            "state": row.state, "site": row.site, "region": row.region, "title": row.title, "created": iso(row.created),
            "done_at": iso(row.done_at), "error": row.last_error, "incidents": list(row.incidents),
            "attempts": [{"at": iso(a.ts), "result": a.result, "error": a.error, "elapsed_s": round(a.elapsed, 3)}
                         for a in await delivery.outbox.attempts(row.id)]}  # fmt: skip


async def channels(request: Request) -> Response:
    delivery: Delivery = request.state.delivery
    return JSONResponse({"channels": [_channel(c) for c in await delivery.channels.all()]})


async def add(request: Request) -> Response:
    delivery: Delivery = request.state.delivery
    identity: Identity = request.state.identity
    try:
        data = await read_json(request)
        match = data.get("match") or {}
        if not isinstance(match, dict) or not all(isinstance(v, str) for v in match.values()):
            raise ValueError(f"match is an object of {', '.join(KEYS)} (text, comma-separated values)")
        url, name = data.get("url", ""), data.get("name") or ""
        if not isinstance(url, str) or not isinstance(name, str):
            raise ValueError("url and name are text")
        channel = await manage.add_url(delivery.channels, url, name, [f"{k}={v}" for k, v in match.items()],
                                       identity.name)  # fmt: skip
    except ChannelError as exc:
        return _error(str(exc), 409 if "exists already" in str(exc) else 400)
    except (UrlError, MatchError, ValueError) as exc:
        return _error(str(exc))
    return JSONResponse(_channel(channel), status_code=201)


async def remove(request: Request) -> Response:
    delivery: Delivery = request.state.delivery
    if not await delivery.channels.remove(request.path_params["channel_id"]):
        return _error("no such channel", 404)
    return Response(status_code=204)


async def test(request: Request) -> Response:
    delivery: Delivery = request.state.delivery
    channel = await delivery.channels.get(request.path_params["channel_id"])
    if channel is None:
        return _error("no such channel", 404)
    state, error = await delivery.test(channel)
    return JSONResponse({"state": state, "error": error}, status_code=200 if state == "sent" else 502)


async def deliveries(request: Request) -> Response:
    delivery: Delivery = request.state.delivery
    raw = request.query_params.get("limit", "50")
    limit = min(int(raw), MAX_DELIVERIES) if raw.isdigit() and len(raw) < 6 else 50
    names = {c.id: c.name for c in await delivery.channels.all()}
    rows = await delivery.outbox.recent(limit)
    return JSONResponse({"deliveries": [await _delivery(delivery, row, names) for row in rows]})


def routes() -> list[Route]:
    return [
        Route("/api/channels", guard("admin", channels, "api"), methods=["GET"]),
        Route("/api/channels", guard("admin", add, "api"), methods=["POST"]),
        Route("/api/channels/{channel_id:int}", guard("admin", remove, "api"), methods=["DELETE"]),
        Route("/api/channels/{channel_id:int}/test", guard("admin", test, "api"), methods=["POST"]),
        Route("/api/deliveries", guard("admin", deliveries, "api"), methods=["GET"]),
    ]
