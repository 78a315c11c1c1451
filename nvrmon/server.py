"""Wiring, the listening socket: uvicorn's protocols with a deadline on each request head and a per-address cap.

uvicorn bounds idle keep-alive connections but not a request head that trickles in: a client sending one header line
every few seconds holds its connection (and a file descriptor) for as long as it likes. Here every request head,
the WebSocket upgrade included, must be complete within `request_head_timeout`, and one client address may hold at
most `max_connections_per_address` connections (trusted proxies excepted: every browser behind one shares its address).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from nvrmon.settings import Settings

log = logging.getLogger("nvrmon.server")


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
    exempt = frozenset(address.strip() for address in settings.trusted_proxies.split(",") if address.strip())
    limits = ConnectionLimits(settings.request_head_timeout, settings.max_connections_per_address, exempt)

    class GuardedHttp(HttpToolsProtocol):
        head_timer: asyncio.TimerHandle | None = None

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
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            limits.release(self.transport)
            super().connection_lost(exc)

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
        def connection_lost(self, exc: Exception | None) -> None:
            limits.release(self.transport)
            super().connection_lost(exc)

    return GuardedHttp, GuardedWebSocket


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn.Config keyword arguments for the guarded protocols."""
    http, ws = guarded_protocols(settings)
    return {"http": http, "ws": ws}
