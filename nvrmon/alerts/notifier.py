"""Alerts, grouping: incident transitions -> the outbox, by site, on Alertmanager's three clocks.

group_wait: a site's first transition waits this long, so a blackout that takes its NVRs one by one is one message.
group_interval: a group already notified says what changed (new devices, recoveries) at most this often.
repeat_interval: a group whose incidents nobody acknowledged says so again after this long.
A message is composed when it comes due, from the incidents as they are then: what is new or recovered since the
channel's last message about the site; with nothing new it is skipped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

from nvrmon.alerts import messages, routing
from nvrmon.alerts.feed import TRANSITIONS, Feed, Incident, device_keys, group_key
from nvrmon.settings import Settings
from nvrmon.store.channels import Channel, Channels
from nvrmon.store.database import Database
from nvrmon.store.fleet import Store
from nvrmon.store.outbox import GroupState, Outbox, OutboxRow, Wake

log = logging.getLogger("nvrmon.alerts")

PAGE = 200  # log entries read per step
TICK = 0.5
KEEP_DONE = 30 * 86_400.0  # done outbox rows (and their attempts) are kept a month
CamerasOf = Callable[[Iterable[int]], Awaitable[Mapping[int, int]]]


async def no_cameras(nvr_ids: Iterable[int]) -> Mapping[int, int]:
    return {}


def cameras_of(store: Store) -> CamerasOf:
    """How many cameras each NVR has (a down NVR's cameras are down with it; site incidents list only the NVRs)."""

    async def count(nvr_ids: Iterable[int]) -> Mapping[int, int]:
        return {nvr.id: nvr.cameras_total for nvr in await store.nvrs(list(nvr_ids), include_removed=True)}

    return count


class Notifier:
    def __init__(
        self, database: Database, feed: Feed, settings: Settings, cameras_of: CamerasOf = no_cameras,
        clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self.outbox = Outbox(database, settings.node, settings.hub_lease)
        self.channels = Channels(database)
        self.feed = feed
        self.settings = settings
        self.cameras_of = cameras_of
        self.clock = clock

    async def run(self) -> None:
        pruned_at = 0.0
        while True:
            try:
                now = self.clock()
                await self.step(now)
                if now - pruned_at > 3600:
                    await self.outbox.prune(now - KEEP_DONE)
                    pruned_at = now
            except Exception:  # the store refusing writes (disk full): try again next tick, lose nothing
                log.exception("notifier step failed; retrying")
            await asyncio.sleep(TICK)

    async def step(self, now: float) -> None:
        await self.take_transitions()
        await self.compose_due(now)
        await self.remind(now)

    async def take_transitions(self) -> int:
        """Read the incident log past the cursor; one transaction per page opens the waiting rows and moves it."""
        cursor = await self.outbox.cursor()
        opened = 0
        while True:
            start = cursor
            entries = await self.feed.entries_after(cursor, PAGE)
            if not entries:
                return opened
            channels = await self.channels.all()
            wakes: list[Wake] = []
            for entry in entries:
                if entry.kind not in TRANSITIONS:
                    continue
                incident = await self.feed.incident(entry.incident_id)
                if incident is None:
                    continue
                key = group_key(incident)
                for channel in channels:
                    if routing.takes(channel.match, incident):
                        wakes.append(Wake(channel.id, key, incident.region, incident.site, entry.ts))
            cursor = entries[-1].id
            fed = await self.outbox.feed(start, cursor, wakes, self.settings.group_wait, self.settings.group_interval)
            if fed is None:  # another hub fed this page first: go on from where it left the cursor
                cursor = await self.outbox.cursor()
                continue
            opened += fed
            if len(entries) < PAGE:
                return opened

    async def _group_incidents(self, channel: Channel, key: str) -> list[Incident]:
        return [i for i in await self.feed.open_incidents() if group_key(i) == key and routing.takes(channel.match, i)]

    async def compose_due(self, now: float) -> None:
        for row in await self.outbox.due(now):
            await self.compose(row, now)

    async def compose(self, row: OutboxRow, now: float) -> None:
        channel = await self.channels.get(row.channel_id)
        if channel is None:
            return  # removed: its rows went with it
        state = await self.outbox.group(row.channel_id, row.group_key)
        previous = state.members if state is not None else {}
        current = await self._group_incidents(channel, row.group_key)
        members = {i.id: device_keys(i) for i in current}
        if members == previous:
            await self.outbox.compose(row, title="", body="", level="", incidents=(), members=None, now=now)
            return
        gone = [await self.feed.incident(i) for i in previous if i not in members]
        # One merged into a site incident did not recover: its devices are in the site's message now.
        resolved = [i for i in gone if i is not None and i.merged_into is None]
        new = {i.id for i in current if previous.get(i.id) != members[i.id]}
        message = messages.group(row.site, current, resolved, new, await self._cameras(current or resolved))
        await self.outbox.compose(
            row, title=message.title, body=message.body, level=message.level, incidents=message.incidents,
            members=members, now=now,
        )  # fmt: skip

    async def remind(self, now: float) -> None:
        for group in await self.outbox.reminders_due(now, self.settings.repeat_interval):
            await self.reminder(group, now)

    async def reminder(self, group: GroupState, now: float) -> None:
        channel = await self.channels.get(group.channel_id)
        if channel is None:
            return
        waiting = [i for i in await self._group_incidents(channel, group.group_key) if i.state == "open"]
        if not waiting:  # all acknowledged (or gone: the waiting row for that is on its way)
            await self.outbox.remind(group, title="", body="", incidents=(), now=now, send=False)
            return
        message = messages.reminder(group.site, waiting, await self._cameras(waiting))
        await self.outbox.remind(
            group, title=message.title, body=message.body, incidents=message.incidents, now=now, send=True
        )

    async def _cameras(self, incidents: Sequence[Incident]) -> Mapping[int, int]:
        nvr_ids = {d.nvr_id for i in incidents for d in i.devices if d.camera_id is None}
        return await self.cameras_of(nvr_ids) if nvr_ids else {}
