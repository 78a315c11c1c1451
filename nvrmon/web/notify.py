"""Stage 7, notifications out: channels on the admin page (add, remove, test, last deliveries) and Web Push
subscriptions from each operator's own page (/notifications)."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from nvrmon.access.audit import actor_of, client_address, note
from nvrmon.access.guard import guard, page_context
from nvrmon.access.sessions import Identity, read_form
from nvrmon.alerts import manage, webpush
from nvrmon.alerts.delivery import Delivery
from nvrmon.alerts.routing import MatchError
from nvrmon.alerts.urls import UrlError
from nvrmon.live.renderer import Renderer
from nvrmon.store.channels import ChannelError

MATCH_FIELDS = ("site", "region", "severity")
log = logging.getLogger("nvrmon.alerts")


async def admin_context(request: Request) -> dict[str, Any]:
    """What the admin page's Notifications section shows: channels (masked) and the last deliveries."""
    delivery: Delivery = request.state.delivery
    channels = await delivery.channels.all()
    names = {c.id: c.name for c in channels}
    recent = await delivery.outbox.recent(20)
    attempts = {row.id: await delivery.outbox.attempts(row.id) for row in recent}
    return {"channels": channels, "deliveries": [(row, names.get(row.channel_id, "?"), attempts[row.id])
                                                 for row in recent]}  # fmt: skip


async def _admin(request: Request, *, status: int = 200, **extra: Any) -> Response:
    from nvrmon.web import admin  # the admin page renders the whole page, this section included

    return await admin.render(request, status=status, **extra)


async def add_channel(request: Request) -> Response:
    delivery: Delivery = request.state.delivery
    identity: Identity = request.state.identity
    form = await read_form(request)
    matchers = [f"{key}={form[key].strip()}" for key in MATCH_FIELDS if form.get(key, "").strip()]
    try:
        channel = await manage.add_url(delivery.channels, form.get("url", ""), form.get("name", ""), matchers,
                                       identity.name, actor=actor_of(identity),
                                       address=client_address(request))  # fmt: skip
    except (UrlError, MatchError, ChannelError) as exc:
        form.pop("url", None)  # a secret is not echoed back into the page
        return await _admin(request, status=400, error=str(exc), channel_form=form)
    return await _admin(request, notice=f"Added channel {channel.name} ({channel.shown}).")


async def remove_channel(request: Request) -> Response:
    delivery: Delivery = request.state.delivery
    channel = await delivery.channels.get(request.path_params["channel_id"])
    if channel is None:
        return await _admin(request, status=404, error="No such channel (removed already?).")
    identity: Identity = request.state.identity
    await delivery.channels.remove(channel.id, actor=actor_of(identity), address=client_address(request))
    return await _admin(request, notice=f"Removed channel {channel.name}.")


async def test_channel(request: Request) -> Response:
    delivery: Delivery = request.state.delivery
    channel = await delivery.channels.get(request.path_params["channel_id"])
    if channel is None:
        return await _admin(request, status=404, error="No such channel (removed already?).")
    state, error = await delivery.test(channel)
    await note(request, "channel.test", channel.name, manage.tested(channel, state, error))
    if state != "sent":
        return await _admin(request, status=502, error=f"Test message to {channel.name} failed: {error}")
    return await _admin(request, notice=f"Test message sent to {channel.name}.")


# -- Web Push: each operator's own subscriptions ---------------------------------------------------------------------


async def notifications_page(request: Request, *, status: int = 200, **extra: Any) -> HTMLResponse:
    delivery: Delivery = request.state.delivery
    renderer: Renderer = request.state.renderer
    identity: Identity = request.state.identity
    keys = await webpush.keys(delivery.database)
    mine = [c for c in await delivery.channels.all() if c.kind == "webpush" and c.owner == identity.name]
    context: dict[str, Any] = {"error": "", "notice": ""}
    context.update(extra)
    html = renderer.render(
        "notifications.html", title="Alerts", active="notifications", vapid_key=keys.public,
        subscriptions=mine, now=time.time(), **context, **page_context(request),
    )  # fmt: skip
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


async def overview(request: Request) -> Response:
    return await notifications_page(request)


async def subscribe(request: Request) -> Response:
    """A browser's PushSubscription (push.js posts it as a form field), kept as this operator's channel."""
    delivery: Delivery = request.state.delivery
    identity: Identity = request.state.identity
    form = await read_form(request)
    try:
        channel = await manage.add_push(
            delivery.channels,
            form.get("subscription", ""),
            identity.name,
            form.get("label", "")[:24],
            address=client_address(request),
            allow_private=bool(delivery.settings.webpush_allow_private),
        )
    except webpush.SubscriptionError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    except ChannelError as exc:  # past a cap: this person's, or the hub's
        return JSONResponse({"error": str(exc)}, status_code=409)
    return JSONResponse({"id": channel.id, "name": channel.name}, status_code=201)


async def _own(request: Request) -> Any:
    delivery: Delivery = request.state.delivery
    identity: Identity = request.state.identity
    channel = await delivery.channels.get(request.path_params["channel_id"])
    if channel is None or channel.kind != "webpush" or channel.owner != identity.name:
        return None
    return channel


async def unsubscribe(request: Request) -> Response:
    delivery: Delivery = request.state.delivery
    channel = await _own(request)
    if channel is None:
        return await notifications_page(request, status=404, error="No such subscription of yours.")
    identity: Identity = request.state.identity
    await delivery.channels.remove(
        channel.id, actor=actor_of(identity), address=client_address(request), action="push.unsubscribe"
    )
    return await notifications_page(request, notice="This browser no longer gets alerts by push.")


async def test_push(request: Request) -> Response:
    delivery: Delivery = request.state.delivery
    channel = await _own(request)
    if channel is None:
        return await notifications_page(request, status=404, error="No such subscription of yours.")
    state, error = await delivery.test(channel)
    # The push service's answer and the network's error stay in the audit detail, the log and the admin's delivery
    # list: echoed to the subscriber they would tell what answers at an address (an oracle for probing).
    await note(request, "push.test", channel.name, manage.tested(channel, state, error))
    if state != "sent":
        log.warning("test push to %s: %s (%s)", channel.name, error, state)
        return await notifications_page(request, status=502, error=webpush.outcome_for_people(state, error))
    return await notifications_page(request, notice="Test push sent: it should show on this device in a moment.")


def routes() -> list[Route]:
    return [
        Route("/admin/channels", guard("admin", add_channel), methods=["POST"]),
        Route("/admin/channels/{channel_id:int}/remove", guard("admin", remove_channel), methods=["POST"]),
        Route("/admin/channels/{channel_id:int}/test", guard("admin", test_channel), methods=["POST"]),
        Route("/notifications", guard("viewer", overview), methods=["GET"]),
        Route("/notifications/push", guard("viewer", subscribe, "api"), methods=["POST"]),
        Route("/notifications/push/{channel_id:int}/remove", guard("viewer", unsubscribe), methods=["POST"]),
        Route("/notifications/push/{channel_id:int}/test", guard("viewer", test_push), methods=["POST"]),
    ]
