"""A stream's start may use its session as last read (no database round trip in a reconnect storm), but never past a
revocation: whatever may have revoked it empties the cache, and a stream held after that is checked again."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

import pytest
from starlette.requests import Request

from nvrmon.access.sessions import SESSION_COOKIE, Auth
from nvrmon.settings import Settings
from nvrmon.store.credentials import Credentials

pytestmark = pytest.mark.anyio


def request_with(auth: Auth, session_id: str) -> Request:
    cookie = f"{SESSION_COOKIE}={auth.sign(session_id)}".encode()
    scope = {"type": "http", "method": "GET", "path": "/events", "headers": [(b"cookie", cookie)], "scheme": "http",
             "server": ("127.0.0.1", 80), "query_string": b"", "state": {}}  # fmt: skip
    return Request(scope)


async def test_stream_starts_reuse_the_session_until_anything_may_have_revoked_it(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    hub_side, cli_side = await Credentials.open(db), await Credentials.open(db)
    try:
        auth = await Auth.open(Settings(db_path=db), hub_side)
        now = time.time()
        user = await hub_side.add_user("ada", "viewer", "hash", now)
        session_hash = hashlib.sha256(b"sid").hexdigest()
        await hub_side.create_session(session_hash, user, now, "")
        first = await auth.identify(request_with(auth, "sid"), stream=True)
        assert first is not None and first.name == "ada"
        await cli_side.delete_session(session_hash)  # `nvrmon user remove` in another process
        # A page request always asks the database; a stream start may still see the session as last read ...
        assert await auth.identify(request_with(auth, "sid")) is None
        epoch = auth.revocations.epoch
        assert await auth.identify(request_with(auth, "sid"), stream=True) is not None
        # ... until the revocation watch sees the change (here: told in-process), which empties the cache first.
        auth.revocations.notify()
        assert auth.revocations.epoch != epoch
        assert await auth.identify(request_with(auth, "sid"), stream=True) is None
    finally:
        await hub_side.close()
        await cli_side.close()


async def test_a_stream_held_after_the_cache_was_emptied_is_checked_again(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    credentials = await Credentials.open(db)
    try:
        auth = await Auth.open(Settings(db_path=db), credentials)
        now = time.time()
        user = await credentials.add_user("ada", "viewer", "hash", now)
        await credentials.create_session("gone", user, now, "")
        await credentials.delete_session("gone")  # the watch starts after it: no generation change left to see
        watch = asyncio.create_task(auth.revocations.run())
        await asyncio.sleep(0.05)
        ended = asyncio.Event()
        # Held only now (its session was read before): a recheck ends it at once, not at the next full check (15 s).
        auth.revocations.hold("session", "gone", ended.set)
        auth.revocations.recheck()
        await asyncio.wait_for(ended.wait(), 0.8)
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
    finally:
        await credentials.close()
