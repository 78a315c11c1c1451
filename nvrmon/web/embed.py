"""Stage 7, embedding: read-only, expiring embed tokens scoped to one view, as iframe pages or CORS fragments.

An embed token is a bearer capability in a URL (`/embed/<token>`): whoever sees the portal's page source can read the
scoped view, nothing else, until it expires or is revoked. Its stream carries only that view's fragments: no toasts,
no events, no other NVR. See docs/embedding.md.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from nvrmon import protocol
from nvrmon.access.agent_tokens import hash_token
from nvrmon.access.guard import Endpoint
from nvrmon.access.headers import content_security_policy
from nvrmon.access.revocation import Bound
from nvrmon.access.sessions import Auth
from nvrmon.live.broadcaster import Broadcaster, encode
from nvrmon.live.renderer import Renderer
from nvrmon.live.views import Views
from nvrmon.models import Camera, Cursor, Nvr
from nvrmon.settings import Settings
from nvrmon.store.credentials import Credentials, EmbedToken, EmbedView
from nvrmon.store.fleet import Store

VIEWS: tuple[EmbedView, ...] = ("kpis", "nvrs", "nvr")
MAX_TTL = 365 * 86400.0
MAX_ORIGINS = 16
WAKE_INTERVAL = 0.5  # seconds: how late an embed may show a change at most (plus rendering)
TOKEN_SHAPE = re.compile(r"emb_[A-Za-z0-9_-]{40,48}")
# Request headers htmx 4 sends that a CORS preflight may ask for; anything else is not allowed.
CORS_HEADERS = frozenset(
    {"hx-request", "hx-source", "hx-current-url", "hx-target", "hx-request-type", "hx-boosted", "last-event-id"}
)


class EmbedError(ValueError):
    """An embed token that can't be created as asked; the message is meant for the admin."""


@dataclass(frozen=True, slots=True)
class Scope:
    """What one embed token may show. New filters (a region for the KPIs, a site…) become fields here, checked in
    `of` and applied in `shows`; the stream code asks only these two."""

    view: EmbedView
    nvr_id: int | None = None
    region: str | None = None

    @classmethod
    def of(cls, view: str, *, nvr_id: int | None = None, region: str | None = None) -> Scope:
        for known in VIEWS:
            if view == known:
                break
        else:
            raise EmbedError(f"view must be one of {', '.join(VIEWS)}")
        if (known == "nvr") != (nvr_id is not None):
            raise EmbedError("view nvr needs --nvr ID; the other views take no NVR")
        if nvr_id is not None and not 0 < nvr_id < 2**53:
            raise EmbedError("--nvr must be an NVR id")
        if region is not None:
            if known != "nvrs":
                raise EmbedError("--region applies to the nvrs view only")
            region = region.strip()
            if not region or len(region) > protocol.MAX_TEXT or not protocol._printable(region):
                raise EmbedError(f"--region is 1 to {protocol.MAX_TEXT} printable characters")
        return cls(known, nvr_id, region)

    def describe(self) -> str:
        if self.view == "nvr":
            return f"nvr {self.nvr_id}"
        return f"nvrs in region {self.region}" if self.region is not None else self.view

    def shows(self, nvr: Nvr) -> bool:
        return self.region is None or nvr.region == self.region


def check_origins(origins: Iterable[str]) -> list[str]:
    """Exact origins (scheme://host[:port]); no wildcard: a token is framed or read by the portals named, no others."""
    clean: list[str] = []
    for raw in origins:
        origin = raw.strip().rstrip("/")
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname or "*" in origin:
            raise EmbedError(f"{raw!r} is not an origin such as https://portal.example.com")
        if parts.path or parts.query or parts.fragment or parts.username or parts.password:
            raise EmbedError(f"{raw!r}: an origin has no path, query or credentials")
        normal = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        if normal not in clean:
            clean.append(normal)
    if len(clean) > MAX_ORIGINS:
        raise EmbedError(f"at most {MAX_ORIGINS} origins per token")
    return clean


async def create(
    credentials: Credentials, scope: Scope, *, origins: Iterable[str], ttl: float, label: str, created_by: str
) -> tuple[str, int]:
    """A new embed token; returns (token, id). The token is shown once: only its hash is kept."""
    allowed = check_origins(origins)
    if not 0 < ttl <= MAX_TTL:
        raise EmbedError("an embed token lives at most 365 days")
    label = label.strip()
    if len(label) > protocol.MAX_TEXT or not protocol._printable(label):
        raise EmbedError(f"a label is at most {protocol.MAX_TEXT} printable characters")
    token = "emb_" + secrets.token_urlsafe(32)
    now = time.time()
    embed_id = await credentials.add_embed(
        hash_token(token), token[:8], scope.view, nvr_id=scope.nvr_id, region=scope.region, origins=allowed,
        label=label, now=now, expires=now + ttl, created_by=created_by,
    )  # fmt: skip
    return token, embed_id


class EmbedViews:
    """First paint, replay and refresh of a scope, like nvrmon.live.views for pages but limited to the scope's regions.

    Embed streams don't subscribe to the page views' broadcasts (whose bytes may hold toasts and events, and whose
    windows may not cover the scope): one watcher reads the store's sequence twice a second while any embed stream is
    open and wakes them all when it moved; each then renders what its scope shows.
    """

    def __init__(self, store: Store, renderer: Renderer, settings: Settings) -> None:
        self.store = store
        self.renderer = renderer
        self.settings = settings
        self.streams = 0
        self._moved = asyncio.Event()
        # Embeds of one token share what a change renders to; a little memory saves a query per viewer and change.
        self._cache: OrderedDict[tuple[Scope, int], tuple[int, str]] = OrderedDict()

    async def context(self, scope: Scope) -> dict[str, Any] | None:
        cursor = Cursor(self.store.epoch, await self.store.current_seq())
        ctx: dict[str, Any] = {"scope": scope, "cursor": cursor, "now": time.time(), "oob": False}
        if scope.view == "kpis":
            ctx["summary"] = await self.store.summary()
        elif scope.view == "nvrs":
            ctx["summary"] = await self.store.summary() if scope.region is None else None
            ctx["nvrs"] = [n for n in await self.store.nvrs() if scope.shows(n)]
        else:
            nvr = await self.store.nvr(scope.nvr_id or 0)
            if nvr is None:
                return None
            ctx["nvr"] = nvr
            ctx["cameras"] = await self.store.cameras(nvr_id=nvr.id)
        return ctx

    async def watch(self, broadcaster: Broadcaster) -> None:
        seen = await self.store.current_seq()
        while True:
            await asyncio.sleep(WAKE_INTERVAL)
            if not self.streams:
                continue
            current = await self.store.current_seq()
            if current != seen or broadcaster.closing:
                seen = current
                self._moved.set()
                self._moved = asyncio.Event()  # the next change wakes the streams again

    async def moved(self) -> None:
        await self._moved.wait()

    async def refresh(self, scope: Scope) -> str:
        ctx = await self.context(scope)
        return "" if ctx is None else self.renderer.render("embed_regions.html", **{**ctx, "oob": True})

    async def catch_up(self, scope: Scope, cursor: Cursor | None) -> tuple[int, str]:
        """(head, out-of-band html) bringing a viewer at `cursor` up to date; a full refresh when it can't replay."""
        head = await self.store.current_seq()
        if cursor is None or cursor.epoch != self.store.epoch or cursor.seq < await self.store.horizon():
            return head, await self.refresh(scope)
        if cursor.seq >= head:
            return head, ""
        cached = self._cache.get((scope, cursor.seq))
        if cached is not None and cached[0] >= head:
            return cached
        changed = await self.store.changed_since(cursor.seq, self.settings.replay_max_rows)
        html = await self.refresh(scope) if changed is None else await self._changes(scope, *changed)
        self._cache[(scope, cursor.seq)] = (head, html)
        while len(self._cache) > 256:
            self._cache.popitem(last=False)
        return head, html

    async def _changes(self, scope: Scope, nvr_ids: list[int], camera_ids: list[int]) -> str:
        if not nvr_ids and not camera_ids:
            return ""
        now = time.time()
        render = self.renderer.render
        if scope.view == "kpis":
            return render("fragments/kpis.html", summary=await self.store.summary(), oob=True, now=now)
        if scope.view == "nvrs":
            parts = []
            if scope.region is None:
                parts.append(render("fragments/nvr_stats.html", summary=await self.store.summary(), oob=True))
            nvrs = await self.store.nvrs(nvr_ids) if nvr_ids else []
            parts.append(self._rows("nvr-rows", "nvr", [n for n in nvrs if scope.shows(n)], now))
            parts.extend(f'<tr id="{n.dom_id}" hx-swap-oob="delete"></tr>' for n in nvrs if not scope.shows(n))
            return "".join(parts)
        parts = []
        if scope.nvr_id in nvr_ids:
            nvr = await self.store.nvr(scope.nvr_id or 0)
            if nvr is not None:
                parts.append(render("fragments/nvr_facts.html", nvr=nvr, oob=True, now=now))
        cameras = await self.store.cameras(camera_ids, include_removed=True) if camera_ids else []
        mine = [c for c in cameras if c.nvr_id == scope.nvr_id]
        parts.append(self._rows(f"nvr-{scope.nvr_id}-cameras", "camera", [c for c in mine if not c.removed], now))
        parts.extend(f'<tr id="{c.dom_id}" hx-swap-oob="delete"></tr>' for c in mine if c.removed)
        return "".join(parts)

    def _rows(self, target: str, kind: str, rows: list[Nvr] | list[Camera], now: float) -> str:
        """Changed rows as one upsert, as nvrmon.live.views sends them to pages."""
        if not rows:
            return ""
        live = "".join(self.renderer.render(f"fragments/{kind}_row.html", now=now, **{kind: r}) for r in rows)
        return f'<template hx type="upsert" hx-target="#{target}" key="data-key" sort>{live}</template>'


# -- HTTP -----------------------------------------------------------------------------------------------------------


async def _token(request: Request) -> EmbedToken | None:
    raw = str(request.path_params.get("token", ""))
    if not TOKEN_SHAPE.fullmatch(raw):
        return None
    auth: Auth = request.state.auth
    found = await auth.credentials.embed(hash_token(raw))
    return found if found is not None and found.usable(time.time()) else None


async def _checked(request: Request) -> tuple[EmbedToken, dict[str, str]] | Response:
    """The embed token of a cross-origin-capable route, with its CORS headers; or the refusal to send instead."""
    token = await _token(request)
    if token is None:
        return PlainTextResponse("embed not available", status_code=404, headers={"Cache-Control": "no-store"})
    allowed, headers = _cors(request, token)
    if not allowed:
        return PlainTextResponse("origin not allowed for this embed", status_code=403, headers=headers)
    return token, headers


def _cors(request: Request, token: EmbedToken) -> tuple[bool, dict[str, str]]:
    """(allowed, headers): same-origin and origin-less requests pass; a cross-origin one only from the allowlist,
    answered with that one origin (never `*`, never credentials: the token in the URL is the credential)."""
    origin = request.headers.get("origin")
    headers = {"Vary": "Origin", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    if origin is None or urlsplit(origin).netloc == request.headers.get("host", ""):
        return True, headers
    if origin not in token.origins:
        return False, headers
    headers["Access-Control-Allow-Origin"] = origin
    return True, headers


def _unavailable(status: int = 404) -> Response:
    # Carries no data and no controls, so any portal may frame it: better than the browser's "refused to connect".
    return HTMLResponse(
        "<!doctype html><title>nvrmon embed</title><p>This nvrmon embed is not available: the link is wrong, "
        "expired or revoked.</p>",
        status_code=status,
        headers={"Content-Security-Policy": content_security_policy(["*"]), "Cache-Control": "no-store"},
    )


async def page(request: Request) -> Response:
    token = await _token(request)
    if token is None:
        return _unavailable()
    embeds: EmbedViews = request.state.embeds
    scope = Scope(token.view, token.nvr_id, token.region)
    ctx = await embeds.context(scope)
    if ctx is None:
        return _unavailable()
    path = f"/embed/{request.path_params['token']}"
    renderer: Renderer = request.state.renderer
    html = renderer.render(
        "embed.html", title=scope.describe(), events_url=f"{path}/events?since={ctx['cursor']}", **ctx
    )
    headers = {
        "Content-Security-Policy": content_security_policy(["'self'", *token.origins]),
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",  # the token is in this page's URL
    }
    return HTMLResponse(html, headers=headers)


async def fragment(request: Request) -> Response:
    """CORS mode: the scope's regions as plain HTML with a stream element that keeps them live, for hx-get."""
    checked = await _checked(request)
    if isinstance(checked, Response):
        return checked
    token, headers = checked
    embeds: EmbedViews = request.state.embeds
    ctx = await embeds.context(Scope(token.view, token.nvr_id, token.region))
    if ctx is None:
        return PlainTextResponse("embed not available", status_code=404, headers=headers)
    base = str(request.base_url).rstrip("/")
    events = f"{base}/embed/{request.path_params['token']}/events?since={ctx['cursor']}"
    renderer: Renderer = request.state.renderer
    html = renderer.render("embed_fragment.html", events_url=events, **ctx)
    return HTMLResponse(html, headers=headers)


async def preflight(request: Request) -> Response:
    token = await _token(request)
    if token is None:
        return Response(status_code=404)
    allowed, headers = _cors(request, token)
    asked = {h.strip().lower() for h in request.headers.get("access-control-request-headers", "").split(",")}
    asked.discard("")
    if not allowed or request.headers.get("access-control-request-method", "GET") != "GET" or asked - CORS_HEADERS:
        return Response(status_code=403, headers=headers)
    headers.update(
        {
            "Access-Control-Allow-Methods": "GET",
            "Access-Control-Allow-Headers": ", ".join(sorted(asked)),
            "Access-Control-Max-Age": "600",
        }
    )
    return Response(status_code=204, headers=headers)


async def events(request: Request) -> Response | Bound:
    checked = await _checked(request)
    if isinstance(checked, Response):
        return checked
    token, headers = checked
    auth: Auth = request.state.auth
    settings: Settings = request.state.settings
    scope = Scope(token.view, token.nvr_id, token.region)
    if scope.view == "nvr" and await request.state.store.nvr(scope.nvr_id or 0) is None:
        return PlainTextResponse("no such device", status_code=404, headers=headers)
    cursor = Cursor.parse(request.headers.get("last-event-id")) or Cursor.parse(request.query_params.get("since"))
    stream = EventSourceResponse(
        _stream(request.state.embeds, request.state.views, request.state.broadcaster, settings, scope, cursor),
        ping=settings.sse_heartbeat,
        ping_message_factory=lambda: ServerSentEvent(event="heartbeat", data=json.dumps({"t": round(time.time(), 3)})),
        send_timeout=settings.sse_send_timeout,
        headers=headers,
    )
    # Revoked (in this process or by the CLI) or expired: the open stream ends at once.
    ended = asyncio.Event()
    release = auth.revocations.hold("embed", token.id, ended.set)
    expiry = asyncio.get_running_loop().call_later(max(0.0, token.expires - time.time()), ended.set)

    def over() -> None:
        release()
        expiry.cancel()

    return Bound(stream, ended, over)


async def _stream(
    embeds: EmbedViews,
    views: Views,
    broadcaster: Broadcaster,
    settings: Settings,
    scope: Scope,
    cursor: Cursor | None,
) -> AsyncIterator[bytes]:
    embeds.streams += 1
    try:
        retry = int(settings.sse_retry_ms * random.uniform(1.0, 2.0))
        yield encode(json.dumps({"view": "embed"}), event="ready", retry=retry)
        head, html = await embeds.catch_up(scope, cursor)
        if html:
            yield encode(html, id=str(views.cursor(head)))
        while True:
            await embeds.moved()
            if broadcaster.closing:
                yield encode("{}", event="bye", retry=random.randint(1000, 5000))
                return
            head, html = await embeds.catch_up(scope, views.cursor(head))
            if html:
                yield encode(html, id=str(views.cursor(head)))
    finally:
        embeds.streams -= 1


def _embed_access(endpoint: Endpoint) -> Endpoint:
    """Embed routes authenticate with the token in their path, never with a session cookie."""

    async def with_no_identity(request: Request) -> Any:
        request.state.identity = None
        return await endpoint(request)

    with_no_identity.__name__ = endpoint.__name__
    with_no_identity.__dict__["nvrmon_access"] = "embed-token"
    return with_no_identity


def routes() -> list[Route]:
    return [
        Route("/embed/{token}", _embed_access(page), methods=["GET"]),
        Route("/embed/{token}/fragment", _embed_access(fragment), methods=["GET"]),
        Route("/embed/{token}/fragment", _embed_access(preflight), methods=["OPTIONS"]),
        Route("/embed/{token}/events", _embed_access(events), methods=["GET"]),
        Route("/embed/{token}/events", _embed_access(preflight), methods=["OPTIONS"]),
    ]
