"""Wiring, the listening socket: uvicorn's protocols with deadlines, a per-address cap and WebSocket frame budgets.

uvicorn bounds idle keep-alive connections but not a request head that trickles in: a client sending one header line
every few seconds holds its connection (and a file descriptor) for as long as it likes. Here every request head,
the WebSocket upgrade included, must be complete within `request_head_timeout`, and one client address may hold at
most `max_connections_per_address` connections (trusted proxies excepted: every browser behind one shares its address).

A WebSocket peer can make the server work without ever delivering a message to the application: millions of tiny
continuation frames, or a flood of pings and pongs, are parsed and answered below the app, so the app's own limits
(rate, hello deadline) never see them. Here a message may have at most `MAX_FRAGMENTS` frames and a connection may
send `CONTROL_RATE` control frames a second (burst `CONTROL_BURST`); an offender is closed with 1008 at once, and
what it sent after that is not parsed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame

from nvrmon.settings import Settings

log = logging.getLogger("nvrmon.server")

# Browsers and the websockets library send a text message as one frame; 64 leaves room for any sane fragmenting client.
MAX_FRAGMENTS = 64
# Pings and pongs per second per connection (a keep-alive needs one every few seconds).
CONTROL_RATE = 5.0
CONTROL_BURST = 50


def _refusal(status: bytes, text: bytes, retry_after: int) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: "
        + str(retry_after).encode() + b"\r\ncontent-length: " + str(len(text)).encode()
        + b"\r\nconnection: close\r\n\r\n" + text
    )  # fmt: skip


TOO_MANY_CONNECTIONS = _refusal(b"429 Too Many Requests", b"too many connections from this address\n", 5)
HEAD_TIMEOUT = _refusal(b"408 Request Timeout", b"request head not received in time\n", 1)


class ConnectionLimits:
    """Counts open connections per client address; shared by the HTTP and WebSocket protocol of one server."""

    def __init__(self, head_timeout: float, per_address: int, exempt: frozenset[str]) -> None:
        self.head_timeout = head_timeout
        self.per_address = per_address
        self.exempt = exempt
        self.counts: dict[str, int] = {}
        # transport -> address: a connection upgraded to WebSocket is the same transport seen by a second protocol.
        self.owners: dict[int, str] = {}
        self.refused = 0

    def admit(self, transport: asyncio.BaseTransport) -> bool:
        key = id(transport)
        if key in self.owners:
            return True
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if self.per_address > 0 and address not in self.exempt and self.counts.get(address, 0) >= self.per_address:
            self.refused += 1
            if self.refused in (1, 10, 100, 1000) or self.refused % 10_000 == 0:
                log.warning("refused %d connections over the per-address cap (%d), latest from %s",
                            self.refused, self.per_address, address)  # fmt: skip
            return False
        self.owners[key] = address
        self.counts[address] = self.counts.get(address, 0) + 1
        return True

    def release(self, transport: asyncio.BaseTransport | None) -> None:
        address = self.owners.pop(id(transport), None)
        if address is None:
            return
        left = self.counts[address] - 1
        if left:
            self.counts[address] = left
        else:
            del self.counts[address]


def guarded_protocols(settings: Settings) -> tuple[type[asyncio.Protocol], type[asyncio.Protocol]]:
    """The HTTP and WebSocket protocol classes for uvicorn.Config(http=..., ws=...), sharing one ConnectionLimits."""
    limits = ConnectionLimits(settings.request_head_timeout, settings.max_connections_per_address, settings.proxies)

    class GuardedHttp(HttpToolsProtocol):
        head_timer: asyncio.TimerHandle | None = None
        lost: list[Callable[[], None]] | None = None  # called when the connection is lost (an open stream's end)

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if not limits.admit(transport):
                transport.write(TOO_MANY_CONNECTIONS)
                transport.close()
                return
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            # The app's SSE streams need the transport to cut off a client that stopped reading (abort frees the
            # buffers; nvrmon.live.broadcaster.Subscriber.cut_off). uvicorn puts it nowhere an app can reach.
            extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
            extensions["nvrmon.transport"] = self.transport
            # ... and to hear when the connection goes without a task per stream waiting for http.disconnect.
            if self.lost is None:
                self.lost = []
            extensions["nvrmon.lost"] = self.lost
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            limits.release(self.transport)
            super().connection_lost(exc)
            for callback in list(self.lost or ()):
                callback()

        def _arm(self) -> None:
            if self.head_timer is None and limits.head_timeout > 0:
                self.head_timer = self.loop.call_later(limits.head_timeout, self._head_expired)

        def _disarm(self) -> None:
            if self.head_timer is not None:
                self.head_timer.cancel()
                self.head_timer = None

        def _head_expired(self) -> None:
            self.head_timer = None
            if not self.transport.is_closing():
                self.transport.write(HEAD_TIMEOUT)
                self.transport.close()

    class GuardedWebSocket(WebSocketsSansIOProtocol):
        evicted = False
        fragments = 0
        control_tokens = float(CONTROL_BURST)
        control_at = 0.0

        def connection_lost(self, exc: Exception | None) -> None:
            limits.release(self.transport)
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if not self.evicted:  # after an eviction the rest is not even parsed
                super().data_received(data)

        def handle_cont(self, event: Frame) -> None:
            self.fragments += 1
            if self.fragments > MAX_FRAGMENTS:
                self._evict(f"more than {MAX_FRAGMENTS} frames in one message")
            elif not self.evicted:
                super().handle_cont(event)

        def handle_text(self, event: Frame) -> None:
            self.fragments = 1
            if not self.evicted:
                super().handle_text(event)

        def handle_bytes(self, event: Frame) -> None:
            self.fragments = 1
            if not self.evicted:
                super().handle_bytes(event)

        def handle_ping(self) -> None:
            if self._control_allowed():
                super().handle_ping()

        def handle_pong(self, event: Frame) -> None:
            if self._control_allowed():
                super().handle_pong(event)

        def _control_allowed(self) -> bool:
            if self.evicted:
                return False
            now = time.monotonic()
            self.control_tokens = min(CONTROL_BURST, self.control_tokens + (now - self.control_at) * CONTROL_RATE)
            self.control_at = now
            if self.control_tokens < 1:
                self._evict("control frame flood")
                return False
            self.control_tokens -= 1
            return True

        def _evict(self, reason: str) -> None:
            if self.evicted:
                return
            self.evicted = True
            self.frames = []
            log.warning("closing WebSocket from %s: %s", self.client[0] if self.client else "?", reason)
            self.transport.pause_reading()
            self.conn.send_close(1008, reason)
            self.transport.write(b"".join(self.conn.data_to_send()))
            # The peer's close reply is not awaited: it has shown it won't play by the rules.
            self.transport.close()

    return GuardedHttp, GuardedWebSocket


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn.Config keyword arguments for the guarded protocols."""
    http, ws = guarded_protocols(settings)
    return {"http": http, "ws": ws}
