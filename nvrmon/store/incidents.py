"""Stage 3, the incidents store: incidents, their devices and timeline, read for pages and written in the writer's
transaction (each change stamped with that transaction's seq, each timeline row written with the change it records)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from nvrmon.incidents import Incident, IncidentDevice, IncidentEntry
from nvrmon.store.database import Database
from nvrmon.store.dialect import Connection
from nvrmon.store.transaction import Transaction

INCIDENT_COLUMNS = (
    "id, state, severity, scope, site, region, title, opened_at, acknowledged_at, acknowledged_by, ack_note, "
    "resolved_at, updated_seq, merged_into"
)
DEVICE_COLUMNS = "incident_id, nvr_id, camera_id, name, hostname, status, down_since, recovered_at, device_key"
ENTRY_COLUMNS = "id, incident_id, ts, kind, actor, note"
# Open first, then acknowledged, then resolved; newest first within each.
ORDER = (
    "CASE state WHEN 'open' THEN 0 WHEN 'acknowledged' THEN 1 ELSE 2 END, "
    "CASE WHEN state = 'resolved' THEN resolved_at ELSE opened_at END DESC, id DESC"
)
Source = Database | Connection


async def _all(source: Source, sql: str, params: Iterable[Any] = ()) -> list[Any]:
    if isinstance(source, Database):
        return await source.fetch_all(sql, params)
    cursor = await source.execute(sql, tuple(params))
    return list(await cursor.fetchall())


def _ids(values: Iterable[int]) -> str:
    return json.dumps(sorted(set(values)))


async def _with_devices(source: Source, rows: list[Any]) -> list[Incident]:
    if not rows:
        return []
    found: dict[int, list[IncidentDevice]] = {int(r[0]): [] for r in rows}
    devices = await _all(
        source,
        f"SELECT {DEVICE_COLUMNS} FROM incident_devices WHERE incident_id IN (SELECT value FROM json_each(?)) "
        "ORDER BY incident_id, camera_id IS NOT NULL, hostname, name",
        (_ids(found),),
    )
    for d in devices:
        found[int(d[0])].append(IncidentDevice(int(d[1]), d[2], d[3], d[4], d[5], d[6], d[7]))
    return [
        Incident(
            int(r[0]),
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            r[6],
            tuple(found[int(r[0])]),
            r[7],
            r[8],
            r[9],
            r[10],
            r[11],
            int(r[12]),
            r[13],
        )
        for r in rows
    ]


# -- reads ----------------------------------------------------------------------------------------------------------


async def incident(db: Source, incident_id: int) -> Incident | None:
    found = await incidents(db, ids=[incident_id], limit=1)
    return found[0] if found else None


async def incidents(
    db: Source,
    *,
    state: str = "",
    site: str = "",
    severity: str = "",
    ids: Iterable[int] | None = None,
    limit: int = 200,
) -> list[Incident]:
    """Incidents, open first; `state` is one state, or "active" (open or acknowledged)."""
    clauses, params = [], []
    if state == "active":
        clauses.append("state != 'resolved'")
    elif state:
        clauses.append("state = ?")
        params.append(state)
    for column, value in (("site", site), ("severity", severity)):
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    if ids is not None:
        clauses.append("id IN (SELECT value FROM json_each(?))")
        params.append(_ids(ids))
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = await _all(
        db, f"SELECT {INCIDENT_COLUMNS} FROM incidents {where} ORDER BY {ORDER} LIMIT ?", [*params, limit]
    )
    return await _with_devices(db, rows)


async def open_incidents(db: Source) -> list[Incident]:
    """Every incident still open or acknowledged."""
    return await incidents(db, state="active", limit=100_000)


async def entries(db: Source, incident_id: int, limit: int = 500) -> list[IncidentEntry]:
    rows = await _all(
        db, f"SELECT {ENTRY_COLUMNS} FROM incident_log WHERE incident_id = ? ORDER BY id LIMIT ?", (incident_id, limit)
    )
    return [IncidentEntry(*row) for row in rows]


async def entries_after(db: Source, after_id: int, limit: int) -> list[IncidentEntry]:
    """Timeline rows of every incident after `after_id`, in the order they were written (the notifier's feed)."""
    rows = await _all(
        db, f"SELECT {ENTRY_COLUMNS} FROM incident_log WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
    )
    return [IncidentEntry(*row) for row in rows]


async def changed_since(db: Source, seq: int, limit: int) -> list[int] | None:
    """Ids of incidents stamped after `seq`; None when more than `limit` changed (the page refreshes instead)."""
    rows = await _all(db, "SELECT id FROM incidents WHERE updated_seq > ? LIMIT ?", (seq, limit + 1))
    return None if len(rows) > limit else [int(r[0]) for r in rows]


async def sites(db: Source) -> list[str]:
    """Sites that have (had) incidents, for the list's filter."""
    rows = await _all(db, "SELECT DISTINCT site FROM incidents WHERE site != '' ORDER BY site LIMIT 500")
    return [str(r[0]) for r in rows]


# -- the engine's view of one site, inside the writer's transaction ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class GroupNvr:
    id: int
    hostname: str
    status: str
    unstable: bool
    removed: bool
    since: float = 0.0  # when its status last changed


@dataclass(frozen=True, slots=True)
class GroupCamera:
    id: int
    nvr_id: int
    name: str
    status: str
    removed: bool
    since: float = 0.0


@dataclass(frozen=True, slots=True)
class Group:
    """One (region, site): its NVRs, its cameras that are down or in an incident, and its active incidents."""

    region: str
    site: str
    nvrs: list[GroupNvr]
    cameras: list[GroupCamera]
    incidents: list[Incident]


async def groups_of(db: Connection, nvr_ids: Iterable[int], camera_ids: Iterable[int]) -> set[tuple[str, str]]:
    """The (region, site) of changed NVRs and cameras, and of active incidents holding any of them."""
    nvrs, cameras = _ids(nvr_ids), _ids(camera_ids)
    rows = await _all(
        db,
        "SELECT region, site FROM nvrs WHERE id IN (SELECT value FROM json_each(?1)) "
        "OR id IN (SELECT nvr_id FROM cameras WHERE id IN (SELECT value FROM json_each(?2))) "
        "UNION SELECT i.region, i.site FROM incidents i JOIN incident_devices d ON d.incident_id = i.id "
        "WHERE i.state != 'resolved' AND d.nvr_id IN (SELECT value FROM json_each(?1))",
        (nvrs, cameras),
    )
    return {(str(r[0]), str(r[1])) for r in rows}


async def all_groups(db: Connection) -> set[tuple[str, str]]:
    rows = await _all(
        db,
        "SELECT region, site FROM nvrs WHERE removed = 0 UNION SELECT region, site FROM incidents "
        "WHERE state != 'resolved'",
    )
    return {(str(r[0]), str(r[1])) for r in rows}


async def group(db: Connection, region: str, site: str) -> Group:
    nvr_rows = await _all(
        db,
        "SELECT id, hostname, status, unstable, removed, status_changed FROM nvrs WHERE region = ? AND site = ?",
        (region, site),
    )
    nvrs = [GroupNvr(int(r[0]), r[1], r[2], bool(r[3]), bool(r[4]), float(r[5])) for r in nvr_rows]
    rows = await _all(
        db,
        f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE state != 'resolved' AND region = ? AND site = ? ORDER BY id",
        (region, site),
    )
    open_now = await _with_devices(db, rows)
    members = [d.camera_id for i in open_now for d in i.devices if d.camera_id is not None]
    camera_rows = await _all(
        db,
        "SELECT id, nvr_id, name, status, removed, status_changed FROM cameras "
        "WHERE (nvr_id IN (SELECT value FROM json_each(?1)) AND removed = 0 AND status != 'online') "
        "OR id IN (SELECT value FROM json_each(?2))",
        (_ids(n.id for n in nvrs), _ids(members)),
    )
    cameras = [GroupCamera(int(r[0]), int(r[1]), r[2], r[3], bool(r[4]), float(r[5])) for r in camera_rows]
    return Group(region, site, nvrs, cameras, open_now)


# -- writes -----------------------------------------------------------------------------------------------------------


async def create(
    db: Connection, seq: int, now: float, *, scope: str, key: str, severity: str, region: str, site: str,
    title: str,
) -> int:  # fmt: skip
    cursor = await db.execute(
        "INSERT INTO incidents (scope, scope_key, state, severity, region, site, title, opened_at, updated_seq) "
        "VALUES (?, ?, 'open', ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id",
        (scope, key, severity, region, site, title, now, seq),
    )
    row = await cursor.fetchone()
    return 0 if row is None else int(row[0])  # 0: one is open for this key already


async def update(db: Connection, incident_id: int, seq: int, **fields: Any) -> None:
    """Change columns of one incident (names from this module's callers only, never from input) and stamp it."""
    assigns = "".join(f"{name} = ?, " for name in fields)
    await db.execute(
        f"UPDATE incidents SET {assigns}updated_seq = ? WHERE id = ?", (*fields.values(), seq, incident_id)
    )


async def add_device(db: Connection, incident_id: int, key: str, device: IncidentDevice) -> None:
    await db.execute(
        "INSERT INTO incident_devices (incident_id, device_key, nvr_id, camera_id, name, hostname, status, down_since) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (incident_id, device_key) DO UPDATE SET status = excluded.status, "
        "recovered_at = NULL",
        (incident_id, key, device.nvr_id, device.camera_id, device.name, device.hostname, device.status,
         device.down_since),
    )  # fmt: skip


async def set_device(
    db: Connection, incident_id: int, key: str, status: str, recovered_at: float | None,
    down_since: float | None = None,
) -> None:  # fmt: skip
    await db.execute(
        "UPDATE incident_devices SET status = ?, recovered_at = ?, down_since = coalesce(?, down_since) "
        "WHERE incident_id = ? AND device_key = ?",
        (status, recovered_at, down_since, incident_id, key),
    )


async def move_devices(db: Connection, source: int, target: int) -> None:
    """Merge: the devices of `source` join `target` (those it already holds stay as they are there)."""
    await db.execute(
        "INSERT INTO incident_devices (incident_id, device_key, nvr_id, camera_id, name, hostname, status, "
        "down_since, recovered_at) SELECT ?, device_key, nvr_id, camera_id, name, hostname, status, down_since, "
        "recovered_at FROM incident_devices WHERE incident_id = ? ON CONFLICT DO NOTHING",
        (target, source),
    )


async def log(db: Connection, incident_id: int, ts: float, kind: str, actor: str, note: str) -> int:
    cursor = await db.execute(
        "INSERT INTO incident_log (incident_id, ts, kind, actor, note) VALUES (?, ?, ?, ?, ?) RETURNING id",
        (incident_id, ts, kind, actor, note),
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def append_entry(
    tx: Transaction | Connection, incident_id: int, *, kind: str = "notified", actor: str = "",
    note: str = "", ts: float | None = None,
) -> int:  # fmt: skip
    """A timeline row. Given the hub writer's Transaction, the incident is stamped with its seq too, so open pages
    show the row live; given a bare connection (another writer's transaction), it shows from the next change on."""
    if isinstance(tx, Transaction):
        entry = await log(tx.connection, incident_id, tx.now if ts is None else ts, kind, actor, note)
        await stamp(tx, incident_id)
        return entry
    return await log(tx, incident_id, time.time() if ts is None else ts, kind, actor, note)


async def stamp(tx: Transaction, incident_id: int) -> None:
    await tx.connection.execute("UPDATE incidents SET updated_seq = ? WHERE id = ?", (await tx.seq(), incident_id))
    tx.changes.incident_ids.add(incident_id)


async def acknowledge(tx: Transaction, incident_id: int, actor: str, note: str) -> bool:
    """Open → acknowledged by `actor` (with the note on the timeline); False when it is not open any more."""
    cursor = await tx.connection.execute(
        "UPDATE incidents SET state = 'acknowledged', acknowledged_at = ?, acknowledged_by = ?, ack_note = ?, "
        "updated_seq = ? WHERE id = ? AND state = 'open' RETURNING id",
        (tx.now, actor, note, await tx.seq(), incident_id),
    )
    if await cursor.fetchone() is None:
        return False
    await log(tx.connection, incident_id, tx.now, "acknowledged", actor, note)
    tx.changes.incident_ids.add(incident_id)
    return True


@asynccontextmanager
async def savepoint(tx: Transaction) -> AsyncIterator[None]:
    """The incidents' part of a writer transaction, undone alone if it fails (the fleet change it follows stays)."""
    db = tx.connection
    await db.execute("SAVEPOINT incidents")
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):  # a failing file: the whole transaction rolls back anyway
            await db.execute("ROLLBACK TO incidents")
            await db.execute("RELEASE incidents")
        raise
    await db.execute("RELEASE incidents")


async def counts(db: Source) -> dict[str, int]:
    """Active incidents by state and by severity (the dashboard panel's figures)."""
    rows = await _all(
        db,
        "SELECT state, severity, count(*) FROM incidents WHERE state != 'resolved' GROUP BY state, severity",
    )
    found: dict[str, int] = {}
    for state, level, count in rows:
        found[state] = found.get(state, 0) + int(count)
        found[level] = found.get(level, 0) + int(count)
    return found


async def open_by_severity(db: Source) -> dict[tuple[str, str], int]:
    """Incidents not resolved, counted by (severity, state): /metrics' nvrmon_incidents_open (absent pairs are 0)."""
    rows = await _all(
        db, "SELECT severity, state, count(*) FROM incidents WHERE state != 'resolved' GROUP BY severity, state"
    )
    return {(str(level), str(state)): int(count) for level, state, count in rows}
