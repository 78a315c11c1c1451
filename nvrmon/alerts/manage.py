"""Alerts, managing channels: the one way a channel is added (CLI and admin page alike), checked and masked."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from nvrmon.alerts import routing, urls, webpush
from nvrmon.store.channels import Channel, ChannelError, Channels

MAX_NAME = 60
# Web Push subscriptions: a person's browsers and devices, re-subscribed ones included (a subscription that ended
# is removed at its next send). Past the cap a subscriber is told to remove one: replacing the oldest would
# silently stop alerts to a device someone still relies on. The hub's cap keeps a fifth of MAX_CHANNELS for the
# admins' own channels, whatever many subscribers do.
MAX_PUSH_PER_OWNER = 20
MAX_PUSH = 400
NAME = re.compile(r"^[\w .:@+-]+$")


def _name(name: str, url: str) -> str:
    name = name.strip()
    if not name:  # json://host/path -> "json 127.0.0.1"; the host says where it goes without showing a secret
        parts = urlsplit(url)
        name = f"{parts.scheme} {parts.hostname or ''}".strip()
    if len(name) > MAX_NAME or not NAME.match(name):
        raise ChannelError(f"a channel name is 1–{MAX_NAME} letters, digits, spaces or . : @ + - _")
    return name


async def add_url(
    channels: Channels, url: str, name: str, matchers: Iterable[str], owner: str, *, actor: str = "", address: str = ""
) -> Channel:
    """An Apprise channel; raises UrlError, MatchError or ChannelError with a message for the person adding it.
    With an `actor` it is audited as channel.add in the transaction that adds it."""
    url = urls.check(url)
    match = routing.parse(matchers)
    name = _name(name, url)
    return await channels.add(name, "apprise", url, urls.masked(url), match, owner, actor=actor, address=address)


async def add_push(
    channels: Channels, subscription: str, owner: str, label: str, *, address: str = "", allow_private: bool = False
) -> Channel:
    """A browser's Web Push subscription as a channel of its own (subscribing again returns the same one, and
    audits nothing: nothing changed); a new one is audited as the owner's push.subscribe as it is added. Raises
    SubscriptionError for an endpoint that is not a public push service's, ChannelError past the caps."""
    info = webpush.subscription(subscription, allow_private)
    target = json.dumps(info, sort_keys=True)
    existing = await channels.with_target("webpush", target)
    if existing is not None:
        return existing
    await webpush.checked(info, allow_private)
    base = _name(f"push {owner} {label}".strip()[:MAX_NAME], "")
    name, n = base, 1
    while await channels.named(name) is not None:
        n += 1
        name = f"{base[: MAX_NAME - 4]} {n}"
    return await channels.add(
        name, "webpush", target, webpush.shown(info), {}, owner, actor=owner, address=address, action="push.subscribe",
        caps=(MAX_PUSH_PER_OWNER, MAX_PUSH),
    )  # fmt: skip


async def find(channels: Channels, which: str) -> Channel | None:
    """A channel by name, or by id."""
    channel = await channels.named(which)
    if channel is None and which.isdigit() and len(which) < 12:
        channel = await channels.get(int(which))
    return channel


def tested(channel: Channel, state: str, error: str) -> str:
    """A test message's audit detail: a failed test still reached out (an attempt), so it is recorded with its why."""
    return f"id {channel.id}, {state}" + (f": {error}" if error else "")
