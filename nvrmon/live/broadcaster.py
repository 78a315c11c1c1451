"""Stage 5, fan-out: pre-encoded SSE bytes to every subscriber of a view, through bounded per-subscriber queues."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Generator
from typing import Any

from starlette.types import Send

from nvrmon.live import sse
from nvrmon.live.admission import StreamCaps
from nvrmon.live.backlog import Backlog, give_back_memory

log = logging.getLogger("nvrmon.live.broadcaster")


class Subscriber:
    """One open stream (or one held long-poll). `cursor` is the last sequence it has been sent.

    Two ways to deliver. Queued: bytes wait in a bounded queue for the stream's own task; if the queue overflows the
    backlog is dropped and `lagged` set, and the stream converges from the store instead. Direct: once a stream has
    nothing queued it hands the broadcaster its server `send` (`direct`), and each delivery is written on the spot,
    with no task switch. If the server applies backpressure (the client reads slowly), that send can't finish at
    once: it is parked in `parked`, direct mode ends, and the stream's task finishes it and takes over again.

    A client that stops reading is cut off (`cut_off`): its connection is aborted, which drops what the server holds
    for it at once and ends any send waiting for it to drain.
    """

    __slots__ = (
        "view", "cursor", "lagged", "broken", "task", "sending_since", "direct", "parked", "backlog", "_queue",
        "_limit", "_wakeup", "transport",
    )  # fmt: skip

    def __init__(self, view: str, limit: int, transport: str = "sse") -> None:
        self.view = view
        self.transport = transport  # "sse" (an open stream) or "poll" (a held long-poll): counted apart on /metrics
        self.cursor = 0
        self.lagged = False
        self.broken = False  # a direct send failed: the connection is gone
        self.task: asyncio.Task[None] | None = None  # the stream's writer, cancelled if a send hangs
        self.sending_since = 0.0  # loop time a send started; 0 when not sending
        self.direct: Send | None = None
        self.parked: tuple[Generator[Any, None, None], Any] | None = None
        # What the connection holds for the client, through the server's transport (None when the server doesn't
        # hand it over, e.g. in-process tests): how a stuck client is seen, and cut off (abort).
        self.backlog: Backlog | None = None
        self._queue: deque[tuple[int, bytes]] = deque()
        self._limit = limit
        self._wakeup = asyncio.Event()

    def offer(self, seq: int, data: bytes) -> None:
        if self.lagged or self.broken:
            return
        if self.direct is not None:
            if seq:
                if seq <= self.cursor:
                    return
                self.cursor = seq
            self._write_now(self.direct, data)
            return
        if len(self._queue) >= self._limit:
            # Too slow to keep up: forget the backlog; the stream resumes from `cursor` out of the store instead.
            self.resync()
            return
        self._queue.append((seq, data))
        self._wakeup.set()

    def _write_now(self, send: Send, data: bytes) -> None:
        # The server's send is a coroutine that, without backpressure, writes to the socket and returns without
        # ever suspending; stepping it here does exactly that. If it does suspend, it is waiting for the socket to
        # drain: park it (with what it waits for) for the stream's task, which resumes it like any awaited call.
        if self.backlog is not None:
            self.backlog.sent += len(data)
        sending = send({"type": "http.response.body", "body": data, "more_body": True}).__await__()
        try:
            waiting = sending.send(None)
        except StopIteration:
            return
        except Exception:
            log.debug("a direct send to a subscriber of %s failed", self.view, exc_info=True)
            self.direct, self.broken = None, True
            self._wakeup.set()
            return
        self.direct = None
        self.parked = (sending, waiting)
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

    def resync(self) -> None:
        """Forget what is queued and catch up from `cursor` out of the store (the stream's task does it)."""
        self._queue.clear()
        self.lagged = True
        self._wakeup.set()

    def stalled(self, now: float, limit: float) -> bool:
        """True once this client has taken nothing for `limit` seconds while bytes waited for it (which also
        catches a client that stopped reading after the last change: no send is waiting then, and none may come for
        a long time), or, without a transport to look at, once a send has waited that long."""
        if self.backlog is not None:
            return self.backlog.stalled(now, limit)
        return bool(self.sending_since) and now - self.sending_since > limit

    def cut_off(self) -> None:
        """End this stream now: the connection is reset (see Backlog.abort), which frees what is buffered for it
        at once, and uvicorn then sees the connection lost, which releases a send waiting to drain; the stream's
        task finds `broken` and ends normally, with nothing to cancel."""
        self.broken = True
        self.direct = None
        self._queue.clear()
        if self.backlog is not None:
            self.backlog.abort()
        elif self.task is not None:
            self.task.cancel()
        self._wakeup.set()


async def resume(sending: Generator[Any, None, None], waiting: Any) -> None:
    """Finish a send that suspended in `Subscriber._write_now`: await what it waits for, then step it on, exactly
    as a task would, until it returns."""
    while True:
        try:
            if waiting is None:
                await asyncio.sleep(0)  # a bare yield: just give the loop a turn
            else:
                await waiting
        except BaseException as exc:  # the awaited future failed (or we are cancelled): the send sees it
            try:
                waiting = sending.throw(exc)
            except StopIteration:
                return
            continue
        try:
            waiting = sending.send(None)
        except StopIteration:
            return


class Broadcaster:
    def __init__(self, queue_limit: int, caps: StreamCaps | None = None) -> None:
        self._queue_limit = queue_limit
        self.caps = caps or StreamCaps(0, 0)  # streams per session and per address (EventStream admits them)
        self._views: dict[str, set[Subscriber]] = {}
        # Long-poll clients aren't connected when a toast goes out, so the last few are kept for them.
        self._toasts: deque[tuple[int, list[dict[str, Any]]]] = deque(maxlen=32)
        self.closing = False
        # For /metrics (read at scrape time): messages and bytes handed to subscribers, streams that overflowed their
        # queue (they catch up from the store) and streams cut off for taking nothing.
        self.deliveries = 0
        self.delivered_bytes = 0
        self.overflows = 0
        self.cut_offs = 0

    def subscribe(self, view: str, transport: str = "sse") -> Subscriber:
        sub = Subscriber(view, self._queue_limit, transport)
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

    def subscribers_by_transport(self) -> dict[str, int]:
        counts = {"sse": 0, "poll": 0}
        for subs in self._views.values():
            for sub in subs:
                counts[sub.transport] = counts.get(sub.transport, 0) + 1
        return counts

    def publish(self, seq: int, messages: dict[str, bytes], broadcast: bytes = b"") -> int:
        """Hand each view's bytes (plus bytes for everyone, e.g. toasts) to its subscribers; never awaits.

        seq 0 marks bytes that carry no rows (statistics): delivered as they are, without moving any cursor.
        Returns the longest queue met, which tells the publisher whether subscribers keep up.
        """
        backlog = 0
        for view, subs in self._views.items():
            data = messages.get(view, b"") + broadcast
            if data:
                self.deliveries += len(subs)
                self.delivered_bytes += len(subs) * len(data)
                for sub in subs:
                    if sub._queue or sub.parked is not None:  # a client that isn't keeping up
                        backlog = max(backlog, len(sub._queue) + 2 * (sub.parked is not None))
                        if len(sub._queue) >= self._queue_limit and not sub.lagged:
                            self.overflows += 1  # this offer drops its queue (Subscriber.resync)
                    sub.offer(seq, data)
        return backlog

    def remember_toasts(self, seq: int, toasts: list[dict[str, Any]]) -> None:
        self._toasts.append((seq, toasts))

    def toasts_since(self, seq: int, limit: int = 8) -> list[dict[str, Any]]:
        found = [toast for at, toasts in self._toasts if at > seq for toast in toasts]
        return found[-limit:]

    async def housekeeping(self, heartbeat: float, send_timeout: float) -> None:
        """For every stream at once: a named heartbeat every `heartbeat` seconds, rendered once (the page's watchdog
        listens for it), and a stream whose client has taken nothing for `send_timeout` is cut off (its browser
        reconnects and resumes from its cursor). This runs on its own clock, so a stuck client is cut off even when
        nothing more is sent to it."""
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + heartbeat
        while True:
            await asyncio.sleep(min(1.0, heartbeat))
            now = loop.time()
            stuck = [sub for subs in self._views.values() for sub in subs if sub.stalled(now, send_timeout)]
            self.cut_offs += len(stuck)
            for sub in stuck:
                log.info("cutting off a subscriber of %s: it took nothing for %.0f s", sub.view, send_timeout)
                sub.cut_off()
                self.unsubscribe(sub)
            if stuck:
                # Their transports are released once the loop has run their connection_lost callbacks.
                loop.call_later(0.5, give_back_memory)
            if now >= next_beat:
                next_beat = now + heartbeat
                beat = sse.heartbeat()
                for subs in self._views.values():
                    for sub in subs:
                        sub.offer(0, beat)

    def resync_all(self) -> None:
        """Changes were committed that no live message will carry: every stream converges from the store, as a
        stream whose queue overflowed does (and a held long-poll looks again)."""
        for subs in self._views.values():
            for sub in subs:
                sub.resync()

    def close_all(self) -> None:
        """Shutdown: wake every stream so it can say goodbye (a randomised retry) and end."""
        self.closing = True
        for subs in self._views.values():
            for sub in subs:
                sub.poke()
