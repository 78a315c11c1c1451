from __future__ import annotations

import asyncio

import pytest

from nvrmon.live import sse
from nvrmon.live.admission import StreamCaps
from nvrmon.live.backlog import Backlog
from nvrmon.live.broadcaster import WRITE_LIMIT, Broadcaster
from nvrmon.live.sse import encode

pytestmark = pytest.mark.anyio


def test_encode_splits_lines_and_sets_fields() -> None:
    assert encode("a\nb", id="e-3") == b"id: e-3\ndata: a\ndata: b\n\n"
    assert encode("x\r\ny", event="toast") == b"event: toast\ndata: x\ndata: y\n\n"


def test_stream_control_events_are_named_and_spread_their_retries() -> None:
    ready = sse.ready("embed:nvr/3", 2000).decode()
    assert ready.startswith("event: ready\nretry: ") and 'data: {"view": "embed:nvr/3"}' in ready
    assert 2000 <= int(ready.split("retry: ")[1].split("\n")[0]) <= 4000
    bye = sse.bye().decode()
    assert bye.startswith("event: bye\nretry: ") and 1000 <= int(bye.split("retry: ")[1].split("\n")[0]) <= 5000
    assert sse.heartbeat().startswith(b'event: heartbeat\ndata: {"t": ')
    assert encode("", retry=500) == b"retry: 500\ndata: \n\n"


def test_publish_reaches_only_subscribers_of_that_view() -> None:
    hub = Broadcaster(queue_limit=8)
    nvrs, cams = hub.subscribe("nvrs"), hub.subscribe("cameras")
    hub.publish(1, {"nvrs": b"N"})
    assert nvrs.drain() == [(1, b"N")] and cams.drain() == []


def test_broadcast_bytes_go_to_every_view() -> None:
    hub = Broadcaster(queue_limit=8)
    nvrs, cams = hub.subscribe("nvrs"), hub.subscribe("cameras")
    hub.publish(2, {"nvrs": b"N"}, b"T")
    assert nvrs.drain() == [(2, b"NT")] and cams.drain() == [(2, b"T")]


def test_subscribers_of_one_view_share_the_same_bytes_object() -> None:
    hub = Broadcaster(queue_limit=8)
    a, b = hub.subscribe("nvrs"), hub.subscribe("nvrs")
    payload = b"<tr id='nvr-1'></tr>"
    hub.publish(1, {"nvrs": payload})
    assert a.drain()[0][1] is b.drain()[0][1]


def test_slow_subscriber_is_marked_lagged_and_its_backlog_dropped() -> None:
    hub = Broadcaster(queue_limit=3)
    slow, fast = hub.subscribe("nvrs"), hub.subscribe("nvrs")
    for seq in range(1, 5):
        hub.publish(seq, {"nvrs": b"x"})
        fast.drain()
    assert slow.lagged and slow.drain() == []
    assert not fast.lagged
    hub.publish(9, {"nvrs": b"y"})
    assert slow.drain() == []  # stays dropped until its stream has caught up from the store


def test_unsubscribe_is_idempotent_and_forgets_empty_views() -> None:
    hub = Broadcaster(queue_limit=3)
    sub = hub.subscribe("nvr:4")
    hub.unsubscribe(sub)
    hub.unsubscribe(sub)
    assert hub.views() == [] and hub.subscriber_count == 0


async def test_wait_wakes_on_offer() -> None:
    hub = Broadcaster(queue_limit=3)
    sub = hub.subscribe("nvrs")
    hub.publish(1, {"nvrs": b"x"})
    await sub.wait()
    assert sub.drain() == [(1, b"x")]


class Wire:
    """A transport as a direct subscriber sees it: what was written to it, and what it still holds unsent."""

    def __init__(self, held: int = 0, fails: bool = False) -> None:
        self.written: list[bytes] = []
        self.held = held
        self.fails = fails

    def write(self, data: bytes) -> None:
        if self.fails:
            raise RuntimeError("unable to perform operation on <TCPTransport closed=True>")
        self.written.append(data)

    def get_write_buffer_size(self) -> int:
        return self.held


def test_direct_subscribers_get_one_framed_chunk_per_view_in_order() -> None:
    hub = Broadcaster(queue_limit=8)
    sub, other = hub.subscribe("nvrs"), hub.subscribe("nvrs")
    wire, other_wire = Wire(), Wire()
    sub.sink, other.sink = wire, other_wire
    hub.publish(1, {"nvrs": b"a"})
    hub.publish(1, {"nvrs": b"dup"})  # not past the cursor: skipped
    hub.publish(0, {"nvrs": b"stats"})  # no cursor: always delivered
    hub.publish(2, {"nvrs": b"b" * 20})
    assert wire.written == [b"1\r\na\r\n", b"5\r\nstats\r\n", b"14\r\n" + b"b" * 20 + b"\r\n"]
    assert sub.cursor == 2 and sub.drain() == []
    # HTTP/1.1 chunked framing, built once: every subscriber of the view is handed the very same bytes object.
    assert all(mine is theirs for mine, theirs in zip(wire.written, other_wire.written, strict=True))


def test_direct_subscriber_over_the_write_limit_falls_back_on_the_store_from_its_cursor() -> None:
    hub = Broadcaster(queue_limit=8)
    slow, fast = hub.subscribe("nvrs"), hub.subscribe("nvrs")
    slow_wire, fast_wire = Wire(), Wire()
    slow.sink, fast.sink = slow_wire, fast_wire
    hub.publish(1, {"nvrs": b"a"})
    slow_wire.held = WRITE_LIMIT + 1  # the client stopped reading: the transport's buffer grew past the bound
    backlog = hub.publish(2, {"nvrs": b"b"})
    assert slow.lagged and slow.sink is None and slow.cursor == 1  # its task catches up from 1, out of the store
    assert len(slow_wire.written) == 1 and len(fast_wire.written) == 2 and fast.cursor == 2
    assert backlog == 2 and hub.overflows == 1
    hub.publish(3, {"nvrs": b"c"})
    assert len(slow_wire.written) == 1 and slow.drain() == []  # nothing piles up while it is behind


def test_failed_direct_write_marks_the_subscriber_broken() -> None:
    hub = Broadcaster(queue_limit=8)
    sub = hub.subscribe("nvrs")
    sub.sink = Wire(fails=True)
    hub.publish(1, {"nvrs": b"x"})
    assert sub.broken and sub.sink is None and sub.cursor == 0


class HeldBytes:
    """A transport whose client takes nothing unless told to: what the server holds for it, and whether it was
    aborted."""

    def __init__(self) -> None:
        self.size = 0
        self.aborted = False

    def get_write_buffer_size(self) -> int:
        return self.size

    def get_extra_info(self, name: str) -> object:
        return None

    def is_closing(self) -> bool:
        return self.aborted

    def abort(self) -> None:
        self.aborted = True


def test_a_client_that_takes_nothing_is_stalled_after_the_limit_even_with_nothing_more_sent() -> None:
    hub = Broadcaster(queue_limit=8)
    sub = hub.subscribe("cameras")
    held = HeldBytes()
    sub.backlog = Backlog(held)  # type: ignore[arg-type]
    held.size = sub.backlog.sent = 50_000  # the last change went out; the client read none of it
    assert not sub.stalled(100.0, 10.0)
    assert not sub.stalled(105.0, 10.0)
    assert sub.stalled(110.5, 10.0)  # no send is waiting, and none will come: the clock alone decides


def test_a_slow_client_that_keeps_taking_bytes_is_not_stalled() -> None:
    hub = Broadcaster(queue_limit=8)
    sub = hub.subscribe("cameras")
    held = HeldBytes()
    sub.backlog = Backlog(held)  # type: ignore[arg-type]
    for second in range(30):
        sub.backlog.sent += 3_000  # more goes out every second ...
        held.size = 40_000 + (second % 3) * 1_000  # ... and the client takes about as much
        assert not sub.stalled(float(second), 10.0)


def test_cut_off_aborts_the_connection_and_ends_the_stream_without_cancelling_it() -> None:
    hub = Broadcaster(queue_limit=8)
    sub = hub.subscribe("cameras")
    held = HeldBytes()
    sub.backlog = Backlog(held)  # type: ignore[arg-type]
    hub.publish(1, {"cameras": b"x"})
    sub.cut_off()
    assert held.aborted and sub.broken and sub.drain() == []
    hub.publish(2, {"cameras": b"y"})
    assert sub.drain() == []  # nothing more is queued for a connection that is gone


def test_stream_caps_count_per_session_and_per_address_and_exempt_proxies() -> None:
    caps = StreamCaps(per_session=2, per_address=3, exempt=frozenset({"10.0.0.1"}))
    assert caps.admit("s1", "a") is None and caps.admit("s1", "a") is None
    assert "session" in (caps.admit("s1", "a") or "")
    assert caps.admit("s2", "a") is None
    assert "address" in (caps.admit("s3", "a") or "")
    caps.release("s1", "a")
    assert caps.admit("s3", "a") is None
    assert all(caps.admit(f"p{n}", "10.0.0.1") is None for n in range(10))  # behind a trusted proxy


def test_broadcaster_counts_deliveries_overflows_and_cut_offs_for_metrics() -> None:
    async def scenario() -> Broadcaster:
        broadcaster = Broadcaster(queue_limit=2)
        slow = broadcaster.subscribe("nvrs")
        broadcaster.subscribe("nvrs", "poll")
        for seq in (1, 2, 3):  # nobody drains: the third offer overflows the queues of both
            broadcaster.publish(seq, {"nvrs": b"data: x\n\n"})
        assert broadcaster.subscribers_by_transport() == {"sse": 1, "poll": 1}
        slow.sending_since = asyncio.get_running_loop().time() - 60  # a send that has hung for a minute
        housekeeping = asyncio.create_task(broadcaster.housekeeping(heartbeat=0.05, send_timeout=1))
        await asyncio.sleep(0.2)
        housekeeping.cancel()
        return broadcaster

    broadcaster = asyncio.run(scenario())
    assert (broadcaster.deliveries, broadcaster.delivered_bytes) == (6, 6 * len(b"data: x\n\n"))
    assert broadcaster.overflows == 2 and broadcaster.cut_offs == 1
    assert broadcaster.subscribers_by_transport() == {"sse": 0, "poll": 1}
