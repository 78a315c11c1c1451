"""Stage 5, fan-out: pre-encoded SSE bytes to every subscriber of a view, through bounded per-subscriber queues."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from typing import Any

log = logging.getLogger("nvrmon.broadcaster")


def encode(data: str, *, id: str | None = None, event: str | None = None, retry: int | None = None) -> bytes:
    """One SSE message as bytes; done once per view and change, never per subscriber."""
    lines = []
    if event:
        lines.append(f"event: {event}")
    if id is not None:
        lines.append(f"id: {id}")
    if retry is not None:
        lines.append(f"retry: {retry}")
    lines.extend(f"data: {line}" for line in data.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    return ("\n".join(lines) + "\n\n").encode()


class Subscriber:
    """One open stream. `cursor` is the last sequence it has been sent; `lagged` means its queue overflowed."""

    __slots__ = ("view", "cursor", "lagged", "task", "sending_since", "_queue", "_limit", "_wakeup")

    def __init__(self, view: str, limit: int) -> None:
        self.view = view
        self.cursor = 0
        self.lagged = False
        self.task: asyncio.Task[None] | None = None  # the stream's writer, cancelled if a send hangs
        self.sending_since = 0.0  # loop time a send started; 0 when not sending
        self._queue: deque[tuple[int, bytes]] = deque()
        self._limit = limit
        self._wakeup = asyncio.Event()

    def offer(self, seq: int, data: bytes) -> None:
        if self.lagged:
            return
        if len(self._queue) >= self._limit:
            # Too slow to keep up: forget the backlog; the stream resumes from `cursor` out of the store instead.
            self._queue.clear()
            self.lagged = True
        else:
            self._queue.append((seq, data))
        self._wakeup.set()

    async def wait(self) -> None:
        await self._wakeup.wait()
        self._wakeup.clear()

    def drain(self) -> list[tuple[int, bytes]]:
        items = list(self._queue)
        self._queue.clear()
        return items

    def poke(self) -> None:
        self._wakeup.set()


class Broadcaster:
    def __init__(self, queue_limit: int) -> None:
        self._queue_limit = queue_limit
        self._views: dict[str, set[Subscriber]] = {}
        # Long-poll clients aren't connected when a toast goes out, so the last few are kept for them.
        self._toasts: deque[tuple[int, list[dict[str, Any]]]] = deque(maxlen=32)
        self.closing = False

    def subscribe(self, view: str) -> Subscriber:
        sub = Subscriber(view, self._queue_limit)
        self._views.setdefault(view, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        """Idempotent, so `finally` blocks can always call it."""
        subs = self._views.get(sub.view)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._views[sub.view]

    def views(self) -> list[str]:
        return list(self._views)

    @property
    def subscriber_count(self) -> int:
        return sum(len(subs) for subs in self._views.values())

    def publish(self, seq: int, messages: dict[str, bytes], broadcast: bytes = b"") -> int:
        """Hand each view's bytes (plus bytes for everyone, e.g. toasts) to its subscribers; never awaits.

        seq 0 marks bytes that carry no rows (statistics): delivered as they are, without moving any cursor.
        Returns the longest queue met, which tells the publisher whether subscribers keep up.
        """
        backlog = 0
        for view, subs in self._views.items():
            data = messages.get(view, b"") + broadcast
            if data:
                for sub in subs:
                    backlog = max(backlog, len(sub._queue))
                    sub.offer(seq, data)
        return backlog

    def remember_toasts(self, seq: int, toasts: list[dict[str, Any]]) -> None:
        self._toasts.append((seq, toasts))

    def toasts_since(self, seq: int, limit: int = 8) -> list[dict[str, Any]]:
        found = [toast for at, toasts in self._toasts if at > seq for toast in toasts]
        return found[-limit:]

    async def housekeeping(self, heartbeat: float, send_timeout: float) -> None:
        """For every stream at once: a named heartbeat every `heartbeat` seconds, rendered once (the page's watchdog
        listens for it), and a stream whose send has hung longer than `send_timeout` is cut off (its browser
        reconnects and resumes from its cursor)."""
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + heartbeat
        while True:
            await asyncio.sleep(min(1.0, heartbeat))
            now = loop.time()
            for subs in self._views.values():
                for sub in subs:
                    if sub.sending_since and now - sub.sending_since > send_timeout and sub.task is not None:
                        log.info("dropping a subscriber of %s: a send hung for %.0f s", sub.view, send_timeout)
                        sub.task.cancel()
            if now >= next_beat:
                next_beat = now + heartbeat
                beat = encode(json.dumps({"t": round(time.time(), 3)}), event="heartbeat")
                for subs in self._views.values():
                    for sub in subs:
                        sub.offer(0, beat)

    def close_all(self) -> None:
        """Shutdown: wake every stream so it can say goodbye (a randomised retry) and end."""
        self.closing = True
        for subs in self._views.values():
            for sub in subs:
                sub.poke()
