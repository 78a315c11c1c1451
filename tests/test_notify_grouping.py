"""Grouping, outbox and delivery against a real SQLite file and a real webhook sink, fed by in-memory incidents."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterable, Mapping

import pytest

from nvrmon.alerts import urls
from nvrmon.alerts.delivery import Delivery
from nvrmon.alerts.notifier import Notifier
from nvrmon.settings import Settings
from nvrmon.store.channels import Channel, Channels
from nvrmon.store.database import Database
from nvrmon.store.outbox import Outbox
from tests.incident_feed import Device, MemoryFeed
from tests.sinks import HttpSink

pytestmark = pytest.mark.anyio
T0 = 1_800_000_000.0
SETTINGS = Settings(group_wait=30, group_interval=300, repeat_interval=3600, notify_retry_base=10, notify_retry_cap=40,
                    notify_max_attempts=4, notify_timeout=5)  # fmt: skip


@dataclasses.dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


@dataclasses.dataclass
class Rig:
    database: Database
    feed: MemoryFeed
    clock: Clock
    notifier: Notifier
    delivery: Delivery
    outbox: Outbox

    async def at(self, now: float) -> list[str]:
        """Move the clock, run the notifier's step and deliver what came due; the states of the sent rows."""
        self.clock.now = now
        await self.notifier.step(now)
        return [await self.delivery.deliver(row) for row in await self.outbox.claim(now, 50)]


async def cameras_of(nvr_ids: Iterable[int]) -> Mapping[int, int]:
    return dict.fromkeys(nvr_ids, 16)


@pytest.fixture
async def rig(database_url: str) -> AsyncIterator[Rig]:
    database = await Database.open(database_url)
    feed, clock = MemoryFeed(), Clock()
    notifier = Notifier(database, feed, SETTINGS, cameras_of, clock)
    yield Rig(database, feed, clock, notifier, Delivery(database, SETTINGS, clock), Outbox(database))
    await database.close()


async def add(rig: Rig, sink: HttpSink, name: str = "ops", **match: str) -> Channel:
    url = f"json://127.0.0.1:{sink.port}/{name}"
    return await Channels(rig.database).add(name, "apprise", url, urls.masked(url), match, "test")


async def test_notify_blackout_is_one_message_after_group_wait(rig: Rig, webhook: HttpSink) -> None:
    await add(rig, webhook)
    for n in range(3):  # NVRs going down one by one, as a blackout's power cut reaches them
        rig.feed.open(T0 + n, "Site 1", [f"site1-nvr{n + 1}"], first_nvr=n + 1)
    assert await rig.at(T0 + 29) == []
    assert await rig.at(T0 + 31) == ["sent"]
    assert await rig.at(T0 + 60) == []
    [request] = webhook.received()
    assert request.json()["title"] == "Site 1: 3 NVRs offline (site1-nvr1, site1-nvr2, site1-nvr3), 48 cameras"
    assert request.json()["type"] == "failure"
    assert request.json()["message"].count("NEW - critical") == 3


async def test_notify_recovery_is_one_resolved_after_group_interval(rig: Rig, webhook: HttpSink) -> None:
    await add(rig, webhook)
    incident = rig.feed.open(T0, "Site 1", ["site1-nvr1", "site1-nvr2"])
    assert await rig.at(T0 + 30) == ["sent"]
    rig.feed.resolve(incident.id, T0 + 100)
    assert await rig.at(T0 + 200) == []  # group_interval counts from the first message
    assert await rig.at(T0 + 330) == ["sent"]
    assert await rig.at(T0 + 4000) == []  # nothing open: no reminder either
    titles = [r.json()["title"] for r in webhook.received()]
    assert titles[1] == "RESOLVED Site 1: 2 NVRs recovered (site1-nvr1, site1-nvr2), 32 cameras"
    assert webhook.received()[1].json()["type"] == "success"
    assert len(titles) == 2


async def test_notify_flap_inside_group_wait_says_nothing(rig: Rig, webhook: HttpSink) -> None:
    await add(rig, webhook)
    incident = rig.feed.open(T0, "Site 1", ["site1-nvr1"])
    rig.feed.resolve(incident.id, T0 + 5)
    assert await rig.at(T0 + 40) == []
    assert webhook.received() == []


async def test_notify_new_device_is_an_update_at_group_interval(rig: Rig, webhook: HttpSink) -> None:
    await add(rig, webhook)
    incident = rig.feed.open(T0, "Site 1", ["site1-nvr1"])
    await rig.at(T0 + 30)
    rig.feed.add_device(incident.id, T0 + 60, Device(2, None, "site1-nvr2", "site1-nvr2", "offline"))
    assert await rig.at(T0 + 100) == []
    assert await rig.at(T0 + 331) == ["sent"]
    assert webhook.received()[1].json()["title"].startswith("Site 1: 2 NVRs offline")


async def test_notify_reminds_unacknowledged_and_not_acknowledged(rig: Rig, webhook: HttpSink) -> None:
    await add(rig, webhook)
    quiet = rig.feed.open(T0, "Site 1", ["site1-nvr1"])
    rig.feed.open(T0, "Site 2", ["site2-nvr1"])
    assert await rig.at(T0 + 30) == ["sent", "sent"]
    rig.feed.acknowledge(quiet.id, T0 + 60)
    assert await rig.at(T0 + 30 + 3601) == ["sent"]
    assert await rig.at(T0 + 30 + 7202) == ["sent"]
    reminders = [r.json()["title"] for r in webhook.received()[2:]]
    assert reminders == ["STILL DOWN, unacknowledged: Site 2: 1 NVR offline (site2-nvr1), 16 cameras"] * 2


async def test_notify_routes_by_site_region_and_severity(rig: Rig, webhook: HttpSink) -> None:
    await add(rig, webhook, "north-critical", region="north", severity="critical")
    await add(rig, webhook, "site2", site="Site 2")
    rig.feed.open(T0, "Site 1", ["site1-nvr1"], severity="major")
    rig.feed.open(T0, "Site 2", ["site2-nvr1"], region="South", first_nvr=5)
    rig.feed.open(T0, "Site 3", ["site3-nvr1"], first_nvr=9)
    await rig.at(T0 + 30)
    paths = sorted((r.path, r.json()["title"].split(":")[0]) for r in webhook.received())
    assert paths == [("/north-critical", "Site 3"), ("/site2", "Site 2")]


async def test_notify_failed_send_is_retried_with_backoff_and_recorded(rig: Rig, webhook: HttpSink) -> None:
    await add(rig, webhook)
    rig.feed.open(T0, "Site 1", ["site1-nvr1"])
    webhook.status = 500
    assert await rig.at(T0 + 30) == ["pending"]
    assert await rig.at(T0 + 39) == []  # the first retry waits notify_retry_base
    assert await rig.at(T0 + 40) == ["pending"]
    assert await rig.at(T0 + 59) == []  # then twice that
    webhook.status = 200
    assert await rig.at(T0 + 60) == ["sent"]
    [row] = await rig.outbox.recent()
    attempts = await rig.outbox.attempts(row.id)
    assert [a.result for a in attempts] == ["error", "error", "sent"]
    assert "500" in attempts[0].error
    assert len(webhook.received()) == 3


async def test_notify_gives_up_after_max_attempts(rig: Rig, webhook: HttpSink) -> None:
    await add(rig, webhook)
    rig.feed.open(T0, "Site 1", ["site1-nvr1"])
    webhook.status = 503
    states = [s for t in range(30, 400, 5) for s in await rig.at(T0 + t)]
    assert states == ["pending", "pending", "pending", "failed"]
    [row] = await rig.outbox.recent()
    assert row.state == "failed" and row.attempts == 4


async def test_notify_crash_during_send_is_never_sent_again(rig: Rig, webhook: HttpSink) -> None:
    await add(rig, webhook)
    rig.feed.open(T0, "Site 1", ["site1-nvr1"])
    rig.clock.now = T0 + 30
    await rig.notifier.step(T0 + 30)
    [claimed] = await rig.outbox.claim(T0 + 30, 10)  # ... and the hub dies before the result is committed
    assert await rig.outbox.recover(T0 + 40) == 1
    assert await rig.at(T0 + 50) == []
    row = await rig.outbox.get(claimed.id)
    assert row is not None and row.state == "unknown"
    assert [a.result for a in await rig.outbox.attempts(row.id)] == ["unknown"]


async def test_notify_cursor_takes_each_transition_once(rig: Rig, webhook: HttpSink) -> None:
    await add(rig, webhook)
    rig.feed.open(T0, "Site 1", ["site1-nvr1"])
    assert await rig.notifier.take_transitions() == 1
    assert await rig.notifier.take_transitions() == 0
    second = Notifier(rig.database, rig.feed, SETTINGS, cameras_of, rig.clock)  # a restarted hub
    assert await second.take_transitions() == 0
    assert await rig.outbox.cursor() == 1


async def test_notify_site_of_200_nvrs_is_one_bounded_message(rig: Rig, webhook: HttpSink) -> None:
    await add(rig, webhook)
    rig.feed.open(T0, "Site 1", [f"site1-nvr{n}" for n in range(1, 201)])
    assert await rig.at(T0 + 30) == ["sent"]
    [request] = webhook.received()
    assert (
        request.json()["title"] == "Site 1: 200 NVRs offline (site1-nvr1, site1-nvr2, site1-nvr3, … +197), 3200 cameras"
    )
    assert len(request.json()["message"]) <= 4000
