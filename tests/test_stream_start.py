"""A stream's start without a store read when the live messages continue from its cursor (Broadcaster.settled), its
response head written as uvicorn would write it, and a session cookie's MACs checked once."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from nvrmon.access.sessions import SESSION_COOKIE, Auth
from nvrmon.live.broadcaster import Broadcaster
from nvrmon.live.response_head import start_stream
from nvrmon.live.streams import EventStream, _page_headers
from nvrmon.live.viewkey import View
from nvrmon.live.views import CatchUp
from nvrmon.models import Cursor
from nvrmon.settings import Settings
from nvrmon.store.credentials import Credentials
from tests.asgi_server import serving
from tests.fake_views import AtHead

pytestmark = pytest.mark.anyio


# -- Broadcaster.settled ----------------------------------------------------------------------------------------------


def started(seq: int) -> Broadcaster:
    broadcaster = Broadcaster(16)
    broadcaster.committed = broadcaster.published = seq  # as the application sets them once the hub has started
    return broadcaster


def test_settled_is_exactly_the_range_from_the_last_publish_to_the_last_commit() -> None:
    broadcaster = started(5)
    broadcaster.subscribe("cameras")
    assert broadcaster.settled("cameras", 5)
    assert not broadcaster.settled("cameras", 4)  # behind: it needs rows from the store
    assert not broadcaster.settled("cameras", 6)  # past this hub's commits: another hub's cursor, or no cursor of ours
    broadcaster.committed = 7  # committed, not yet flushed: pending in the publisher, delivered live
    assert broadcaster.settled("cameras", 6) and broadcaster.settled("cameras", 5)
    assert not Broadcaster(16).settled("cameras", 0)  # nothing known yet


def test_a_view_missing_from_a_flush_under_way_is_not_settled() -> None:
    broadcaster = started(5)
    broadcaster.subscribe("nvrs")
    broadcaster.committed = 6
    assert broadcaster.views() == ["nvrs"]  # the publisher starts a flush of seq 6 for "nvrs" only
    broadcaster.subscribe("cameras")  # a new view while it renders: the flush will carry nothing for it
    assert broadcaster.settled("nvrs", 5)
    assert not broadcaster.settled("cameras", 5)
    broadcaster.publish(6, {"nvrs": b"x"})
    assert not broadcaster.settled("cameras", 5)  # seq 6 went to nvrs only
    assert broadcaster.settled("cameras", 6)


def test_a_flush_to_no_one_and_a_failed_flush_move_the_settled_range_to_the_last_commit() -> None:
    broadcaster = started(5)
    broadcaster.committed = 6
    assert broadcaster.views() == []  # seq 6 flushed to no one: dropped
    sub = broadcaster.subscribe("cameras")
    assert not broadcaster.settled("cameras", 5) and broadcaster.settled("cameras", 6)
    broadcaster.committed = 7
    broadcaster.views()
    broadcaster.resync_all()  # the flush of seq 7 failed: no live message will carry it
    assert sub.lagged
    assert not broadcaster.settled("cameras", 6) and broadcaster.settled("cameras", 7)


def test_nested_flushes_keep_every_rendered_view_until_the_last_ends() -> None:
    broadcaster = started(5)
    broadcaster.subscribe("nvrs")
    broadcaster.views()  # a rows flush begins
    broadcaster.subscribe("cameras")
    broadcaster.publish(0, dict.fromkeys(broadcaster.views(), b"banner"))  # the storage banner, meanwhile
    assert not broadcaster.settled("cameras", 5)  # the rows flush still renders without it
    broadcaster.publish(5, {})
    assert broadcaster.settled("cameras", 5)


# -- a stream opened at the head, under uvicorn -----------------------------------------------------------------------


class Counting(AtHead):
    """The part of Views a stream uses, counting the catch-ups (each one a store read or more)."""

    def __init__(self) -> None:
        self.catch_ups = 0
        self.store = type("Store", (), {"epoch": "e"})()

    async def catch_up(self, view: View, cursor: Cursor | None) -> CatchUp:
        self.catch_ups += 1
        return CatchUp(5, "", changed=False)


class Rig:
    def __init__(self) -> None:
        self.views = Counting()
        self.broadcaster = started(5)
        self.cursor: Cursor | None = None
        self.port = 0

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            views: Any = self.views
            await EventStream(views, self.broadcaster, Settings(), View("cameras"), self.cursor)(scope, receive, send)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    rig = Rig()
    async with serving(rig.app) as rig.port:
        yield rig


async def first_message(rig: Rig) -> tuple[bytes, bytes, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", rig.port)
    writer.write(b"GET /events?view=cameras HTTP/1.1\r\nHost: t\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    size = int((await asyncio.wait_for(reader.readuntil(b"\r\n"), 5)).strip(), 16)
    return head, await reader.readexactly(size + 2), writer


async def test_a_stream_opened_at_the_head_reads_nothing_from_the_store(rig: Rig) -> None:
    rig.broadcaster.subscribe("cameras")  # a page of this view is open already
    rig.cursor = Cursor("e", 5)
    head, chunk, writer = await first_message(rig)
    assert b" 200 " in head and b"transfer-encoding: chunked" in head and b"content-security-policy" in head
    assert chunk.startswith(b"event: ready\n")
    assert rig.views.catch_ups == 0
    writer.close()


async def test_a_stream_behind_the_head_or_of_another_epoch_catches_up_from_the_store(rig: Rig) -> None:
    rig.broadcaster.subscribe("cameras")
    for cursor in (Cursor("e", 4), Cursor("other", 5), None):
        rig.cursor = cursor
        head, chunk, writer = await first_message(rig)
        assert b" 200 " in head and chunk.startswith(b"event: ready\n")
        writer.close()
    assert rig.views.catch_ups == 3


# -- the response head ------------------------------------------------------------------------------------------------


class Transport:
    def __init__(self) -> None:
        self.written = b""

    def write(self, data: bytes) -> None:
        self.written += data

    def get_extra_info(self, name: str) -> Any:
        return None

    def is_closing(self) -> bool:
        return False


def cycle(transport: Transport) -> RequestResponseCycle:
    scope: Any = {"type": "http", "method": "GET", "path": "/events", "query_string": b"", "http_version": "1.1",
                  "headers": [], "client": ("127.0.0.1", 1)}  # fmt: skip
    logger = logging.getLogger("uvicorn.access")
    return RequestResponseCycle(scope, transport, FlowControl(transport), logger, logger, False,  # type: ignore[arg-type]
                                [(b"server", b"uvicorn"), (b"date", b"today")], asyncio.Event(), False, True,
                                lambda: None)  # fmt: skip


async def test_a_stream_head_is_what_uvicorns_own_send_writes() -> None:
    ours, theirs = Transport(), Transport()
    mine, uvicorns = cycle(ours), cycle(theirs)
    start_stream(mine, _page_headers(), b"event: ready\n\n", cache=True)
    await uvicorns.send({"type": "http.response.start", "status": 200, "headers": _page_headers()})
    await uvicorns.send({"type": "http.response.body", "body": b"event: ready\n\n", "more_body": True})
    assert ours.written == theirs.written
    # ... and the cycle is left as uvicorn's would be: the next body goes out as a chunk.
    await mine.send({"type": "http.response.body", "body": b"more", "more_body": True})
    assert ours.written.endswith(b"4\r\nmore\r\n") and mine.response_started and mine.chunked_encoding


# -- the session cookie -----------------------------------------------------------------------------------------------


def request_with(cookie: str) -> Request:
    scope = {"type": "http", "method": "GET", "path": "/events", "headers": [(b"cookie", cookie.encode())],
             "scheme": "http", "server": ("127.0.0.1", 80), "query_string": b"", "state": {}}  # fmt: skip
    return Request(scope)


async def test_a_stream_cookie_is_verified_once_and_a_forged_one_never_passes(tmp_path: Path) -> None:
    credentials = await Credentials.open(tmp_path / "c.db")
    try:
        auth = await Auth.open(Settings(db_path=tmp_path / "c.db"), credentials)
        now = time.time()
        user = await credentials.add_user("ada", "viewer", "hash", now)
        await credentials.create_session(hashlib.sha256(b"sid").hexdigest(), user, now, "")
        checks = 0
        unsign = auth.unsign

        def counted(raw: str | None) -> str | None:
            nonlocal checks
            checks += 1
            return unsign(raw)

        auth.unsign = counted  # type: ignore[method-assign]
        cookie = f"{SESSION_COOKIE}={auth.sign('sid')}"
        for _ in range(3):
            identity = await auth.identify(request_with(cookie), stream=True)
            assert identity is not None and identity.csrf == auth.csrf_for("sid")
        assert checks == 1
        forged = f"{SESSION_COOKIE}=sid.{'A' * 43}"
        for _ in range(2):
            assert await auth.identify(request_with(forged), stream=True) is None
        assert checks == 3
    finally:
        await credentials.close()


# -- the storage banner every catch-up carries ----------------------------------------------------------------------


def test_the_banner_rendered_once_while_ok_follows_the_storage_state() -> None:
    from nvrmon.ingest.health import StorageHealth
    from nvrmon.live.renderer import Renderer
    from nvrmon.live.views import Views

    settings = Settings()
    renderer = Renderer(settings.templates_dir, settings.static_dir, settings)
    health = StorageHealth()
    renderer.env.globals["hub_health"] = health
    views = Views(None, renderer, settings)  # type: ignore[arg-type]
    views.storage_degraded = lambda: health.degraded
    ok = views.health_banner()
    assert 'data-storage="ok"' in ok and views.health_banner() is ok
    health.failed(OSError("disk full"))
    assert 'data-storage="degraded"' in views.health_banner()
    health.committed()
    assert views.health_banner() == ok


# -- the stream URL ---------------------------------------------------------------------------------------------------


def test_a_stream_url_is_read_as_starlette_reads_it_and_its_view_parsed_once() -> None:
    from starlette.datastructures import QueryParams

    from nvrmon.live.streams import _query

    for raw in (b"view=cameras&id=per%3D1000&since=e-5", b"view=nvr&id=1&id=2&since=", b"a=%ZZ&view=x+y", b"x" * 3000):
        theirs = QueryParams(raw)
        assert dict(_query(raw)) == {key: theirs[key] for key in theirs}
    assert View.parse("cameras", "per=1000") is View.parse("cameras", "per=1000")
    assert View.parse("cameras", "per=1000") == View.for_list("cameras", {"per": "1000"})
