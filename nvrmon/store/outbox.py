"""Stage 3, the durable outbox: grouped messages waiting, due, in flight and done, and every delivery attempt.

A row is written in the same transaction that advances the notifier's cursor over incident_log (so a restart neither
loses nor repeats a transition); a send is claimed in its own commit before it goes out, and its result committed
after. See docs/notifications.md for the one window this leaves (a crash during the send itself).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from nvrmon.store import incidents as incident_store
from nvrmon.store.database import Database
from nvrmon.store.dialect import Connection
from nvrmon.store.transaction import Transaction

COLUMNS = (
    "id, channel_id, group_key, region, site, kind, state, created, due_at, next_at, attempts, level, title, body,"
    " incidents, last_error, done_at"
)
CURSOR_KEY = "notify_cursor"
IN_FLIGHT = ("waiting", "pending", "sending")
MAX_ERROR = 500  # characters of an error kept per attempt


@dataclass(frozen=True, slots=True)
class Wake:
    """A transition of an incident that a channel takes: its site's group has something new to say."""

    channel_id: int
    group_key: str
    region: str
    site: str
    ts: float


@dataclass(frozen=True, slots=True)
class GroupState:
    channel_id: int
    group_key: str
    region: str
    site: str
    members: dict[int, list[str]]  # incident id -> the device keys last notified
    sent_at: float


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    channel_id: int
    group_key: str
    region: str
    site: str
    kind: str
    state: str
    created: float
    due_at: float
    next_at: float
    attempts: int
    level: str
    title: str
    body: str
    incidents: tuple[int, ...]
    last_error: str
    done_at: float | None


@dataclass(frozen=True, slots=True)
class Attempt:
    outbox_id: int
    ts: float
    result: str  # sent | error | unknown
    error: str
    elapsed: float


def _row(row: Sequence[object]) -> OutboxRow:
    return OutboxRow(
        int(str(row[0])), int(str(row[1])), str(row[2]), str(row[3]), str(row[4]), str(row[5]), str(row[6]),
        float(str(row[7])), float(str(row[8])), float(str(row[9])), int(str(row[10])), str(row[11]), str(row[12]),
        str(row[13]), tuple(int(i) for i in json.loads(str(row[14]))), str(row[15]),
        None if row[16] is None else float(str(row[16])),
    )  # fmt: skip


def _group(row: Sequence[object]) -> GroupState:
    members = {int(key): list(value) for key, value in json.loads(str(row[4])).items()}
    return GroupState(int(str(row[0])), str(row[1]), str(row[2]), str(row[3]), members, float(str(row[5])))


class Outbox:
    """The outbox tables over the shared Database; every write is one transaction of its own."""

    def __init__(self, database: Database, node: str = "", lease: float = 10.0) -> None:
        self.database = database
        self.node = node  # the hub claiming rows (several hubs may share the database: docs/deploy.md)
        self.lease = lease

    async def cursor(self) -> int:
        return int(await self.database.meta(CURSOR_KEY) or 0)

    async def feed(
        self, start: int, cursor: int, wakes: Iterable[Wake], group_wait: float, group_interval: float
    ) -> int | None:
        """Advance the cursor from `start` to `cursor` and, in the same transaction, open a waiting row for every
        woken group that has none: due group_wait after the transition for a group not notified yet, else
        group_interval after its last message. Returns the rows opened, or None when the cursor is no longer at
        `start` (another hub on the same database fed these entries first: nothing is written twice)."""
        opened = 0
        async with self.database.transaction() as db:
            found = await db.execute("SELECT value FROM meta WHERE key = ?", (CURSOR_KEY,))
            row = await found.fetchone()
            if int(row[0] if row else 0) != start:
                return None
            for wake in wakes:
                cursor_row = await db.execute(
                    "SELECT 1 FROM outbox WHERE channel_id = ? AND group_key = ? AND state = 'waiting'",
                    (wake.channel_id, wake.group_key),
                )
                if await cursor_row.fetchone() is not None:
                    continue  # the waiting message will say this too: it is composed when it comes due
                state = await _group_state(db, wake.channel_id, wake.group_key)
                if state is None or not state.members:
                    due = wake.ts + group_wait
                else:
                    due = max(wake.ts, state.sent_at + group_interval)
                await db.execute(
                    "INSERT INTO outbox (channel_id, group_key, region, site, kind, state, created, due_at, next_at)"
                    " VALUES (?, ?, ?, ?, 'group', 'waiting', ?, ?, ?)",
                    (wake.channel_id, wake.group_key, wake.region, wake.site, wake.ts, due, due),
                )
                opened += 1
            await db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (CURSOR_KEY, str(cursor)),
            )
        return opened

    async def group(self, channel_id: int, group_key: str) -> GroupState | None:
        row = await self.database.fetch_one(
            "SELECT channel_id, group_key, region, site, members, sent_at FROM notify_groups"
            " WHERE channel_id = ? AND group_key = ?",
            (channel_id, group_key),
        )
        return None if row is None else _group(row)

    async def due(self, now: float, limit: int = 100) -> list[OutboxRow]:
        """Waiting rows whose grouping time is up: to be composed from their group's incidents as they are now."""
        rows = await self.database.fetch_all(
            f"SELECT {COLUMNS} FROM outbox WHERE state = 'waiting' AND due_at <= ? ORDER BY due_at LIMIT ?",
            (now, limit),
        )
        return [_row(row) for row in rows]

    async def compose(
        self, row: OutboxRow, *, title: str, body: str, level: str, incidents: Iterable[int],
        members: dict[int, list[str]] | None, now: float,
    ) -> None:  # fmt: skip
        """A due row gets its message (or is skipped, with nothing new to say) and its group what it now names."""
        async with self.database.transaction() as db:
            if members is None:
                await db.execute("UPDATE outbox SET state = 'skipped', done_at = ? WHERE id = ?", (now, row.id))
                return
            await db.execute(
                "UPDATE outbox SET state = 'pending', title = ?, body = ?, level = ?, incidents = ?, next_at = ?"
                " WHERE id = ? AND state IN ('waiting', 'pending')",
                (title, body, level, json.dumps(sorted(set(incidents))), now, row.id),
            )
            await _set_group(db, row, members, now)

    async def reminders_due(self, now: float, repeat_interval: float, limit: int = 100) -> list[GroupState]:
        """Groups that named open incidents and said nothing for repeat_interval, with no message on its way."""
        rows = await self.database.fetch_all(
            "SELECT g.channel_id, g.group_key, g.region, g.site, g.members, g.sent_at FROM notify_groups g"
            " WHERE g.members != '{}' AND g.sent_at <= ? AND NOT EXISTS (SELECT 1 FROM outbox o"
            "  WHERE o.channel_id = g.channel_id AND o.group_key = g.group_key"
            "  AND o.state IN ('waiting', 'pending', 'sending')) LIMIT ?",
            (now - repeat_interval, limit),
        )
        return [_group(row) for row in rows]

    async def remind(
        self, group: GroupState, *, title: str, body: str, incidents: Iterable[int], now: float, send: bool
    ) -> None:
        """A reminder of a group's unacknowledged incidents (or, with `send` false, only the clock reset: every one
        is acknowledged, so the next look is a repeat_interval away)."""
        async with self.database.transaction() as db:
            if send:
                await db.execute(
                    "INSERT INTO outbox (channel_id, group_key, region, site, kind, state, created, due_at, next_at,"
                    " level, title, body, incidents) VALUES (?, ?, ?, ?, 'reminder', 'pending', ?, ?, ?, 'warning',"
                    " ?, ?, ?)",
                    (group.channel_id, group.group_key, group.region, group.site, now, now, now, title, body,
                     json.dumps(sorted(set(incidents)))),
                )  # fmt: skip
            await db.execute(
                "UPDATE notify_groups SET sent_at = ? WHERE channel_id = ? AND group_key = ?",
                (now, group.channel_id, group.group_key),
            )

    async def add_test(self, channel_id: int, title: str, body: str, now: float) -> OutboxRow:
        """A test message, claimed at once by whoever asked for it (the CLI or the admin page sends it itself)."""
        async with self.database.transaction() as db:
            cursor = await db.execute(
                "INSERT INTO outbox (channel_id, group_key, kind, state, created, due_at, next_at, attempts, level,"
                " title, body) VALUES (?, '', 'test', 'sending', ?, ?, ?, 1, 'info', ?, ?) RETURNING id",
                (channel_id, now, now, now, title, body),
            )
            row_id = int((await cursor.fetchone())[0])
        row = await self.get(row_id)
        assert row is not None
        return row

    async def get(self, outbox_id: int) -> OutboxRow | None:
        row = await self.database.fetch_one(f"SELECT {COLUMNS} FROM outbox WHERE id = ?", (outbox_id,))
        return None if row is None else _row(row)

    async def claim(self, now: float, limit: int) -> list[OutboxRow]:
        """Due rows, marked as in flight (and their attempt counted) in a commit before anything is sent."""
        async with self.database.transaction() as db:
            cursor = await db.execute(
                f"SELECT {COLUMNS} FROM outbox WHERE state = 'pending' AND next_at <= ? ORDER BY next_at LIMIT ?",
                (now, limit),
            )
            rows = [_row(row) for row in await cursor.fetchall()]
            for row in rows:
                await db.execute(
                    "UPDATE outbox SET state = 'sending', attempts = attempts + 1, claimed_by = ? WHERE id = ?",
                    (self.node, row.id),
                )
        return [_claimed(row) for row in rows]

    async def finish(self, row: OutboxRow, attempt: Attempt, retry_at: float | None, channel: str = "") -> str:
        """Record an attempt and what follows from it: sent (on the timelines of the incidents it names, as
        "notified" by `channel`), another try at retry_at, unknown (it may have arrived), or failed for good."""
        state = "pending" if retry_at is not None else "failed"
        if attempt.result in ("sent", "unknown"):  # unknown: a timeout after it went out, so it may have arrived
            state = attempt.result
        async with self.database.transaction() as db:
            await _record(db, attempt)
            await db.execute(
                "UPDATE outbox SET state = ?, next_at = ?, last_error = ?, done_at = ? WHERE id = ?",
                (state, retry_at if retry_at is not None else row.next_at, attempt.error[:MAX_ERROR],
                 None if state == "pending" else attempt.ts, row.id),
            )  # fmt: skip
            if state == "sent" and channel:
                await timeline(db, row, channel, attempt.ts)
        return state

    async def recover(self, now: float) -> int:
        """Rows left in flight by a hub that stopped during their send (this one's previous run, or any hub no longer
        alive): recorded as unknown, never sent again. Rows a live hub is sending are its own business."""
        async with self.database.transaction() as db:
            cursor = await db.execute(
                "SELECT id FROM outbox WHERE state = 'sending' AND claimed_by NOT IN "
                "(SELECT node FROM hubs WHERE heartbeat >= ? AND node != ?)",
                (now - self.lease, self.node),
            )
            return await _unknown(db, [int(row[0]) for row in await cursor.fetchall()], now)

    async def recent(self, limit: int = 20) -> list[OutboxRow]:
        """The latest messages, newest first (the admin page's "last deliveries")."""
        rows = await self.database.fetch_all(
            f"SELECT {COLUMNS} FROM outbox WHERE state != 'skipped' ORDER BY id DESC LIMIT ?", (limit,)
        )
        return [_row(row) for row in rows]

    async def attempts(self, outbox_id: int) -> list[Attempt]:
        rows = await self.database.fetch_all(
            "SELECT outbox_id, ts, result, error, elapsed FROM delivery_attempts WHERE outbox_id = ? ORDER BY id",
            (outbox_id,),
        )
        return [Attempt(int(r[0]), float(r[1]), str(r[2]), str(r[3]), float(r[4])) for r in rows]

    async def prune(self, before: float) -> None:
        """Done rows (and their attempts) older than `before`: the outbox stays bounded."""
        async with self.database.transaction() as db:
            await db.execute("DELETE FROM outbox WHERE done_at IS NOT NULL AND done_at < ?", (before,))


async def timeline(tx: Transaction | Connection, row: OutboxRow, channel: str, ts: float) -> int:
    """A sent message on the timelines of the incidents it names ("notified" by the channel). In the hub writer's
    Transaction the incidents are stamped with its seq, so open pages show the entry live."""
    if not row.incidents:
        return 0
    db = tx.connection if isinstance(tx, Transaction) else tx
    # Only incidents still on file (retention may have pruned an old one while its message waited).
    cursor = await db.execute(
        f"SELECT id FROM incidents WHERE id IN ({','.join('?' * len(row.incidents))})", row.incidents
    )
    note = (("reminder: " if row.kind == "reminder" else "") + row.title)[:500]
    ids = [int(found[0]) for found in await cursor.fetchall()]
    for incident_id in ids:
        await incident_store.append_entry(tx, incident_id, actor=channel, note=note, ts=ts)
    return len(ids)


def _claimed(row: OutboxRow) -> OutboxRow:
    from dataclasses import replace

    return replace(row, state="sending", attempts=row.attempts + 1)


UNKNOWN_NOTE = (
    "the hub stopped while this was being sent: it may have arrived; not sent again so it cannot arrive twice"
)


async def release_claims(db: Connection, node: str, now: float) -> int:
    """In the transaction that takes over the dead hub `node`: its rows in flight become unknown."""
    cursor = await db.execute("SELECT id FROM outbox WHERE state = 'sending' AND claimed_by = ?", (node,))
    return await _unknown(db, [int(row[0]) for row in await cursor.fetchall()], now)


async def _unknown(db: Connection, ids: list[int], now: float) -> int:
    for row_id in ids:
        await _record(db, Attempt(row_id, now, "unknown", UNKNOWN_NOTE, 0.0))
        await db.execute(
            "UPDATE outbox SET state = 'unknown', last_error = ?, done_at = ? WHERE id = ?", (UNKNOWN_NOTE, now, row_id)
        )
    return len(ids)


async def _group_state(db: Connection, channel_id: int, group_key: str) -> GroupState | None:
    cursor = await db.execute(
        "SELECT channel_id, group_key, region, site, members, sent_at FROM notify_groups"
        " WHERE channel_id = ? AND group_key = ?",
        (channel_id, group_key),
    )
    row = await cursor.fetchone()
    return None if row is None else _group(row)


async def _set_group(db: Connection, row: OutboxRow, members: dict[int, list[str]], now: float) -> None:
    await db.execute(
        "INSERT INTO notify_groups (channel_id, group_key, region, site, members, sent_at) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (channel_id, group_key) DO UPDATE SET members = excluded.members, sent_at = excluded.sent_at",
        (row.channel_id, row.group_key, row.region, row.site, json.dumps({str(k): v for k, v in members.items()}),
         now),
    )  # fmt: skip


async def _record(db: Connection, attempt: Attempt) -> None:
    await db.execute(
        "INSERT INTO delivery_attempts (outbox_id, ts, result, error, elapsed) VALUES (?, ?, ?, ?, ?)",
        (attempt.outbox_id, attempt.ts, attempt.result, attempt.error[:MAX_ERROR], attempt.elapsed),
    )
