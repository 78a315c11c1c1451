"""Notifications from real outages: a real hub, raw protocol agents, a webhook sink and an SMTP server as peers."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.agent import Agent
from tests.conftest import LiveHub, run_cli
from tests.sinks import HttpSink, SmtpSink

pytestmark = pytest.mark.anyio


class Agents:
    """Raw protocol agents of one test, all closed at its end."""

    def __init__(self) -> None:
        self.opened: list[Agent] = []

    async def register(self, hub: LiveHub, name: str, cameras: int = 16, **kw: Any) -> Agent:
        agent, _ = await Agent.register(hub.ws_url, hub.token, name, cameras, **kw)
        self.opened.append(agent)
        return agent


@pytest.fixture
async def agents() -> AsyncIterator[Agents]:
    made = Agents()
    yield made
    for agent in made.opened:
        with contextlib.suppress(Exception):
            await agent.close()


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"not within {timeout} s; last saw {value!r}"
        await asyncio.sleep(0.1)
    return value


def channel(hub_db: Path, url: str, name: str, *match: str) -> None:
    args = [arg for m in match for arg in ("--match", m)]
    added = run_cli(hub_db, "channel", "add", url, "--name", name, *args)
    assert added.returncode == 0, added.stderr


def outbox_states(db: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return [str(row[0]) for row in conn.execute("SELECT state FROM outbox ORDER BY id")]


def titles(sink: HttpSink) -> list[str]:
    return [str(r.json()["title"]) for r in sink.received()]


def csrf(hub: LiveHub) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', hub.get("/notifications").text)
    assert match is not None
    return match.group(1)


async def test_notify_site_blackout_is_one_message_then_one_resolved(
    start_hub: Callable[..., LiveHub], agents: Agents, webhook: HttpSink, tmp_path: Path
) -> None:
    hub = start_hub(GROUP_WAIT="1", GROUP_INTERVAL="1")
    channel(hub.db_path, f"json://127.0.0.1:{webhook.port}/ops", "ops")
    site = [await agents.register(hub, name, region="North") for name in ("north-a", "north-b", "north-c")]
    for agent in site:
        await agent.close()
    await eventually(lambda: webhook.received())
    await asyncio.sleep(3)  # group_wait and group_interval both passed again: still the one message
    assert titles(webhook) == ["North 1: 3 NVRs offline (north-a, north-b, north-c), 48 cameras"]
    assert webhook.received()[0].json()["type"] == "failure"

    for name in ("north-a", "north-b", "north-c"):
        await agents.register(hub, name, region="North")
    await eventually(lambda: len(webhook.received()) == 2)
    await asyncio.sleep(3)
    assert titles(webhook)[1:] == ["RESOLVED North 1: 3 NVRs recovered (north-a, north-b, north-c), 48 cameras"]
    [incident] = [i for i in hub.get("/api/incidents").json()["incidents"] if i["scope"] == "site"]
    timeline = hub.get(f"/api/incidents/{incident['id']}").json()["timeline"]
    notified = [e for e in timeline if e["kind"] == "notified"]
    assert [e["actor"] for e in notified] == ["ops", "ops"]


async def test_notify_hub_killed_before_delivery_delivers_exactly_once_after_restart(
    start_hub: Callable[..., LiveHub], agents: Agents, webhook: HttpSink
) -> None:
    hub = start_hub(GROUP_WAIT="4", GROUP_INTERVAL="1")
    channel(hub.db_path, f"json://127.0.0.1:{webhook.port}/ops", "ops")
    agent = await agents.register(hub, "west-a", region="West")
    await agent.close()
    await eventually(lambda: outbox_states(hub.db_path) == ["waiting"])  # the transition is in the outbox ...
    hub.stop(signal.SIGKILL)  # ... and the hub dies before its group_wait is up
    assert webhook.received() == []
    hub.start()
    await eventually(lambda: webhook.received(), timeout=15)
    await asyncio.sleep(3)
    assert titles(webhook) == ["West 1: 1 NVR offline (west-a), 16 cameras"]
    assert outbox_states(hub.db_path) == ["sent"]


async def test_notify_hub_killed_during_the_send_never_sends_it_twice(
    start_hub: Callable[..., LiveHub], agents: Agents, webhook: HttpSink
) -> None:
    hub = start_hub(GROUP_WAIT="0.5", NOTIFY_TIMEOUT="30")
    channel(hub.db_path, f"json://127.0.0.1:{webhook.port}/ops", "ops")
    webhook.delay = 6  # the peer has the message but has not answered yet ...
    await (await agents.register(hub, "west-a", cameras=2, region="West")).close()
    await eventually(lambda: webhook.received())
    assert outbox_states(hub.db_path) == ["sending"]
    hub.stop(signal.SIGKILL)  # ... when the hub dies: the one window the outbox cannot close
    webhook.delay = 0
    hub.start()
    await eventually(lambda: outbox_states(hub.db_path) == ["unknown"])
    await asyncio.sleep(3)
    assert len(webhook.received()) == 1  # not sent again: it may have arrived, and it did
    admin = hub.get("/admin").text
    assert "the hub stopped while this was being sent" in admin


async def test_notify_reminds_the_unacknowledged_incident_only(
    start_hub: Callable[..., LiveHub], agents: Agents, webhook: HttpSink
) -> None:
    hub = start_hub(GROUP_WAIT="0.5", GROUP_INTERVAL="0.5", REPEAT_INTERVAL="2")
    channel(hub.db_path, f"json://127.0.0.1:{webhook.port}/ops", "ops")
    for name, region in (("north-a", "North"), ("south-a", "South")):
        await (await agents.register(hub, name, cameras=2, region=region)).close()
    await eventually(lambda: len(webhook.received()) == 2)
    [north] = [i for i in hub.get("/api/incidents").json()["incidents"] if i["site"] == "North 1"]
    acked = httpx.post(f"{hub.url}/api/incidents/{north['id']}/ack", json={"note": "technician on the way"},
                       headers={**hub.headers, "X-CSRF-Token": csrf(hub)}, timeout=5)  # fmt: skip
    assert acked.status_code == 200, acked.text

    def reminders() -> list[str]:
        return [t for t in titles(webhook) if t.startswith("STILL DOWN")]

    await eventually(lambda: len(reminders()) >= 2, timeout=15)  # two repeat_intervals: North would have had two too
    assert set(reminders()) == {"STILL DOWN, unacknowledged: South 1: 1 NVR offline (south-a), 2 cameras"}


async def test_notify_routes_incidents_to_the_channels_that_match(
    start_hub: Callable[..., LiveHub], agents: Agents, webhook: HttpSink, smtp: SmtpSink
) -> None:
    hub = start_hub(GROUP_WAIT="0.5", GROUP_INTERVAL="0.5")
    channel(hub.db_path, f"json://127.0.0.1:{webhook.port}/north", "north", "region=North")
    channel(hub.db_path, f"json://127.0.0.1:{webhook.port}/major", "major only", "severity=major")
    channel(hub.db_path, smtp.url, "south mail", "site=South 1")
    north = await agents.register(hub, "north-a", cameras=2, region="North")
    south = await agents.register(hub, "south-a", cameras=2, region="South")
    await north.close()  # an NVR offline: critical, North 1
    await south.send({"type": "camera_status", "camera_id": "cam1", "status": "offline"})  # a camera: major
    await eventually(lambda: len(webhook.received()) == 2 and smtp.messages)
    await asyncio.sleep(1.5)
    by_path = sorted((r.path, r.json()["title"]) for r in webhook.received())
    assert by_path == [("/major", "South 1: 1 camera offline (Cam 1)"),
                       ("/north", "North 1: 1 NVR offline (north-a), 2 cameras")]  # fmt: skip
    [mail] = smtp.messages
    assert "Subject: South 1: 1 camera offline (Cam 1)" in mail.content
