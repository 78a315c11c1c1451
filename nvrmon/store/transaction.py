"""Stage 3, fleet writes: one write transaction of the hub, every change in it stamped with one new seq."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiosqlite

from nvrmon.models import NvrStatus, Severity, Status
from nvrmon.protocol import CameraInfo, NvrInfo
from nvrmon.store import history, removal
from nvrmon.store.removal import Outside, Removed


@dataclass(frozen=True, slots=True)
class NewEvent:
    kind: str
    severity: Severity
    message: str
    nvr_id: int | None = None
    camera_id: int | None = None


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
    incident_ids: set[int] = field(default_factory=set)  # nvrmon/store/incidents.py: incidents the batch changed

    def __bool__(self) -> bool:
        return bool(self.nvr_ids or self.camera_ids or self.event_ids or self.incident_ids)


class Transaction:
    """One write transaction. The sequence number is allocated on the first change, inside the transaction."""

    def __init__(self, db: aiosqlite.Connection, now: float) -> None:
        self._db = db
        self.now = now
        self.changes = Changes()

    @property
    def connection(self) -> aiosqlite.Connection:
        """The writer connection inside this transaction, for the store's other modules (incidents, maintenance)."""
        return self._db

    async def seq(self) -> int:
        """This transaction's seq (taken now if it has none yet), for rows the store's other modules stamp."""
        return await self._seq()

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
            "SELECT status, agent_session, agent_seq, removed FROM nvrs WHERE hostname = ?", (info.hostname,)
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
                updated_seq = excluded.updated_seq, removed = 0
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
        if before is None or before[3]:
            return Registration(nvr_id, None, "", 0)  # new, or back after it was removed: registered anew
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

    async def remove_nvr(self, hostname: str, actor: str) -> Removed | None:
        """Remove a (decommissioned) NVR with its cameras and agent tokens, logged as removed by `actor`."""
        cursor = await self._db.execute("SELECT 1 FROM nvrs WHERE hostname = ? AND removed = 0", (hostname,))
        if await cursor.fetchone() is None:
            return None  # no seq taken: nothing changed
        removed = await removal.tombstone_nvr(self._db, hostname, await self._seq(), self.now)
        assert removed is not None  # inside BEGIN IMMEDIATE nobody else could remove it in between
        self.changes.nvr_ids.add(removed.nvr_id)
        self.changes.camera_ids.update(removed.camera_ids)
        await self.add_events(
            [NewEvent("status", "info", f"NVR {removed.hostname} removed by {actor}", removed.nvr_id)]
        )
        return removed

    async def take_outside(self, after: int) -> tuple[Outside, int]:
        """What other processes committed after seq `after`, added to this transaction's changes; returns it and the
        last outside seq. This transaction then takes a seq of its own, newer than all of them, so a cursor at it has
        seen them."""
        upto = self.changes.seq - 1 if self.changes.seq else await removal.committed_seq(self._db)
        found = await removal.outside(self._db, after, upto)
        self.changes.nvr_ids.update(found.nvr_ids)
        self.changes.camera_ids.update(found.camera_ids)
        self.changes.event_ids.extend(found.event_ids)
        if found.nvr_ids or found.camera_ids or found.event_ids:
            await self._seq()
        return found, upto

    async def prune(self, before: float) -> int:
        """Drop events and camera tombstones older than `before`; raises the replay horizon past dropped tombstones."""
        cursor = await self._db.execute("DELETE FROM events WHERE ts < ?", (before,))
        deleted = cursor.rowcount
        await history.prune(self._db, before)  # availability intervals keep the events' retention
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
        horizon = max(horizon, await removal.prune_nvrs(self._db, before))
        if horizon:
            await self._db.execute(
                "UPDATE meta SET value = max(CAST(value AS INTEGER), ?) WHERE key = 'horizon'", (horizon,)
            )
        return deleted
