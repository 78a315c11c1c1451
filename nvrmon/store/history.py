"""Stage 3, the availability history: each device's state as intervals, written in the hub's writer transaction that
changed it, resumed across hub restarts, pruned with the events, and read back for reports."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from nvrmon.availability import Interval, Outage
from nvrmon.store.database import Database
from nvrmon.store.dialect import Connection

Source = Database | Connection
INTERVAL_COLUMNS = "device_key, state, maintenance, started_at, ended_at, region, site"


async def _all(source: Source, sql: str, params: Iterable[Any] = ()) -> list[Any]:
    if isinstance(source, Database):
        return await source.fetch_all(sql, params)
    cursor = await source.execute(sql, tuple(params))
    return list(await cursor.fetchall())


def _ids(values: Iterable[int | str]) -> str:
    return json.dumps(sorted(set(values)))


@dataclass(frozen=True, slots=True)
class Facts:
    """What the fleet tables say of one device now: the recorder's input."""

    key: str  # nvr:<id> | camera:<id>
    nvr_id: int
    camera_id: int | None
    name: str
    hostname: str
    region: str
    site: str
    nvr_status: str
    status: str  # the camera's own status; for an NVR, its status again
    removed: bool


@dataclass(frozen=True, slots=True)
class Wanted:
    """The interval a device should have open now."""

    state: str
    maintenance: bool
    region: str
    site: str


NVR_FACTS = "SELECT id, hostname, region, site, status, removed FROM nvrs"
CAMERA_FACTS = (
    "SELECT c.id, c.nvr_id, c.name, n.hostname, n.region, n.site, n.status, c.status, (c.removed = 1 OR n.removed = 1) "
    "FROM cameras c JOIN nvrs n ON n.id = c.nvr_id"
)


def _nvr(r: Any) -> Facts:
    return Facts(f"nvr:{r[0]}", int(r[0]), None, r[1], r[1], r[2], r[3], r[4], r[4], bool(r[5]))


def _camera(r: Any) -> Facts:
    return Facts(f"camera:{r[0]}", int(r[1]), int(r[0]), r[2], r[3], r[4], r[5], r[6], r[7], bool(r[8]))


async def facts(db: Connection, nvr_ids: Iterable[int], camera_ids: Iterable[int]) -> list[Facts]:
    nvrs = await _all(db, f"{NVR_FACTS} WHERE id IN (SELECT value FROM json_each(?))", (_ids(nvr_ids),))
    cameras = await _all(db, f"{CAMERA_FACTS} WHERE c.id IN (SELECT value FROM json_each(?))", (_ids(camera_ids),))
    return [*map(_nvr, nvrs), *map(_camera, cameras)]


async def all_facts(db: Connection) -> list[Facts]:
    """Every device the fleet tables hold (tombstones too: an open interval of a removed device must close)."""
    return [*map(_nvr, await _all(db, NVR_FACTS)), *map(_camera, await _all(db, CAMERA_FACTS))]


async def settle(db: Connection, now: float, wanted: Mapping[str, tuple[Facts, Wanted | None]]) -> int:
    """Make each device's open interval the wanted one: where it differs, close it at `now` and open the new one from
    `now` (None: the device is gone, nothing opens). Returns how many devices changed."""
    if not wanted:
        return 0
    rows = await _all(
        db,
        "SELECT id, device_key, state, maintenance, region, site, started_at FROM device_history "
        "WHERE ended_at IS NULL AND device_key IN (SELECT value FROM json_each(?))",
        (_ids(wanted),),
    )
    current = {r[1]: r for r in rows}
    closes: list[int] = []
    drops: list[int] = []
    opens: list[tuple[Any, ...]] = []
    changed = 0
    for key, (fact, want) in wanted.items():
        row = current.get(key)
        if row is not None and want is not None and (row[2], bool(row[3]), row[4], row[5]) == (
            want.state, want.maintenance, want.region, want.site,
        ):  # fmt: skip
            continue
        if row is None and want is None:
            continue
        changed += 1
        if row is not None:
            (drops if row[6] >= now else closes).append(row[0])  # an empty interval is dropped, not kept
        if want is not None:
            opens.append((key, fact.nvr_id, fact.camera_id, want.region, want.site, want.state, int(want.maintenance),
                          now))  # fmt: skip
    if closes:
        await db.executemany("UPDATE device_history SET ended_at = ? WHERE id = ?", [(now, i) for i in closes])
    if drops:
        await db.executemany("DELETE FROM device_history WHERE id = ?", [(i,) for i in drops])
    if opens:
        await db.executemany(
            "INSERT INTO device_history (device_key, nvr_id, camera_id, region, site, state, maintenance, started_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            opens,
        )
    return changed


async def meta(db: Connection, key: str) -> str | None:
    rows = await _all(db, "SELECT value FROM meta WHERE key = ?", (key,))
    return None if not rows else str(rows[0][0])


async def set_meta(db: Connection, key: str, value: str) -> None:
    await db.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


async def resume(db: Connection, alive: float, now: float) -> float:
    """After a hub restart: every open interval ends when the last hub was last known to run (its last alive mark or
    its last transition, whichever is later), and a hub-down interval runs from there to `now`, when the recorder
    settles each device's real state again. Returns when the gap began."""
    rows = await _all(db, "SELECT max(started_at) FROM device_history WHERE ended_at IS NULL")
    last = rows[0][0] if rows and rows[0][0] is not None else alive
    gap = min(max(alive, float(last)), now)
    if gap >= now:
        return now
    closed = await _all(
        db,
        "UPDATE device_history SET ended_at = ? WHERE ended_at IS NULL "
        "RETURNING device_key, nvr_id, camera_id, region, site",
        (gap,),
    )
    await db.executemany(
        "INSERT INTO device_history (device_key, nvr_id, camera_id, region, site, state, maintenance, started_at) "
        "VALUES (?, ?, ?, ?, ?, 'hub_down', 0, ?)",
        [(*r, gap) for r in closed],
    )
    return gap


async def prune(db: Connection, before: float) -> int:
    """Drop intervals that ended before `before` (called from the events' prune, with the same retention)."""
    cursor = await db.execute("DELETE FROM device_history WHERE ended_at IS NOT NULL AND ended_at < ?", (before,))
    return int(cursor.rowcount)


@asynccontextmanager
async def savepoint(db: Connection) -> AsyncIterator[None]:
    """The recorder's part of a writer transaction, undone alone if it fails (the fleet change it follows stays)."""
    await db.execute("SAVEPOINT history")
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):  # a failing file: the whole transaction rolls back anyway
            await db.execute("ROLLBACK TO history")
            await db.execute("RELEASE history")
        raise
    await db.execute("RELEASE history")


# -- reads for reports ------------------------------------------------------------------------------------------------


def _interval(r: Any) -> Interval:
    return Interval(r[0], r[1], bool(r[2]), float(r[3]), None if r[4] is None else float(r[4]), r[5], r[6])


async def intervals(db: Database, start: float, end: float, limit: int) -> list[Interval] | None:
    """Every interval overlapping [start, end), in order; None when there are more than `limit`."""
    rows = await db.fetch_all(
        f"SELECT {INTERVAL_COLUMNS} FROM device_history WHERE started_at < ? AND (ended_at IS NULL OR ended_at > ?) "
        "ORDER BY started_at, id LIMIT ?",
        (end, start, limit + 1),
    )
    return None if len(rows) > limit else [_interval(r) for r in rows]


async def device_intervals(db: Database, key: str, start: float, end: float, limit: int) -> list[Interval]:
    rows = await db.fetch_all(
        f"SELECT {INTERVAL_COLUMNS} FROM device_history WHERE device_key = ? AND started_at < ? "
        "AND (ended_at IS NULL OR ended_at > ?) ORDER BY started_at, id LIMIT ?",
        (key, end, start, limit),
    )
    return [_interval(r) for r in rows]


async def outages(db: Database, start: float, end: float, limit: int) -> list[Outage]:
    """Incidents opened in [start, end), with their devices' keys."""
    rows = await db.fetch_all(
        "SELECT i.opened_at, i.resolved_at, i.merged_into IS NOT NULL, i.region, i.site, "
        "(SELECT json_group_array(device_key) FROM incident_devices d WHERE d.incident_id = i.id) "
        "FROM incidents i WHERE i.opened_at >= ? AND i.opened_at < ? ORDER BY i.opened_at LIMIT ?",
        (start, end, limit),
    )
    return [Outage(float(r[0]), r[1], bool(r[2]), r[3], r[4], frozenset(json.loads(r[5] or "[]"))) for r in rows]


async def labels(db: Database, keys: Iterable[str]) -> dict[str, Facts]:
    """What to call the devices of a report (tombstones too: a removed device's history still has a name)."""
    wanted = set(keys)
    nvr_ids = [int(k[4:]) for k in wanted if k.startswith("nvr:")]
    camera_ids = [int(k[7:]) for k in wanted if k.startswith("camera:")]
    found = [
        *map(_nvr, await db.fetch_all(f"{NVR_FACTS} WHERE id IN (SELECT value FROM json_each(?))", (_ids(nvr_ids),))),
        *map(_camera, await db.fetch_all(f"{CAMERA_FACTS} WHERE c.id IN (SELECT value FROM json_each(?))",
                                         (_ids(camera_ids),))),
    ]  # fmt: skip
    return {f.key: f for f in found}
