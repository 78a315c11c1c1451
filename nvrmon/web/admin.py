"""Stage 7, administration pages (admin role): agent, embed and API tokens (create, list, revoke), NVR removal."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from nvrmon.access import agent_tokens as tokens
from nvrmon.access import api_tokens, audit
from nvrmon.access import embed_tokens as embed
from nvrmon.access.audit import actor_of, client_address
from nvrmon.access.guard import guard, page_context
from nvrmon.access.sessions import Auth, Identity, read_form
from nvrmon.live.renderer import Renderer
from nvrmon.models import FleetAdmin, Nvr
from nvrmon.store.api_tokens import API_SCOPES, ApiTokenTables
from nvrmon.store.credentials import ROLES, Conflict
from nvrmon.store.fleet import Store
from nvrmon.web import notify

NVR_ORDER = {"offline": 0, "missing": 0, "unknown": 1, "stale": 2, "online": 3}  # the likeliest to remove first


async def _render(request: Request, *, status: int = 200, **extra: Any) -> HTMLResponse:
    auth: Auth = request.state.auth
    renderer: Renderer = request.state.renderer
    now = time.time()
    credentials = auth.credentials
    agent_tokens = [(t, tokens.state(t, now)) for t in await credentials.agent_tokens()]
    embeds = [
        (e, embed.Scope(e.view, e.nvr_id, e.region), "revoked" if e.revoked else "expired" if now >= e.expires else "")
        for e in await credentials.embeds()
    ]
    store: Store = request.state.store
    nvrs: list[Nvr] = sorted(await store.nvrs(), key=lambda n: (NVR_ORDER[n.status], n.hostname))
    context: dict[str, Any] = {"created": None, "error": "", "form": {}, "notice": "", "channel_form": {}}
    context.update(await notify.admin_context(request))  # the Notifications section (web/notify.py)
    context.update(extra)
    html = renderer.render(
        "admin.html", title="Administration", active="admin", users=await credentials.users(),
        agent_tokens=agent_tokens, embeds=embeds, views=embed.VIEWS, now=now, base_url=str(request.base_url), nvrs=nvrs,
        api_tokens=await ApiTokenTables(credentials.database).all(), api_scopes=API_SCOPES, roles=ROLES,
        **context, **page_context(request),
    )  # fmt: skip
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


async def overview(request: Request) -> Response:
    return await _render(request)


async def create_embed(request: Request) -> Response:
    auth: Auth = request.state.auth
    identity: Identity = request.state.identity
    form = await read_form(request)
    try:
        nvr = form.get("nvr", "").strip()
        scope = embed.Scope.of(
            form.get("view", ""),
            nvr_id=int(nvr) if nvr.isdigit() and len(nvr) < 16 else None,
            region=form.get("region", "").strip() or None,
        )
        token, embed_id = await embed.create(
            auth.credentials, scope, origins=form.get("origins", "").split(),
            ttl=tokens.parse_duration(form.get("expires", "7d")), label=form.get("label", ""),
            created_by=identity.name,
        )  # fmt: skip
    except (embed.EmbedError, tokens.TokenError) as exc:
        return await _render(request, status=400, error=str(exc), form=form)
    created = {"kind": "embed", "id": embed_id, "token": token, "path": f"/embed/{token}", "what": scope.describe()}
    await audit.note(request, "embed.create", scope.describe(), f"id {embed_id}, origins {form.get('origins', '')}")
    return await _render(request, created=created)


async def revoke_embed(request: Request) -> Response:
    auth: Auth = request.state.auth
    embed_id = request.path_params["embed_id"]
    if await auth.credentials.revoke_embed(embed_id, time.time()):
        await audit.note(request, "embed.revoke", str(embed_id))
    auth.revocations.notify()
    return await _render(request)


async def create_agent_token(request: Request) -> Response:
    auth: Auth = request.state.auth
    form = await read_form(request)
    try:
        expires = form.get("expires", "").strip()
        token, token_id = await tokens.create_nvr_token(
            auth.credentials, form.get("hostname", "").strip(), tokens.parse_duration(expires) if expires else 0.0
        )
    except tokens.TokenError as exc:
        return await _render(request, status=400, error=str(exc), form=form)
    hostname = form.get("hostname", "").strip()
    created = {"kind": "agent", "id": token_id, "token": token, "what": hostname}
    await audit.note(request, "agent_token.create", hostname, f"id {token_id}")
    return await _render(request, created=created)


async def revoke_agent_token(request: Request) -> Response:
    auth: Auth = request.state.auth
    token_id = str(request.path_params["token_id"])
    if await auth.credentials.revoke_agent_tokens(token_id, time.time()):
        await audit.note(request, "agent_token.revoke", token_id)
    auth.revocations.notify()
    return await _render(request)


async def create_api_token(request: Request) -> Response:
    auth: Auth = request.state.auth
    form = await read_form(request)
    name = form.get("name", "").strip()
    try:
        token, token_id = await api_tokens.create(
            auth.credentials.database, name, form.get("scope", ""), actor=actor_of(request.state.identity),
            address=client_address(request),
        )  # fmt: skip
    except (api_tokens.ApiTokenError, Conflict) as exc:
        return await _render(request, status=400, error=str(exc), form=form)
    created = {"kind": "api", "id": token_id, "token": token, "what": f"{name} ({form.get('scope')})"}
    return await _render(request, created=created)


async def revoke_api_token(request: Request) -> Response:
    auth: Auth = request.state.auth
    tables = ApiTokenTables(auth.credentials.database)
    revoked = await tables.revoke(
        str(request.path_params["token_id"]), time.time(), actor=actor_of(request.state.identity),
        address=client_address(request),
    )  # fmt: skip
    if revoked is None:
        return await _render(request, status=404, error="No such live API token (revoked already?).")
    return await _render(request, notice=f"Revoked API token {revoked.name}: its next request is refused.")


async def remove_nvr(request: Request) -> Response:
    """Remove an NVR with its cameras and agent tokens, through the hub's writer; open pages drop its rows."""
    auth: Auth = request.state.auth
    identity: Identity = request.state.identity
    store: Store = request.state.store
    hub: FleetAdmin = request.state.hub
    nvr = await store.nvr(request.path_params["nvr_id"])
    if nvr is None or not await hub.remove_nvr(nvr.hostname, identity.name):
        return await _render(request, status=404, error="No such NVR (removed already?).")
    auth.revocations.notify()  # connections on its own agent tokens close now, not at the next poll
    await audit.note(request, "nvr.remove", nvr.hostname, "with its cameras and agent tokens")
    return await _render(request, notice=f"Removed NVR {nvr.hostname}, its cameras and its agent tokens.")


render = _render  # web/notify.py's channel actions answer with this whole page too


def routes() -> list[Route]:
    return [
        Route("/admin", guard("admin", overview), methods=["GET"]),
        Route("/admin/embeds", guard("admin", create_embed), methods=["POST"]),
        Route("/admin/embeds/{embed_id:int}/revoke", guard("admin", revoke_embed), methods=["POST"]),
        Route("/admin/tokens", guard("admin", create_agent_token), methods=["POST"]),
        Route("/admin/tokens/{token_id:int}/revoke", guard("admin", revoke_agent_token), methods=["POST"]),
        Route("/admin/nvrs/{nvr_id:int}/remove", guard("admin", remove_nvr), methods=["POST"]),
        Route("/admin/api-tokens", guard("admin", create_api_token), methods=["POST"]),
        Route("/admin/api-tokens/{token_id:int}/revoke", guard("admin", revoke_api_token), methods=["POST"]),
    ]


render = _render  # the admin page with a notice or an error, for the other admin modules (web/admin_accounts.py)
