"""Retention against a real hub: events older than NVRMON_EVENT_RETENTION_DAYS go soon after, not an hour later."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from tests.agent import Agent, hello
from tests.conftest import LiveHub

pytestmark = pytest.mark.anyio


async def test_retention_prunes_events_within_a_tenth_of_the_retention(start_hub: Callable[..., LiveHub]) -> None:
    retention = 6.0  # seconds
    hub = start_hub(EVENT_RETENTION_DAYS=str(retention / 86400))
    agent = await Agent.connect(hub.ws_url, hub.token)
    assert (await agent.request(hello("retention-nvr", 1)))["type"] == "welcome"
    await agent.send({"type": "alert", "severity": "warning", "message": "old news"})
    sent = time.time()

    def messages() -> list[str]:
        return [e["message"] for e in hub.get("/api/events", params={"limit": "500"}).json()["events"]]

    deadline = sent + 5
    while "old news" not in messages():
        assert time.time() < deadline, "the alert never reached the event log"
        await asyncio.sleep(0.1)
    # Gone once it is older than the retention, give or take one prune interval (a tenth) and a sweep.
    while "old news" in messages():
        assert time.time() - sent < retention * 1.1 + 2.0, "the event outlived its retention"
        await asyncio.sleep(0.2)
    assert time.time() - sent >= retention - 0.5  # and not pruned before its time
    await agent.close()
