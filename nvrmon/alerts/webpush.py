"""Alerts, Web Push: the hub's VAPID keys (made once, kept in the store's meta) and pushes to subscribed browsers."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization

from nvrmon.store.channels import keep_once
from nvrmon.store.database import Database

if TYPE_CHECKING:
    import aiohttp
    from aiohttp.abc import AbstractResolver
    from py_vapid import Vapid02  # type: ignore[import-untyped]  # no stubs or py.typed

# py_vapid, pywebpush and aiohttp are imported on the first push or subscription, not at start: together they are
# about 30 MB of every hub's memory, and most hubs never use Web Push.

PRIVATE_KEY = "vapid_private_key"
MAX_SUBSCRIPTION = 2000  # bytes of a browser's PushSubscription JSON
MAX_ENDPOINT = 1024  # characters: FCM, Mozilla, Apple and Windows endpoints are a few hundred
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


def subscription(text: str, allow_private: bool = False) -> dict[str, Any]:
    """A browser's PushSubscription (`JSON.stringify(subscription)`), checked in shape: an https endpoint that is not
    an IP address (unless `allow_private`), and both keys of their RFC 8291 sizes. Where its host resolves to is
    `checked` (async) before it is kept, and again by every send."""
    if len(text.encode()) > MAX_SUBSCRIPTION:
        raise SubscriptionError(f"a subscription is at most {MAX_SUBSCRIPTION} bytes")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SubscriptionError("a subscription is JSON: {endpoint, keys: {p256dh, auth}}") from exc
    endpoint = data.get("endpoint") if isinstance(data, dict) else None
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(endpoint, str):
        raise SubscriptionError("the subscription needs an https endpoint")
    try:
        url_problem(endpoint, allow_private)
    except NotPublic as exc:
        raise SubscriptionError(str(exc)) from exc
    if not isinstance(keys, dict) or not all(isinstance(keys.get(k), str) and keys[k] for k in ("p256dh", "auth")):
        raise SubscriptionError("the subscription needs keys.p256dh and keys.auth")
    if len(_decoded(keys["p256dh"], 120) or b"") != 65:
        raise SubscriptionError("keys.p256dh is a P-256 public key: 65 bytes, base64url")
    if len(_decoded(keys["auth"], 40) or b"") != 16:
        raise SubscriptionError("keys.auth is a 16-byte secret, base64url")
    return {"endpoint": endpoint, "keys": {"p256dh": keys["p256dh"], "auth": keys["auth"]}}


def _decoded(text: str, most: int) -> bytes | None:
    if len(text) > most:
        return None
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        return None


class NotPublic(OSError):
    """A push endpoint on an address push services are not on (loopback, private, link-local, multicast, reserved):
    refused, so a subscription cannot make the hub POST to its own network. An OSError: aiohttp's connector then
    reports it as its resolver's failure (ClientConnectorDNSError) and connects nowhere."""


def url_problem(endpoint: str, allow_private: bool) -> None:
    """Raise NotPublic unless `endpoint` is a push service's kind of URL: https, a host name (push services are
    named hosts), no credentials, at most MAX_ENDPOINT characters. `allow_private` (NVRMON_WEBPUSH_ALLOW_PRIVATE):
    http and IP addresses too, for a push service of one's own on the LAN (and the tests' one on 127.0.0.1)."""
    if len(endpoint) > MAX_ENDPOINT:
        raise NotPublic(f"a push endpoint is at most {MAX_ENDPOINT} characters")
    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018  # raises ValueError on a port that is not a number
    except ValueError as exc:
        raise NotPublic("the push endpoint is not a URL") from exc
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise NotPublic("the subscription needs an https endpoint (push services are https)")
    if parts.username is not None or parts.password is not None:
        raise NotPublic("a push endpoint has no user name or password in it")
    if not allow_private and _ip(parts.hostname) is not None:
        raise NotPublic("the push endpoint's host is an IP address; push services are named hosts")


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def public(address: str) -> bool:
    """Whether a push service could be at this address: globally routable unicast. IPv6 forms that carry an IPv4
    address (mapped, 6to4, NAT64) are judged by the address they carry."""
    ip = _ip(address)
    if ip is None:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour
        if inner is None and ip in NAT64:
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not None:
            return public(str(inner))
    return ip.is_global and not ip.is_multicast


NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


async def checked(info: dict[str, Any], allow_private: bool, timeout: float = 5.0) -> None:
    """Raise SubscriptionError unless the endpoint's host resolves, now, to public addresses only (every send checks
    again, on the addresses it connects to: DNS can change). One message whether the name does not resolve or
    resolves to a private address: a subscriber learns nothing of the hub's own network."""
    if allow_private:
        return
    host = urlsplit(str(info["endpoint"])).hostname or ""
    try:
        found = await asyncio.wait_for(asyncio.get_running_loop().getaddrinfo(host, 443), timeout)
    except (OSError, TimeoutError, UnicodeError):
        found = []
    if not found or not all(public(str(entry[4][0])) for entry in found):
        raise SubscriptionError("the push endpoint's host is not a public push service's address")


def shown(info: dict[str, Any]) -> str:
    """A subscription as lists show it: the push service's host only (the endpoint path is a capability)."""
    return f"web push via {urlsplit(str(info['endpoint'])).netloc}"


class PushError(Exception):
    """Not sent, and safe to retry: the push service could not be reached (or is on a refused address), or a timeout
    struck before the push was written. The message is this module's own, starting with UNREACHABLE or REFUSED."""


class Refused(PushError):
    """The push service answered with an error status (its answer kept in the message, for the admin page)."""


class Gone(Refused):
    """The push service says this subscription no longer exists (404/410): the browser unsubscribed."""


class MaybeSent(Exception):
    """A timeout after the push was written: the push service may well have it (and deliver it), so it is recorded
    as unknown and never sent again, like an Apprise timeout."""


UNREACHABLE = "could not reach the push service"
REFUSED = "the push service answered"


def outcome_for_people(state: str, error: str) -> str:
    """What a subscriber is told of a test push that was not sent: refused by the push service, or failed; never the
    push service's answer or the network's error, which could map the hub's surroundings (those go to the log, the
    audit detail and the admin's delivery list)."""
    if state == "unknown":
        return "The test push timed out after it went out: it may still arrive."
    if error.startswith(f"{REFUSED} 404") or error.startswith(f"{REFUSED} 410"):
        return "The push service refused the test push: this subscription has ended there, and is removed."
    if error.startswith(REFUSED):
        return "The push service refused the test push."
    return "The test push failed: the push service could not be reached."


def _session(allow_private: bool, written: list[bool]) -> tuple[aiohttp.ClientSession, AbstractResolver]:
    """An aiohttp session for one push: its resolver refuses hosts on non-public addresses (checked on the very
    addresses the connector then uses), redirects are refused (push services answer, they do not redirect; a
    redirect to an IP address would not go through the resolver), and `written` notes the request going out. The
    resolver is the caller's to close (the connector closes only resolvers it made)."""
    import aiohttp
    from aiohttp.abc import AbstractResolver, ResolveResult

    class PublicResolver(AbstractResolver):
        def __init__(self) -> None:
            self.inner = aiohttp.DefaultResolver()

        async def resolve(
            self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
        ) -> list[ResolveResult]:
            found = await self.inner.resolve(host, port, family)
            if not allow_private and not all(public(entry["host"]) for entry in found):
                raise NotPublic(f"{host} is not on a public address")
            return found

        async def close(self) -> None:
            await self.inner.close()

    async def headers_sent(*_: Any) -> None:
        written.append(True)

    async def redirected(_session: Any, _context: Any, params: aiohttp.TraceRequestRedirectParams) -> None:
        raise Refused(f"{REFUSED} {params.response.status} (a redirect, refused: push services do not redirect)")

    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(headers_sent)
    trace.on_request_redirect.append(redirected)
    resolver = PublicResolver()
    connector = aiohttp.TCPConnector(resolver=resolver)
    return aiohttp.ClientSession(connector=connector, trace_configs=[trace], trust_env=False), resolver


async def push(
    keys: Keys, target: str, title: str, body: str, subject: str, timeout: float, allow_private: bool = False
) -> None:
    """Encrypt (aes128gcm, RFC 8291) and send one push; raises PushError (Refused, Gone) or MaybeSent."""
    import aiohttp
    from pywebpush import WebPushException, webpush_async  # type: ignore[import-untyped]

    info = json.loads(target)
    try:
        url_problem(str(info.get("endpoint", "")), allow_private)  # the setting may have changed since it was kept
    except NotPublic as exc:
        raise PushError(f"{UNREACHABLE}: {exc}") from exc
    payload = json.dumps({"title": title, "body": body, "url": "/incidents"})
    written: list[bool] = []
    session, resolver = _session(allow_private, written)
    try:
        async with session:
            await webpush_async(
                info,
                payload,
                vapid_private_key=keys.vapid,
                vapid_claims={"sub": subject},
                ttl=TTL,
                timeout=aiohttp.ClientTimeout(total=timeout),  # aiohttp's own type: a bare number is deprecated there
                aiohttp_session=session,
            )
    except TimeoutError as exc:  # aiohttp's ServerTimeoutError is one too
        if written:
            raise MaybeSent(f"timed out after {timeout:g} s waiting for the push service's answer: it may have "
                            "arrived; not sent again so it cannot arrive twice") from exc  # fmt: skip
        raise PushError(f"{UNREACHABLE}: timed out after {timeout:g} s before the push was sent") from exc
    except aiohttp.ClientConnectorError as exc:
        why = exc.os_error if isinstance(exc.os_error, NotPublic) else exc
        raise PushError(f"{UNREACHABLE}: {type(why).__name__}: {why}") from exc
    except aiohttp.ClientError as exc:
        raise PushError(f"{UNREACHABLE}: {type(exc).__name__}: {exc}") from exc
    except WebPushException as exc:
        status = getattr(exc.response, "status", None) or getattr(exc.response, "status_code", None)
        if status in (404, 410):
            raise Gone(f"{REFUSED} {status}: the browser's subscription has ended") from exc
        answer = str(getattr(exc, "message", "") or exc).splitlines()[0]  # its first line: "Push failed: 500 ..."
        raise Refused(f"{REFUSED} {answer.removeprefix('Push failed: ')}") from exc
    finally:
        await resolver.close()
