"""Stage 3, the store: the fleet's truth in SQLite. The only module with SQL; every change is stamped with a seq."""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

from nvrmon.filters import ListQuery
from nvrmon.models import Camera, Event, Nvr, NvrStatus, Severity, Status, Summary
from nvrmon.protocol import CameraInfo, NvrInfo

_NVR_BASE = """
    n.id, n.hostname, n.device_name, n.region, n.site, n.model, n.firmware, n.ip_address, n.status, n.status_reason,
    n.last_seen, n.status_changed, n.updated_seq, n.unstable
"""
# A few NVRs: correlated counts, each an index-only lookup on cameras_nvr_status.
_NVR_COLUMNS = f"""{_NVR_BASE},
    (SELECT count(*) FROM cameras c WHERE c.nvr_id = n.id AND c.removed = 0 AND c.status = 'online'),
    (SELECT count(*) FROM cameras c WHERE c.nvr_id = n.id AND c.removed = 0),
    n.stats
"""
# The whole fleet: one grouped pass over the covering index instead of two subqueries per NVR.
_FLEET_FROM = """
    FROM nvrs n LEFT JOIN (
        SELECT nvr_id, sum(status = 'online') AS online, count(*) AS total
        FROM cameras WHERE removed = 0 GROUP BY nvr_id
    ) k ON k.nvr_id = n.id
"""
_FLEET_COUNTS = "coalesce(k.online, 0), coalesce(k.total, 0)"
# How a camera shows (models.Camera.display), in SQL, for filtering, counting and sorting.
_DISPLAY = (
    "CASE WHEN n.status = 'offline' THEN 'nvr_offline' WHEN n.status = 'unknown' THEN 'unknown' ELSE c.status END"
)
_CAMERA_ORDER = {
    "nvr": "n.hostname, c.name, c.id",
    "name": "c.name, n.hostname, c.id",
    "status": f"CASE {_DISPLAY} WHEN 'offline' THEN 0 WHEN 'nvr_offline' THEN 1 WHEN 'unknown' THEN 2 ELSE 3 END, "
    "n.hostname, c.name, c.id",
    "region": "n.region, n.site, n.hostname, c.name, c.id",
    "since": "c.status_changed, c.id",
}
_CAMERA_COLUMNS = """
    c.id, c.nvr_id, n.hostname, n.status, n.region, n.site, c.ext_id, c.name, c.ip_address, c.status,
    c.status_changed, c.removed, c.updated_seq
"""
_EVENT_COLUMNS = """
    e.id, e.seq, e.ts, e.kind, e.severity, e.nvr_id, coalesce(n.hostname, ''), e.camera_id, coalesce(c.name, ''),
    e.message
"""
_EVENT_FROM = "events e LEFT JOIN nvrs n ON n.id = e.nvr_id LEFT JOIN cameras c ON c.id = e.camera_id"


@dataclass(frozen=True, slots=True)
class NewEvent:
    kind: str
    severity: Severity
    message: str
    nvr_id: int | None = None
    camera_id: int | None = None


SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class Registration:
    nvr_id: int
    previous: NvrStatus | None  # None: first time this hostname registers
    agent_session: str
    agent_seq: int


@dataclass(slots=True)
class CameraRef:
    """The hub's mirror of one camera of a connected NVR, so status frames need no database read."""

    id: int
    status: Status


@dataclass(slots=True)
class Changes:
    """What one committed transaction touched; the broadcaster's input."""

    seq: int = 0
    nvr_ids: set[int] = field(default_factory=set)
    camera_ids: set[int] = field(default_factory=set)
    event_ids: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.nvr_ids or self.camera_ids or self.event_ids)


class Transaction:
    """One write transaction. The sequence number is allocated on the first change, inside the transaction."""

    def __init__(self, db: aiosqlite.Connection, now: float) -> None:
        self._db = db
        self.now = now
        self.changes = Changes()

    async def _seq(self) -> int:
        if not self.changes.seq:
            cursor = await self._db.execute("UPDATE meta SET value = value + 1 WHERE key = 'seq' RETURNING value")
            row = await cursor.fetchone()
            assert row is not None
            self.changes.seq = int(row[0])
        return self.changes.seq

    async def register_nvr(self, info: NvrInfo) -> Registration:
        """Insert or update the NVR identified by hostname and mark it online."""
        seq = await self._seq()
        cursor = await self._db.execute(
            "SELECT status, agent_session, agent_seq FROM nvrs WHERE hostname = ?", (info.hostname,)
        )
        before = await cursor.fetchone()
        cursor = await self._db.execute(
            """
            INSERT INTO nvrs (hostname, device_name, region, site, model, firmware, ip_address, status, status_reason,
                              last_seen, status_changed, updated_seq)
            VALUES (?, ?, ?, ?, ?, ?, ?, 'online', '', ?, ?, ?)
            ON CONFLICT (hostname) DO UPDATE SET
                device_name = excluded.device_name, region = excluded.region, site = excluded.site,
                model = excluded.model, firmware = excluded.firmware, ip_address = excluded.ip_address,
                status_changed = CASE WHEN status = 'online' THEN status_changed ELSE excluded.status_changed END,
                status = 'online', status_reason = '', last_seen = excluded.last_seen,
                updated_seq = excluded.updated_seq
            RETURNING id
            """,
            (
                info.hostname,
                info.device_name,
                info.region,
                info.site,
                info.model,
                info.firmware,
                info.ip_address,
                self.now,
                self.now,
                seq,
            ),
        )
        row = await cursor.fetchone()
        assert row is not None
        nvr_id = int(row[0])
        self.changes.nvr_ids.add(nvr_id)
        await self._stamp_cameras_of(nvr_id)
        if before is None:
            return Registration(nvr_id, None, "", 0)
        return Registration(nvr_id, before[0], before[1], int(before[2]))

    async def replace_cameras(
        self, nvr_id: int, cameras: Sequence[CameraInfo]
    ) -> tuple[dict[str, CameraRef], list[tuple[int, str, Status]]]:
        """Make the NVR's camera list exactly `cameras`; returns the new mirror and the status flips it caused."""
        seq = await self._seq()
        cursor = await self._db.execute(
            "SELECT id, ext_id, name, ip_address, status, removed FROM cameras WHERE nvr_id = ?", (nvr_id,)
        )
        existing = {row[1]: row for row in await cursor.fetchall()}
        flips: list[tuple[int, str, Status]] = []
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        for cam in cameras:
            old = existing.pop(cam.id, None)
            if old is None:
                inserts.append((nvr_id, cam.id, cam.name, cam.ip_address, cam.status, self.now, seq))
                continue
            if (old[2], old[3], old[4], old[5]) != (cam.name, cam.ip_address, cam.status, 0):
                changed_at = self.now if old[4] != cam.status or old[5] else None
                updates.append((cam.name, cam.ip_address, cam.status, changed_at, seq, old[0]))
                self.changes.camera_ids.add(int(old[0]))
                if old[4] != cam.status and not old[5]:
                    flips.append((int(old[0]), cam.name, cam.status))
        removals = [(seq, row[0]) for row in existing.values() if not row[5]]
        if inserts:
            await self._db.executemany(
                "INSERT INTO cameras (nvr_id, ext_id, name, ip_address, status, status_changed, updated_seq) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                inserts,
            )
        if updates:
            await self._db.executemany(
                "UPDATE cameras SET name = ?, ip_address = ?, status = ?, removed = 0, "
                "status_changed = coalesce(?, status_changed), updated_seq = ? WHERE id = ?",
                updates,
            )
        if removals:
            await self._db.executemany("UPDATE cameras SET removed = 1, updated_seq = ? WHERE id = ?", removals)
            self.changes.camera_ids.update(int(r[1]) for r in removals)
        cursor = await self._db.execute(
            "SELECT id, ext_id, status FROM cameras WHERE nvr_id = ? AND removed = 0", (nvr_id,)
        )
        mirror = {row[1]: CameraRef(int(row[0]), row[2]) for row in await cursor.fetchall()}
        self.changes.camera_ids.update(mirror[row[1]].id for row in inserts)
        await self.touch_nvr(nvr_id)
        return mirror, flips

    async def _stamp_cameras_of(self, nvr_id: int) -> None:
        # Cameras show "NVR offline" while their NVR is down, so their rows change whenever its status does.
        seq = await self._seq()
        cursor = await self._db.execute(
            "UPDATE cameras SET updated_seq = ? WHERE nvr_id = ? AND removed = 0 RETURNING id", (seq, nvr_id)
        )
        self.changes.camera_ids.update(int(row[0]) for row in await cursor.fetchall())

    async def touch_nvr(self, nvr_id: int) -> None:
        """Stamp an NVR row whose shown figures (cameras online/total) changed."""
        if nvr_id in self.changes.nvr_ids:
            return
        await self._db.execute("UPDATE nvrs SET updated_seq = ? WHERE id = ?", (await self._seq(), nvr_id))
        self.changes.nvr_ids.add(nvr_id)

    async def set_nvr_status(self, nvr_id: int, status: NvrStatus, reason: str) -> bool:
        """Change an NVR's liveness status; returns False when it already had that status."""
        seq = await self._seq()
        cursor = await self._db.execute(
            "UPDATE nvrs SET status = ?, status_reason = ?, status_changed = ?, updated_seq = ? "
            "WHERE id = ? AND status != ? RETURNING id",
            (status, reason, self.now, seq, nvr_id, status),
        )
        if await cursor.fetchone() is None:
            return False
        self.changes.nvr_ids.add(nvr_id)
        await self._stamp_cameras_of(nvr_id)
        return True

    async def set_unstable(self, nvr_id: int, unstable: bool) -> None:
        await self._db.execute(
            "UPDATE nvrs SET unstable = ?, updated_seq = ? WHERE id = ?", (int(unstable), await self._seq(), nvr_id)
        )
        self.changes.nvr_ids.add(nvr_id)

    async def set_all_status(self, old: Sequence[NvrStatus], new: NvrStatus, reason: str) -> list[tuple[int, str]]:
        """Move every NVR in one of the `old` statuses to `new` (hub restart bookkeeping); returns (id, hostname)."""
        marks = ", ".join("?" for _ in old)
        cursor = await self._db.execute(
            f"UPDATE nvrs SET status = ?, status_reason = ?, status_changed = ?, unstable = 0, updated_seq = ? "
            f"WHERE status IN ({marks}) RETURNING id, hostname",
            (new, reason, self.now, await self._seq(), *old),
        )
        moved = [(int(row[0]), str(row[1])) for row in await cursor.fetchall()]
        for nvr_id, _ in moved:
            self.changes.nvr_ids.add(nvr_id)
            await self._stamp_cameras_of(nvr_id)
        return moved

    async def record_agent_seqs(self, seqs: Iterable[tuple[int, str, int]]) -> None:
        """Remember the last committed frame of each agent session, in the same transaction as its effects."""
        rows = [(session, seq, nvr_id) for nvr_id, session, seq in seqs]
        if rows:
            await self._db.executemany("UPDATE nvrs SET agent_session = ?, agent_seq = ? WHERE id = ?", rows)

    async def set_camera_statuses(self, updates: Iterable[tuple[int, Status]]) -> None:
        """Apply status flips the hub already knows to be real changes (from its mirror)."""
        rows = [(status, self.now, await self._seq(), camera_id) for camera_id, status in updates]
        if not rows:
            return
        await self._db.executemany(
            "UPDATE cameras SET status = ?, status_changed = ?, updated_seq = ? WHERE id = ?", rows
        )
        self.changes.camera_ids.update(row[3] for row in rows)

    async def record_heartbeats(self, beats: Iterable[tuple[int, float, dict[str, Any]]]) -> None:
        """last_seen and agent stats change every few seconds per NVR; they are not stamped (no page re-render)."""
        rows = [(ts, json.dumps(stats), nvr_id) for nvr_id, ts, stats in beats]
        if rows:
            await self._db.executemany(
                "UPDATE nvrs SET last_seen = ?1, stats = CASE WHEN ?2 = '{}' THEN stats ELSE ?2 END WHERE id = ?3",
                rows,
            )

    async def add_events(self, events: Sequence[NewEvent]) -> None:
        if not events:
            return
        seq = await self._seq()
        cursor = await self._db.execute("SELECT coalesce(max(id), 0) FROM events")
        row = await cursor.fetchone()
        first = int(row[0]) + 1 if row else 1
        rows = [
            (first + i, seq, self.now, e.kind, e.severity, e.nvr_id, e.camera_id, e.message)
            for i, e in enumerate(events)
        ]
        await self._db.executemany(
            "INSERT INTO events (id, seq, ts, kind, severity, nvr_id, camera_id, message) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        self.changes.event_ids.extend(r[0] for r in rows)

    async def prune(self, before: float) -> int:
        """Drop events and camera tombstones older than `before`; raises the replay horizon past dropped tombstones."""
        cursor = await self._db.execute("DELETE FROM events WHERE ts < ?", (before,))
        deleted = cursor.rowcount
        # A tombstone still referenced by a kept event stays, so that event's camera link keeps resolving.
        cursor = await self._db.execute(
            "SELECT coalesce(max(updated_seq), 0) FROM cameras WHERE removed = 1 AND status_changed < ? "
            "AND id NOT IN (SELECT camera_id FROM events WHERE camera_id IS NOT NULL)",
            (before,),
        )
        row = await cursor.fetchone()
        horizon = int(row[0]) if row else 0
        if horizon:
            await self._db.execute(
                "DELETE FROM cameras WHERE removed = 1 AND updated_seq <= ? "
                "AND id NOT IN (SELECT camera_id FROM events WHERE camera_id IS NOT NULL)",
                (horizon,),
            )
            await self._db.execute(
                "UPDATE meta SET value = max(CAST(value AS INTEGER), ?) WHERE key = 'horizon'", (horizon,)
            )
        return deleted


class Store:
    """Two connections over one WAL database: a writer (one transaction at a time) and a reader for pages and replay."""

    def __init__(self, writer: aiosqlite.Connection, reader: aiosqlite.Connection, epoch: str, path: Path) -> None:
        self._writer = writer
        self._reader = reader
        self.epoch = epoch
        self.path = path

    @classmethod
    async def open(cls, path: Path) -> Store:
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = await aiosqlite.connect(path, isolation_level=None)
        try:
            # WAL lets pages read while agents write; synchronous=NORMAL keeps every commit across a process crash
            # (kill -9) and only risks the last commits on power loss.
            await writer.execute("PRAGMA journal_mode = WAL")
            await writer.execute("PRAGMA synchronous = NORMAL")
            await writer.execute("PRAGMA busy_timeout = 5000")
            await writer.execute("PRAGMA foreign_keys = ON")
            cursor = await writer.execute("PRAGMA user_version")
            version_row = await cursor.fetchone()
            version = int(version_row[0]) if version_row else 0
            if version > SCHEMA_VERSION:
                raise RuntimeError(f"{path} has schema version {version}; this nvrmon knows up to {SCHEMA_VERSION}")
            await writer.executescript(resources.files("nvrmon.store").joinpath("schema.sql").read_text())
            await writer.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            await writer.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('epoch', ?), ('seq', 0), ('horizon', 0)",
                (secrets.token_hex(4),),
            )
            cursor = await writer.execute("SELECT value FROM meta WHERE key = 'epoch'")
            row = await cursor.fetchone()
            assert row is not None
            reader = await aiosqlite.connect(path, isolation_level=None)
        except BaseException:
            await writer.close()
            raise
        await reader.execute("PRAGMA busy_timeout = 5000")
        await reader.execute("PRAGMA query_only = 1")
        return cls(writer, reader, str(row[0]), path)

    async def close(self) -> None:
        await self._reader.close()
        await self._writer.close()

    @asynccontextmanager
    async def transaction(self, now: float) -> AsyncIterator[Transaction]:
        """BEGIN IMMEDIATE … COMMIT; on any error the whole batch rolls back and nothing is published."""
        await self._writer.execute("BEGIN IMMEDIATE")
        tx = Transaction(self._writer, now)
        try:
            yield tx
        except BaseException:
            await self._writer.execute("ROLLBACK")
            raise
        await self._writer.execute("COMMIT")

    # -- meta -------------------------------------------------------------------------------------------------------

    async def meta(self, key: str) -> str | None:
        cursor = await self._reader.execute("SELECT value FROM meta WHERE key = ?", (key,))
        row = await cursor.fetchone()
        return None if row is None else str(row[0])

    async def set_meta(self, key: str, value: str) -> None:
        await self._writer.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    async def current_seq(self) -> int:
        return int(await self.meta("seq") or 0)

    async def horizon(self) -> int:
        """Cursors older than this may have missed a pruned tombstone, so they get a full refresh."""
        return int(await self.meta("horizon") or 0)

    # -- reads ------------------------------------------------------------------------------------------------------

    async def summary(self) -> Summary:
        cursor = await self._reader.execute(
            """
            SELECT (SELECT value FROM meta WHERE key = 'seq'),
                   (SELECT count(*) FROM nvrs), (SELECT count(*) FROM nvrs WHERE status = 'online'),
                   (SELECT count(*) FROM nvrs WHERE status = 'stale'),
                   (SELECT count(*) FROM nvrs WHERE status = 'unknown'),
                   count(c.id),
                   coalesce(sum(c.status = 'online' AND n.status IN ('online', 'stale')), 0),
                   coalesce(sum(c.status = 'offline' AND n.status IN ('online', 'stale')), 0),
                   coalesce(sum(n.status = 'offline'), 0),
                   coalesce(sum(n.status = 'unknown'), 0),
                   max((SELECT coalesce(max(status_changed), 0) FROM nvrs), coalesce(max(c.status_changed), 0))
            FROM cameras c JOIN nvrs n ON n.id = c.nvr_id WHERE c.removed = 0
            """
        )
        row = await cursor.fetchone()
        assert row is not None
        seq, nvrs, online, stale, unknown, cams, cams_online, cams_offline, cams_nvr_offline, cams_unknown = (
            int(v) for v in row[:10]
        )
        return Summary(seq, nvrs, online, stale, unknown, cams, cams_online, cams_offline, cams_nvr_offline,
                       cams_unknown, float(row[10]))  # fmt: skip

    async def nvrs(self, ids: Iterable[int] | None = None) -> list[Nvr]:
        if ids is None:
            cursor = await self._reader.execute(
                f"SELECT {_NVR_BASE}, {_FLEET_COUNTS}, n.stats {_FLEET_FROM} ORDER BY n.hostname"
            )
            return [_nvr(row) for row in await cursor.fetchall()]
        where, params = _ids_clause("n.id", ids)
        cursor = await self._reader.execute(f"SELECT {_NVR_COLUMNS} FROM nvrs n {where} ORDER BY n.hostname", params)
        return [_nvr(row) for row in await cursor.fetchall()]

    async def fleet(self) -> list[Nvr]:
        """Every NVR with its camera counts (without agent stats): the input of lists, counts and charts."""
        cursor = await self._reader.execute(f"SELECT {_NVR_BASE}, {_FLEET_COUNTS}, '{{}}' {_FLEET_FROM}")
        return [_nvr(row) for row in await cursor.fetchall()]

    async def camera_page(self, query: ListQuery) -> tuple[list[Camera], int]:
        """One page of the camera list for a query, and how many cameras match it in all."""
        where, params = _camera_filter(query)
        order = _CAMERA_ORDER[query.sort_column]
        if query.descending:
            order = ", ".join(f"{term} DESC" for term in order.split(", "))
        cursor = await self._reader.execute(
            f"SELECT {_CAMERA_COLUMNS} FROM cameras c JOIN nvrs n ON n.id = c.nvr_id WHERE {where} "
            f"ORDER BY {order} LIMIT ? OFFSET ?",
            [*params, query.per_page, query.offset],
        )
        rows = [_camera(row) for row in await cursor.fetchall()]
        cursor = await self._reader.execute(
            f"SELECT count(*) FROM cameras c JOIN nvrs n ON n.id = c.nvr_id WHERE {where}", params
        )
        row = await cursor.fetchone()
        return rows, int(row[0]) if row else 0

    async def camera_counts(self, query: ListQuery) -> tuple[dict[str, int], dict[str, int]]:
        """Cameras by shown status (ignoring the status filter) and by region (ignoring the region filter)."""
        where, params = _camera_filter(replace(query, status=""))
        cursor = await self._reader.execute(
            f"SELECT {_DISPLAY}, count(*) FROM cameras c JOIN nvrs n ON n.id = c.nvr_id WHERE {where} GROUP BY 1",
            params,
        )
        status = {str(r[0]): int(r[1]) for r in await cursor.fetchall()}
        where, params = _camera_filter(replace(query, region=""))
        cursor = await self._reader.execute(
            f"SELECT n.region, count(*) FROM cameras c JOIN nvrs n ON n.id = c.nvr_id WHERE {where} GROUP BY 1",
            params,
        )
        return status, {str(r[0]): int(r[1]) for r in await cursor.fetchall()}

    async def nvr(self, nvr_id: int) -> Nvr | None:
        found = await self.nvrs([nvr_id])
        return found[0] if found else None

    async def cameras(
        self,
        ids: Iterable[int] | None = None,
        *,
        nvr_id: int | None = None,
        status: str | None = None,
        region: str | None = None,
        include_removed: bool = False,
    ) -> list[Camera]:
        where, params = _ids_clause("c.id", ids)
        clauses = [where.removeprefix("WHERE ")] if where else []
        if not include_removed:
            clauses.append("c.removed = 0")
        if nvr_id is not None:
            clauses.append("c.nvr_id = ?")
            params.append(nvr_id)
        if region is not None:
            clauses.append("n.region = ?")
            params.append(region)
        if status == "nvr_offline":
            clauses.append("n.status = 'offline'")
        elif status == "unknown":
            clauses.append("n.status = 'unknown'")
        elif status in ("online", "offline"):
            clauses.append("n.status IN ('online', 'stale') AND c.status = ?")
            params.append(status)
        sql_where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        cursor = await self._reader.execute(
            f"SELECT {_CAMERA_COLUMNS} FROM cameras c JOIN nvrs n ON n.id = c.nvr_id {sql_where} "
            "ORDER BY n.hostname, c.name, c.id",
            params,
        )
        return [_camera(row) for row in await cursor.fetchall()]

    async def camera(self, camera_id: int) -> Camera | None:
        found = await self.cameras([camera_id], include_removed=True)
        return found[0] if found else None

    async def events(
        self,
        *,
        limit: int = 50,
        ids: Iterable[int] | None = None,
        nvr_id: int | None = None,
        camera_id: int | None = None,
        after_seq: int | None = None,
    ) -> list[Event]:
        where, params = _ids_clause("e.id", ids)
        clauses = [where.removeprefix("WHERE ")] if where else []
        for column, value in (("e.nvr_id", nvr_id), ("e.camera_id", camera_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if after_seq is not None:
            clauses.append("e.seq > ?")
            params.append(after_seq)
        sql_where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        params.append(limit)
        cursor = await self._reader.execute(
            f"SELECT {_EVENT_COLUMNS} FROM {_EVENT_FROM} {sql_where} ORDER BY e.id DESC LIMIT ?", params
        )
        return [_event(row) for row in await cursor.fetchall()]

    async def changed_since(self, seq: int, limit: int) -> tuple[list[int], list[int]] | None:
        """Ids of NVRs and cameras stamped after `seq`; None when more than `limit` rows changed (refresh instead)."""
        cursor = await self._reader.execute(
            "SELECT 'n', id FROM nvrs WHERE updated_seq > ? UNION ALL "
            "SELECT 'c', id FROM cameras WHERE updated_seq > ? LIMIT ?",
            (seq, seq, limit + 1),
        )
        rows = list(await cursor.fetchall())
        if len(rows) > limit:
            return None
        return [int(r[1]) for r in rows if r[0] == "n"], [int(r[1]) for r in rows if r[0] == "c"]

    async def database_bytes(self) -> int:
        cursor = await self._reader.execute(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
        )
        row = await cursor.fetchone()
        return int(row[0]) if row else 0


def _camera_filter(query: ListQuery) -> tuple[str, list[Any]]:
    clauses: list[str] = ["c.removed = 0"]
    params: list[Any] = []
    if query.status:
        clauses.append(f"{_DISPLAY} = ?")
        params.append(query.status)
    if query.region:
        clauses.append("n.region = ?")
        params.append(query.region)
    if query.nvr:
        clauses.append("c.nvr_id = ?")
        params.append(query.nvr)
    if query.q:
        like = "%" + query.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        fields = ("c.name", "c.ext_id", "c.ip_address", "n.hostname", "n.site")
        clauses.append("(" + " OR ".join(f"{f} LIKE ? ESCAPE '\\'" for f in fields) + ")")
        params.extend([like] * len(fields))
    return " AND ".join(clauses), params


def _ids_clause(column: str, ids: Iterable[int] | None) -> tuple[str, list[Any]]:
    if ids is None:
        return "", []
    # json_each takes any number of ids as one parameter (no SQLITE_MAX_VARIABLE_NUMBER limit).
    return f"WHERE {column} IN (SELECT value FROM json_each(?))", [json.dumps(sorted(set(ids)))]


def _nvr(row: sqlite3.Row | tuple[Any, ...]) -> Nvr:
    return Nvr(
        id=row[0], hostname=row[1], device_name=row[2], region=row[3], site=row[4], model=row[5], firmware=row[6],
        ip_address=row[7], status=row[8], status_reason=row[9], last_seen=row[10], status_changed=row[11],
        updated_seq=row[12], unstable=bool(row[13]), cameras_online=int(row[14]), cameras_total=int(row[15]),
        stats=json.loads(row[16]) if row[16] else {},
    )  # fmt: skip


def _camera(row: sqlite3.Row | tuple[Any, ...]) -> Camera:
    return Camera(
        id=row[0], nvr_id=row[1], nvr_hostname=row[2], nvr_status=row[3], region=row[4], site=row[5], ext_id=row[6],
        name=row[7], ip_address=row[8], status=row[9], status_changed=row[10], removed=bool(row[11]),
        updated_seq=row[12],
    )  # fmt: skip


def _event(row: sqlite3.Row | tuple[Any, ...]) -> Event:
    return Event(
        id=row[0], seq=row[1], ts=row[2], kind=row[3], severity=row[4], nvr_id=row[5], nvr_hostname=row[6],
        camera_id=row[7], camera_name=row[8], message=row[9],
    )  # fmt: skip
