"""A minimal SSE reader over a real HTTP connection (httpx streaming against a live uvicorn, never in-process)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

import httpx


@dataclass
class SseMessage:
    data: str
    id: str | None = None
    event: str | None = None

    def ids(self, prefix: str) -> set[str]:
        """Row ids in this message's fragments: `prefix` then digits (e.g. 'nvr-' finds nvr-3, not nvr-stats)."""
        return set(re.findall(rf'id="({re.escape(prefix)}\d+)"', self.data))


class SseStream:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()
        self.last_id: str | None = None

    async def next(self, timeout: float = 5, *, skip_heartbeats: bool = True) -> SseMessage:
        return await asyncio.wait_for(self._next(skip_heartbeats), timeout)

    async def _next(self, skip_heartbeats: bool) -> SseMessage:
        data: list[str] = []
        msg_id = event = None
        async for line in self._lines:
            if line == "":
                if data or event:
                    msg = SseMessage("\n".join(data), msg_id, event)
                    if msg_id:
                        self.last_id = msg_id
                    if skip_heartbeats and event in ("heartbeat", "ready"):
                        data, msg_id, event = [], None, None
                        continue
                    return msg
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "data":
                data.append(value)
            elif field == "id":
                msg_id = value
            elif field == "event":
                event = value
        raise EOFError("stream ended")

    async def until(self, predicate: object, timeout: float = 5) -> SseMessage:
        """Read messages until one satisfies predicate(msg); fails after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            msg = await self.next(max(0.01, deadline - loop.time()))
            if predicate(msg):  # type: ignore[operator]
                return msg


class Hub(Protocol):
    """A live hub and the headers (session cookie) its requests need; tests.conftest.LiveHub is one."""

    @property
    def url(self) -> str: ...

    headers: dict[str, str]


@asynccontextmanager
async def open_stream(
    hub: Hub | str, query: str, last_event_id: str | None = None, path: str = "/events"
) -> AsyncIterator[SseStream]:
    base_url, headers = (hub, {}) if isinstance(hub, str) else (hub.url, dict(hub.headers))
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(10, read=None)) as client,
        client.stream("GET", f"{path}?{query}", headers=headers) as response,
    ):
        assert response.status_code == 200, response.status_code
        yield SseStream(response)
