"""Stage 1, ingress: the agent WebSocket (`/ws/agent`): authenticate (tokens), parse frames, hand work to the hub."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from nvrmon import protocol
from nvrmon.access import agent_tokens as tokens
from nvrmon.ingest.health import StorageUnavailable
from nvrmon.ingest.hello import lookalike_refusal
from nvrmon.ingest.hub import Hub
from nvrmon.ingest.session import AgentSession, Gone
from nvrmon.protocol import Hello, ProtocolError
from nvrmon.settings import Settings
from nvrmon.store.errors import is_storage_failure

log = logging.getLogger("nvrmon.ingest.endpoint")

HELLO_TIMEOUT = 10.0
SERVICE_RESTART = 1012
TRY_AGAIN_LATER = 1013
INTERNAL_ERROR = 1011
SHUTDOWN_DEFER = 3.0


async def agent_endpoint(websocket: WebSocket) -> None:
    hub: Hub = websocket.state.hub
    settings: Settings = websocket.state.settings
    access = await tokens.admit(websocket)
    if access is None:
        return  # refused before accept (HTTP 403), or told the hub is full (1013)
    client = websocket.client
    session = hub.new_session(f"{client.host}:{client.port}" if client else "unknown")
    access.watch(session)
    sender = asyncio.create_task(_send_loop(websocket, session))
    close_code: int | None = None
    try:
        close_code = await _receive_loop(websocket, session, hub, settings, sender, access)
    except WebSocketDisconnect as exc:
        close_code = exc.code
    finally:
        access.release()
        if session.nvr_id is not None:
            if close_code == SERVICE_RESTART:
                # Usually the hub itself shutting down (uvicorn closes agent sockets with 1012 first): then this never
                # runs and the next start shows the NVR "unknown". An agent that sent 1012 itself goes offline late.
                hub.defer(session, Gone("agent disconnected"), SHUTDOWN_DEFER)
            else:
                await hub.submit(session, Gone("agent disconnected"))
        if not sender.done():
            # Let queued error frames and a requested close go out, but never wait on a peer that stopped reading.
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(sender), 1.0)
            sender.cancel()


async def _receive_loop(
    websocket: WebSocket,
    session: AgentSession,
    hub: Hub,
    settings: Settings,
    sender: asyncio.Task[None],
    access: tokens.AgentAccess,
) -> int | None:
    """Read frames until the peer goes away (returns its close code) or the connection must end (returns None)."""
    hello_deadline = asyncio.get_running_loop().time() + HELLO_TIMEOUT
    while not sender.done():
        try:
            # Without a hello, the whole connection has HELLO_TIMEOUT seconds; other frames don't extend it.
            timeout = max(0.0, hello_deadline - asyncio.get_running_loop().time()) if session.nvr_id is None else None
            message = await asyncio.wait_for(websocket.receive(), timeout)
        except TimeoutError:
            session.post(protocol.error_frame("hello_required", f"no hello within {HELLO_TIMEOUT:g} s"))
            session.post((1008, "hello required"))
            return None
        if message["type"] == "websocket.disconnect":
            return int(message.get("code", 1000))
        budget = access.frame(session)  # before parsing: a flood must not cost the hub its parsing time
        if budget != "ok":
            if budget == "close":
                return None
            continue
        frame = message.get("text")
        if frame is None:
            session.post(protocol.error_frame("invalid_message", "binary frames are not part of the protocol"))
            continue
        try:
            parsed = protocol.parse_frame(
                frame, max_bytes=settings.max_frame_bytes, max_cameras=settings.max_cameras_per_nvr
            )
        except ProtocolError as exc:
            session.post(exc.frame())
            if exc.code == "frame_too_large":
                session.post((1009, "frame too large"))
                return None
            if exc.code == "unsupported_protocol":
                session.post((1002, "unsupported protocol version"))
                return None
            continue
        if isinstance(parsed, Hello):
            if session.nvr_id is not None and parsed.nvr.hostname != session.hostname:
                session.post(protocol.error_frame("invalid_message", "a connection speaks for one hostname only"))
                session.post((1008, "hostname changed"))
                return None
            if not await _register(session, parsed, hub, settings, access):
                return None
        elif session.nvr_id is None:
            session.post(protocol.error_frame("hello_required", "the first frame must be a hello"))
            session.post((1008, "hello required"))
            return None
        else:
            await hub.submit(session, parsed)
    return None


async def _register(
    session: AgentSession, hello: Hello, hub: Hub, settings: Settings, access: tokens.AgentAccess
) -> bool:
    """Claim the hostname, commit the registration and send welcome; False when the connection must end."""
    try:
        if hub.health.degraded:
            raise StorageUnavailable(hub.health.last_error)  # before claim: nothing is spent on a hello that must wait
        original = hub.hostnames.lookalike(hello.nvr.hostname)
        if original is not None:
            session.post(lookalike_refusal(hello.nvr.hostname, original))
            session.post((1008, "hostname not allowed"))
            return False
        refusal = await access.claim(hello.nvr.hostname)
        if refusal is not None:
            session.post(refusal.frame())
            session.post((1008, "hostname not allowed"))
            return False
        nvr_id = await hub.hello(session, hello)
        if not nvr_id:
            return False  # refused by the writer (a look-alike registered meanwhile): its error frame is on the way
    except Exception as exc:
        if isinstance(exc, StorageUnavailable) or is_storage_failure(exc):
            # Not silence: the agent keeps its frames and reconnects with backoff (docs/protocol.md).
            session.post(protocol.error_frame("storage_unavailable", "the hub cannot store data now; retry later"))
            session.post((TRY_AGAIN_LATER, "try again later"))
        else:
            log.exception("agent %s: hello for %s not stored", session.remote, hello.nvr.hostname)
            session.post(protocol.error_frame("invalid_message", "the hub could not store this hello"))
            session.post((INTERNAL_ERROR, "hello not stored"))
        return False
    issued = access.take_issued_token()
    session.post(protocol.welcome_frame(nvr_id, settings.heartbeat_interval, session.last_seq, issued))
    return True


async def _send_loop(websocket: WebSocket, session: AgentSession) -> None:
    try:
        while True:
            item = await session.outbox.get()
            if isinstance(item, tuple):
                code, reason = item
                if websocket.application_state != WebSocketState.DISCONNECTED:
                    await websocket.close(code=code, reason=reason)
                return
            await websocket.send_text(item)
    except (WebSocketDisconnect, RuntimeError, OSError) as exc:
        log.debug("agent %s: send failed: %s", session.remote, exc)
