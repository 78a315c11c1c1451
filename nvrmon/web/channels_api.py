"""Stage 7, machine readers of notification channels (admin): /api/channels (list, add, remove, test) and
/api/deliveries (the last messages with every attempt), with their OpenAPI entries. Targets are always shown masked."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from nvrmon.access.audit import actor_of, client_address, note
from nvrmon.access.guard import api_error
from nvrmon.access.sessions import Identity
from nvrmon.alerts import manage
from nvrmon.alerts.delivery import Delivery
from nvrmon.alerts.routing import KEYS, MatchError
from nvrmon.alerts.urls import UrlError
from nvrmon.incidents import iso
from nvrmon.store.channels import Channel, ChannelError
from nvrmon.store.outbox import OutboxRow
from nvrmon.web import alert_schemas as s
from nvrmon.web.incidents_api import MAX_ID, read_json
from nvrmon.web.openapi import ApiSection, Operation, Schema, ref


async def _named(request: Request) -> Channel | None:
    delivery: Delivery = request.state.delivery
    channel_id: int = request.path_params["channel_id"]
    return await delivery.channels.get(channel_id) if channel_id <= MAX_ID else None


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
        matchers = [f"{k}={v}" for k, v in match.items()]
        channel = await manage.add_url(delivery.channels, url, name, matchers, identity.name,
                                       actor=actor_of(identity), address=client_address(request))  # fmt: skip
    except ChannelError as exc:
        return api_error(409 if "exists already" in str(exc) else 400, str(exc))
    except (UrlError, MatchError, ValueError) as exc:
        return api_error(400, str(exc))
    return JSONResponse(_channel(channel), status_code=201)


async def remove(request: Request) -> Response:
    delivery: Delivery = request.state.delivery
    identity: Identity = request.state.identity
    channel = await _named(request)
    address = client_address(request)
    if channel is None or not await delivery.channels.remove(channel.id, actor=actor_of(identity), address=address):
        return api_error(404, "no such channel")
    return Response(status_code=204)


async def test(request: Request) -> Response:
    delivery: Delivery = request.state.delivery
    channel = await _named(request)
    if channel is None:
        return api_error(404, "no such channel")
    state, error = await delivery.test(channel)
    await note(request, "channel.test", channel.name, manage.tested(channel, state, error))
    if state != "sent":
        # The channel's peer refused or could not be reached: a bad gateway, in the API's one error shape.
        return api_error(502, error or f"the test message was not sent ({state})", "delivery_failed")
    return JSONResponse({"state": state, "error": error})


async def deliveries(request: Request) -> Response:
    delivery: Delivery = request.state.delivery
    raw = request.query_params.get("limit", "50")
    if not (raw.isascii() and raw.isdigit() and len(raw) < 6 and 1 <= int(raw) <= s.MAX_DELIVERIES):
        return api_error(400, f"limit must be a number from 1 to {s.MAX_DELIVERIES}")
    limit = int(raw)
    names = {c.id: c.name for c in await delivery.channels.all()}
    rows = await delivery.outbox.recent(limit)
    return JSONResponse({"deliveries": [await _delivery(delivery, row, names) for row in rows]})


_NOTHING: Schema = {"description": "no body"}

# Admin only: no API token is an admin (docs/api.md), so these take an admin's browser session.
API = ApiSection(
    (
        Operation("GET", "/api/channels", channels, "admin", "Notification channels (targets masked)",
                  ref("ChannelList"), description="docs/notifications.md"),
        Operation("POST", "/api/channels", add, "admin", "Add a notification channel (an Apprise URL)",
                  ref("Channel"), body=ref("ChannelInput"), errors=(409,), status=201,
                  description="400 says what is wrong with the URL or the matchers; 409: the name is taken."),
        Operation("DELETE", "/api/channels/{channel_id:int}", remove, "admin", "Remove a notification channel",
                  _NOTHING, status=204),
        Operation("POST", "/api/channels/{channel_id:int}/test", test, "admin", "Send a test message now",
                  ref("ChannelTest"), errors=(502,),
                  description="502 (delivery_failed) when it was not delivered; the message is the peer's error."),
        Operation("GET", "/api/deliveries", deliveries, "admin", "The last messages sent, with every attempt",
                  ref("DeliveryList"), s.DELIVERY_QUERY),
    ),
    s.CHANNEL_SCHEMAS,
)  # fmt: skip
