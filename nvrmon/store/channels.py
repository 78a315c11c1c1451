"""Stage 3, notification channels: where alerts go (Apprise URLs, Web Push subscriptions) and which ones they take."""

from __future__ import annotations

import time
from dataclasses import dataclass

from nvrmon.store.audit import record
from nvrmon.store.database import Database

COLUMNS = "id, name, kind, target, shown, match_site, match_region, match_severity, owner, created"
MAX_CHANNELS = 500  # bounded: every transition is routed against all of them


class ChannelError(ValueError):
    """A channel that cannot be added as asked (duplicate name, too many); the message says why."""


@dataclass(frozen=True, slots=True)
class Channel:
    id: int
    name: str
    kind: str  # apprise | webpush
    target: str  # secret: never shown; `shown` is its masked form
    shown: str
    match_site: str
    match_region: str
    match_severity: str
    owner: str
    created: float

    @property
    def matchers(self) -> str:
        """The routing rule in the CLI's own words (`site=… region=…`), or "everything"."""
        parts = [f"{key}={value}" for key, value in self.match.items() if value]
        return " ".join(parts) or "everything"

    @property
    def match(self) -> dict[str, str]:
        return {"site": self.match_site, "region": self.match_region, "severity": self.match_severity}


def _channel(row: tuple[object, ...]) -> Channel:
    return Channel(
        int(str(row[0])), str(row[1]), str(row[2]), str(row[3]), str(row[4]), str(row[5]), str(row[6]), str(row[7]),
        str(row[8]), float(str(row[9])),
    )  # fmt: skip


class Channels:
    """Channel rows over the shared Database (the hub's, or the CLI's own next to a running hub)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def all(self) -> list[Channel]:
        rows = await self.database.fetch_all(f"SELECT {COLUMNS} FROM channels ORDER BY name")
        return [_channel(row) for row in rows]

    async def get(self, channel_id: int) -> Channel | None:
        row = await self.database.fetch_one(f"SELECT {COLUMNS} FROM channels WHERE id = ?", (channel_id,))
        return None if row is None else _channel(row)

    async def named(self, name: str) -> Channel | None:
        row = await self.database.fetch_one(f"SELECT {COLUMNS} FROM channels WHERE name = ?", (name,))
        return None if row is None else _channel(row)

    async def add(
        self, name: str, kind: str, target: str, shown: str, match: dict[str, str], owner: str,
        now: float | None = None, *, actor: str = "", address: str = "", action: str = "channel.add",
        caps: tuple[int, int] | None = None,
    ) -> Channel:  # fmt: skip
        """Add a channel; with an `actor`, audited in the same transaction (its masked target, never the secret).
        `caps` (per owner, per hub): at most that many channels of this kind, counted in the same transaction."""
        async with self.database.transaction() as db:
            cursor = await db.execute(
                "SELECT count(*), sum(CASE WHEN name = ? COLLATE NOCASE THEN 1 ELSE 0 END),"
                " sum(CASE WHEN kind = ? AND owner = ? THEN 1 ELSE 0 END), sum(CASE WHEN kind = ? THEN 1 ELSE 0 END)"
                " FROM channels",
                (name, kind, owner, kind),
            )
            count, same, owned, of_kind = await cursor.fetchone() or (0, 0, 0, 0)
            if same:
                raise ChannelError(f"a channel named {name!r} exists already")
            if count >= MAX_CHANNELS:
                raise ChannelError(f"at most {MAX_CHANNELS} channels; remove one first")
            if caps is not None and (owned or 0) >= caps[0]:
                raise ChannelError(
                    f"at most {caps[0]} {kind} subscriptions per person; remove one you no longer use first"
                )
            if caps is not None and (of_kind or 0) >= caps[1]:
                raise ChannelError(f"this hub keeps at most {caps[1]} {kind} subscriptions; ask an admin")
            cursor = await db.execute(
                "INSERT INTO channels (name, kind, target, shown, match_site, match_region, match_severity, owner,"
                " created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (name, kind, target, shown, match.get("site", ""), match.get("region", ""), match.get("severity", ""),
                 owner, time.time() if now is None else now),
            )  # fmt: skip
            channel_id = (await cursor.fetchone())[0]
            if actor:
                rule = " ".join(f"{k}={v}" for k, v in match.items() if v) or "everything"
                await record(db, actor, action, name, f"id {channel_id}, {kind} {shown}, takes {rule}", address)
        channel = await self.get(int(channel_id or 0))
        assert channel is not None
        return channel

    async def remove(
        self, channel_id: int, *, actor: str = "", address: str = "", action: str = "channel.remove"
    ) -> bool:
        """Remove a channel with its grouping state and its outbox (what it had not sent yet is dropped with it);
        with an `actor`, audited in the same transaction."""
        async with self.database.transaction() as db:
            cursor = await db.execute("DELETE FROM channels WHERE id = ? RETURNING name, kind, shown", (channel_id,))
            row = await cursor.fetchone()
            if row is not None and actor:
                await record(db, actor, action, str(row[0]), f"id {channel_id}, {row[1]} {row[2]}", address)
            return row is not None

    async def with_target(self, kind: str, target: str) -> Channel | None:
        """The channel for this exact target (a browser subscribing twice gets its one channel back)."""
        row = await self.database.fetch_one(
            f"SELECT {COLUMNS} FROM channels WHERE kind = ? AND target = ?", (kind, target)
        )
        return None if row is None else _channel(row)


async def keep_once(database: Database, key: str, value: str) -> str:
    """Keep `value` in meta under `key` unless a value is there already, and return the one kept: two processes
    generating at once (the hub and the CLI) both end up with the first one's (the Web Push key pair)."""
    async with database.transaction() as db:
        await db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING", (key, value))
        cursor = await db.execute("SELECT value FROM meta WHERE key = ?", (key,))
        row = await cursor.fetchone()
    assert row is not None
    return str(row[0])
