"""Revocation: held connections end when their session, embed or agent token goes; streams are cut off cleanly."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from starlette.types import Message, Receive, Scope, Send

from nvrmon.access.revocation import Bound, Revocations
from nvrmon.settings import Settings
from nvrmon.store.credentials import Credentials

pytestmark = pytest.mark.anyio


async def test_bound_response_ends_the_stream_and_its_cleanup_runs_when_ended() -> None:
    cleaned, released = asyncio.Event(), asyncio.Event()
    sent: list[Message] = []

    async def stream(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"first", "more_body": True})
            await asyncio.Event().wait()  # a quiet stream
        finally:
            cleaned.set()  # where a stream unsubscribes

    async def receive() -> Message:
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    ended = asyncio.Event()
    task = asyncio.create_task(Bound(stream, ended, released.set)({"type": "http"}, receive, send))
    await asyncio.sleep(0.05)
    ended.set()
    await asyncio.wait_for(task, 1)
    assert cleaned.is_set() and released.is_set()
    assert [m.get("body") for m in sent[1:]] == [b"first", b""] and sent[-1]["more_body"] is False


async def test_revocations_end_exactly_the_connections_whose_right_is_gone(tmp_path: Path) -> None:
    credentials = await Credentials.open(tmp_path / "r.db")
    try:
        now = time.time()
        user = await credentials.add_user("ada", "admin", "hash", now)
        await credentials.create_session("kept", user, now, "")
        await credentials.create_session("gone", user, now, "")
        token = await credentials.add_agent_token("nvr", "nvr-a", "t-hash", "nvrt_", now)
        revocations = Revocations(credentials, Settings())
        ended: list[str] = []
        revocations.hold("session", "kept", lambda: ended.append("kept"))
        revocations.hold("session", "gone", lambda: ended.append("gone"))
        release = revocations.hold("agent", token, lambda: ended.append("released agent"))
        revocations.hold("agent", token, lambda: ended.append("agent"))
        release()
        await credentials.delete_session("gone")
        await credentials.revoke_agent_tokens("nvr-a", now)
        await revocations.check(time.time())
        assert sorted(ended) == ["agent", "gone"]
        await revocations.check(time.time())  # each is ended once
        assert len(ended) == 2 and revocations.held("session") == ["kept"]
    finally:
        await credentials.close()


async def test_revocation_watch_notices_a_change_made_by_another_connection(tmp_path: Path) -> None:
    hub_side, cli_side = await Credentials.open(tmp_path / "r.db"), await Credentials.open(tmp_path / "r.db")
    try:
        now = time.time()
        user = await hub_side.add_user("ada", "admin", "hash", now)
        await hub_side.create_session("s", user, now, "")
        revocations = Revocations(hub_side, Settings())
        ended = asyncio.Event()
        revocations.hold("session", "s", ended.set)
        watch = asyncio.create_task(revocations.run())
        await asyncio.sleep(0.1)
        await cli_side.remove_user("ada")  # as `nvrmon user remove` would, from another process
        await asyncio.wait_for(ended.wait(), 3)
        watch.cancel()
    finally:
        await hub_side.close()
        await cli_side.close()
