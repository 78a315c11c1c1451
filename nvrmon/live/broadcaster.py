"""Stage 5, fan-out: pre-framed SSE bytes written to every subscriber of a view, or through bounded queues."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any, Protocol

from nvrmon.live import sse
from nvrmon.live.admission import StreamCaps
from nvrmon.live.backlog import Backlog, give_back_memory

log = logging.getLogger("nvrmon.live.broadcaster")


# A stream whose connection holds more than this unsent (beyond what the kernel holds) is treated as a slow consumer:
# no more direct writes; it converges from the store from its cursor once its client has taken what is buffered.
WRITE_LIMIT = 256 * 1024


def frame(data: bytes) -> bytes:
    """One HTTP/1.1 chunk: what uvicorn writes for an ASGI body message of a chunked response, built once per view."""
    return b"%x\r\n%b\r\n" % (len(data), data)


class Sink(Protocol):
    """What a direct subscriber writes to: the connection's transport (uvloop's or asyncio's)."""

    def write(self, data: bytes) -> None: ...

    def get_write_buffer_size(self) -> int: ...


class Subscriber:
    """One open stream (or one held long-poll). `cursor` is the last sequence it has been sent.

    Two ways to deliver. Queued: bytes wait in a bounded queue for the stream's own task; if the queue overflows the
    backlog is dropped and `lagged` set, and the stream converges from the store instead. Direct: once a stream
    served by uvicorn has nothing queued it hands the broadcaster its connection's transport (`sink`), and each
    delivery is written to it on the spot as the view's one pre-framed chunk (the same bytes object for every
    subscriber of the view; no coroutine, no ASGI message). A transport holding more than WRITE_LIMIT unsent
    ends direct mode: the subscriber is `lagged`, and its task catches up from the store through the server's own
    (flow-controlled) send.

    A client that stops reading is cut off (`cut_off`): its connection is aborted, which drops what the server holds
    for it at once and ends any send waiting for it to drain.
    """

    __slots__ = ("view", "cursor", "lagged", "broken", "task", "sending_since", "sink", "backlog", "_queue", "_limit",
                 "_woken", "_waiter", "transport")  # fmt: skip

    def __init__(self, view: str, limit: int, transport: str = "sse") -> None:
        self.view = view
        self.transport = transport  # "sse" (an open stream) or "poll" (a held long-poll): counted apart on /metrics
        self.cursor = 0
        self.lagged = False
        self.broken = False  # the connection is gone (or its right was revoked): the stream ends
        self.task: asyncio.Task[None] | None = None  # set only where a cut-off must cancel a task (no transport)
        self.sending_since = 0.0  # loop time a send through the server started; 0 when not sending
        self.sink: Sink | None = None
        # What the connection holds for the client, through the server's transport (None when the server doesn't
        # hand it over, e.g. in-process tests): how a stuck client is seen, and cut off (abort).
        self.backlog: Backlog | None = None
        # Both made only when needed: an idle direct stream holds neither (a deque or an Event is ~0.6 KB each).
        self._queue: deque[tuple[int, bytes]] | None = None
        self._limit = limit
        self._woken = False
        self._waiter: asyncio.Future[None] | None = None

    def offer(self, seq: int, data: bytes, framed: bytes | None = None) -> bool:
        """Deliver (or queue) one message; False if it made this subscriber fall back on the store."""
        if self.lagged or self.broken:
            return True
        sink = self.sink
        if sink is not None:
            if seq and seq <= self.cursor:
                return True
            return self.write(sink, seq, framed or frame(data))
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        elif len(queue) >= self._limit:
            # Too slow to keep up: forget the backlog; the stream resumes from `cursor` out of the store instead.
            self.resync()
            return False
        queue.append((seq, data))
        self.poke()
        return True

    def write(self, sink: Sink, seq: int, framed: bytes) -> bool:
        """A direct write (seq already checked against the cursor); False if the client is too far behind."""
        try:
            if sink.get_write_buffer_size() > WRITE_LIMIT:
                self.resync()  # the cursor stays where the client is: the catch-up starts from there
                return False
            sink.write(framed)
        except Exception:  # the transport is closed (its loss not yet reported): the stream ends
            log.debug("a direct write to a subscriber of %s failed", self.view, exc_info=True)
            self.end()
            return True
        if seq:
            self.cursor = seq
        if self.backlog is not None:
            self.backlog.sent += len(framed)
        return True

    async def wait(self) -> None:
        """Until poked (at once if poked since the last wait). One waiter at a time: the stream's own task."""
        if not self._woken:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        self._woken = False

    def drain(self) -> list[tuple[int, bytes]]:
        queue, self._queue = self._queue, None  # released: a stream that keeps up holds no queue
        return list(queue) if queue else []

    @property
    def queued(self) -> int:
        return len(self._queue) if self._queue is not None else 0

    def poke(self) -> None:
        self._woken = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def resync(self) -> None:
        """Forget what is queued and catch up from `cursor` out of the store (the stream's task does it)."""
        self._queue = None
        self.sink = None
        self.lagged = True
        self.poke()

    def end(self) -> None:
        """The stream is over (connection lost, right revoked): no more writes; its task ends."""
        self.broken = True
        self.sink = None
        self._queue = None
        self.poke()

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
        self.end()
        if self.backlog is not None:
            self.backlog.abort()
        elif self.task is not None:
            self.task.cancel()


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
        # What lets a stream opened at the head start without reading the store (see `settled`): the store's seq as
        # of this hub's last commit (set by the application; -1 unknown), the seq up to which every change has been
        # handed out (or dropped for want of subscribers), and the flushes under way, each with the views it renders
        # for: each `views()` that found views begins one, and the next `publish` ends the latest (a flush begun
        # while another renders, the storage banner's, has no await between the two: it ends first).
        self.committed = -1
        self.published = -1
        self._flights: list[frozenset[str]] = []

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
        """The views with subscribers, for the publisher: the start of a flush (see `settled`)."""
        keys = list(self._views)
        if keys:
            self._flights.append(frozenset(keys))
        else:
            # No one to render for: what is committed so far is dropped (or needs no one), so a stream that comes
            # later must be at least this far along to rely on live messages.
            self.published = max(self.published, self.committed)
        return keys

    def settled(self, view: str, seq: int) -> bool:
        """Whether a subscriber of `view` (subscribed already) whose page shows everything up to `seq` gets every
        later change live, so that its catch-up is empty without a look at the store.

        True when `seq` lies between `published` and this hub's last commit, and no flush under way renders without
        this view: every change past `published` is then still pending in the publisher (the next flush renders
        for every view subscribed by then) or in a flush that renders for this view. A cursor past the last commit
        may be another hub's, or not this database's: the store decides then, as it does for an older cursor.
        """
        if not 0 <= self.published <= seq <= self.committed:
            return False
        return all(view in flight for flight in self._flights)

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

        Each view's message is framed once, as one HTTP chunk, and that one bytes object is written to the transport
        of every direct subscriber of the view. seq 0 marks bytes that carry no rows (statistics): delivered as they
        are, without moving any cursor. Returns the longest queue met, which tells the publisher whether
        subscribers keep up (2 for a subscriber that fell back on the store).
        """
        backlog = 0
        limit = self._queue_limit
        if self._flights:
            self._flights.pop()
        if seq:
            self.published = max(self.published, seq)  # a rows flush: every change up to `seq` rendered
        for view, subs in self._views.items():
            data = messages.get(view, b"") + broadcast
            if not data:
                continue
            self.deliveries += len(subs)
            self.delivered_bytes += len(subs) * len(data)
            framed = frame(data)
            for sub in subs:
                sink = sub.sink
                if sink is not None:  # the common case, inlined: one size check and one write
                    if (not seq or seq > sub.cursor) and not sub.write(sink, seq, framed):
                        self.overflows += 1
                        backlog = max(backlog, 2)
                    continue
                queued = sub.queued
                if queued:  # a client that isn't keeping up
                    backlog = max(backlog, queued)
                    if queued >= limit and not sub.lagged:
                        self.overflows += 1  # this offer drops its queue (Subscriber.resync)
                sub.offer(seq, data, framed)
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
                framed = frame(beat)
                for subs in self._views.values():
                    for sub in subs:
                        sub.offer(0, beat, framed)

    def resync_all(self) -> None:
        """Changes were committed that no live message will carry: every stream converges from the store, as a
        stream whose queue overflowed does (and a held long-poll looks again). The flush that failed is over, and
        a new stream can rely on live messages only from the last commit on."""
        self._flights.clear()
        self.published = max(self.published, self.committed)
        for subs in self._views.values():
            for sub in subs:
                sub.resync()

    def close_all(self) -> None:
        """Shutdown: wake every stream so it can say goodbye (a randomised retry) and end."""
        self.closing = True
        for subs in self._views.values():
            for sub in subs:
                sub.poke()
