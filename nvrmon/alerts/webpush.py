"""Alerts, Web Push: the hub's VAPID keys (made once, kept in the store's meta) and pushes to subscribed browsers."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization

from nvrmon.store.channels import keep_once
from nvrmon.store.database import Database

if TYPE_CHECKING:
    from py_vapid import Vapid02  # type: ignore[import-untyped]  # no stubs or py.typed

# py_vapid, pywebpush and aiohttp are imported on the first push or subscription, not at start: together they are
# about 30 MB of every hub's memory, and most hubs never use Web Push.

PRIVATE_KEY = "vapid_private_key"
MAX_SUBSCRIPTION = 2000  # bytes of a browser's PushSubscription JSON
TTL = 86_400  # a push service keeps an undelivered alert this long (a phone offline overnight still gets it)


class SubscriptionError(ValueError):
    """A subscription that is not a browser's PushSubscription; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Keys:
    vapid: Vapid02
    public: str  # the applicationServerKey browsers subscribe with (base64url, uncompressed P-256 point)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


async def keys(database: Database) -> Keys:
    """The hub's VAPID key pair, generated the first time it is needed and kept in meta (so subscriptions survive
    restarts: a browser's subscription is bound to this public key)."""
    from py_vapid import Vapid02

    raw = await database.meta(PRIVATE_KEY)
    if raw is None:
        vapid = Vapid02()
        vapid.generate_keys()
        number = vapid.private_key.private_numbers().private_value.to_bytes(32, "big")
        raw = await keep_once(database, PRIVATE_KEY, _b64(number))
    vapid = Vapid02.from_raw(raw.encode())
    point = vapid.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return Keys(vapid, _b64(point))


def subscription(text: str) -> dict[str, Any]:
    """A browser's PushSubscription (`JSON.stringify(subscription)`), checked: an http(s) endpoint and both keys."""
    if len(text.encode()) > MAX_SUBSCRIPTION:
        raise SubscriptionError(f"a subscription is at most {MAX_SUBSCRIPTION} bytes")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SubscriptionError("a subscription is JSON: {endpoint, keys: {p256dh, auth}}") from exc
    endpoint = data.get("endpoint") if isinstance(data, dict) else None
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(endpoint, str) or urlsplit(endpoint).scheme not in ("http", "https"):
        raise SubscriptionError("the subscription needs an http(s) endpoint")
    if not isinstance(keys, dict) or not all(isinstance(keys.get(k), str) and keys[k] for k in ("p256dh", "auth")):
        raise SubscriptionError("the subscription needs keys.p256dh and keys.auth")
    return {"endpoint": endpoint, "keys": {"p256dh": keys["p256dh"], "auth": keys["auth"]}}


def shown(info: dict[str, Any]) -> str:
    """A subscription as lists show it: the push service's host only (the endpoint path is a capability)."""
    return f"web push via {urlsplit(str(info['endpoint'])).netloc}"


class PushError(Exception):
    """The push service could not be reached or answered at HTTP level (aiohttp's error, named as it was)."""


class Gone(Exception):
    """The push service says this subscription no longer exists (404/410): the browser unsubscribed."""


async def push(keys: Keys, target: str, title: str, body: str, subject: str, timeout: float) -> None:
    """Encrypt (aes128gcm, RFC 8291) and send one push; raises Gone, PushError, or RuntimeError with the answer."""
    import aiohttp
    from pywebpush import WebPushException, webpush_async  # type: ignore[import-untyped]

    info = json.loads(target)
    payload = json.dumps({"title": title, "body": body, "url": "/incidents"})
    try:
        await webpush_async(
            info,
            payload,
            vapid_private_key=keys.vapid,
            vapid_claims={"sub": subject},
            ttl=TTL,
            timeout=aiohttp.ClientTimeout(total=timeout),  # aiohttp's own type: a bare number is deprecated there
        )
    except aiohttp.ClientError as exc:
        raise PushError(f"{type(exc).__name__}: {exc}") from exc
    except WebPushException as exc:
        status = getattr(exc.response, "status", None) or getattr(exc.response, "status_code", None)
        if status in (404, 410):
            raise Gone(f"the push service answered {status}: the browser's subscription has ended") from exc
        raise RuntimeError(str(exc).splitlines()[0]) from exc
