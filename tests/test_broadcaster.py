from __future__ import annotations

import asyncio

import pytest

from nvrmon.live import sse
from nvrmon.live.broadcaster import Broadcaster, resume
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


async def test_direct_subscriber_writes_on_the_spot_in_order() -> None:
    hub = Broadcaster(queue_limit=8)
    sub = hub.subscribe("nvrs")
    sent: list[bytes] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message["body"])  # type: ignore[arg-type]

    sub.direct = send
    hub.publish(1, {"nvrs": b"a"})
    hub.publish(1, {"nvrs": b"dup"})  # not past the cursor: skipped
    hub.publish(0, {"nvrs": b"stats"})  # no cursor: always delivered
    hub.publish(2, {"nvrs": b"b"})
    assert sent == [b"a", b"stats", b"b"] and sub.cursor == 2 and sub.drain() == []


async def test_direct_send_under_backpressure_is_parked_then_finished_in_order() -> None:
    hub = Broadcaster(queue_limit=8)
    sub = hub.subscribe("nvrs")
    sent: list[bytes] = []
    drained = asyncio.get_running_loop().create_future()

    async def send(message: dict[str, object]) -> None:
        if message["body"] == b"slow":
            await drained  # the socket's buffer is full until the client reads
        sent.append(message["body"])  # type: ignore[arg-type]

    sub.direct = send
    hub.publish(1, {"nvrs": b"slow"})
    hub.publish(2, {"nvrs": b"next"})  # must not overtake the parked send
    assert sub.parked is not None and sub.direct is None and sent == []
    assert sub.drain() == [(2, b"next")]
    sending, waiting = sub.parked
    finisher = asyncio.create_task(resume(sending, waiting))
    drained.set_result(None)
    await finisher
    assert sent == [b"slow"]


async def test_failed_direct_send_marks_the_subscriber_broken() -> None:
    hub = Broadcaster(queue_limit=8)
    sub = hub.subscribe("nvrs")

    async def send(message: dict[str, object]) -> None:
        raise OSError("connection reset")

    sub.direct = send
    hub.publish(1, {"nvrs": b"x"})
    assert sub.broken and sub.direct is None
