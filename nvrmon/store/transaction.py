"""Stage 3, fleet writes: one write transaction of the hub, every change in it stamped with one new seq."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from typing import Any

from nvrmon.devices import CameraHealth, NvrHealth, StreamDetail
from nvrmon.models import CameraDisplay, NvrStatus, Status
from nvrmon.protocol import CameraInfo, NvrInfo
from nvrmon.store import device_health, history, removal
from nvrmon.store.changes import CameraRef as CameraRef
from nvrmon.store.changes import Changes as Changes
from nvrmon.store.changes import NewEvent as NewEvent
from nvrmon.store.changes import Registration as Registration
from nvrmon.store.device_health import HealthState
from nvrmon.store.dialect import Connection
from nvrmon.store.removal import Outside, Removed


def detail_json(detail: StreamDetail) -> str | None:
    """A stream detail as stored (JSON), or None when the frame carried none (the stored one stays)."""
    return json.dumps(asdict(detail), separators=(",", ":")) if detail else None


class Transaction:
    """One write transaction. The sequence number is allocated on the first change, inside the transaction."""

    def __init__(self, db: Connection, now: float, node: str = "") -> None:
        self._db = db
        self.now = now
        self.node = node  # the hub process writing (docs/deploy.md): it owns the liveness of the NVRs it registers
        self.changes = Changes()
        self._own_seq = 0
        self._outside_nvrs: set[int] = set()  # in changes for others' stamps: not yet stamped by this transaction

    @property
    def connection(self) -> Connection:
        """The writer connection inside this transaction, for the store's other write modules (inventory, incidents)."""
        return self._db

    async def seq(self) -> int:
        """This transaction's seq (taken now if it has none yet): call it only when something will change."""
        return await self._seq()

    async def _seq(self) -> int:
        if not self._own_seq:
            cursor = await self._db.execute(
                "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'seq' RETURNING value"
            )
            row = await cursor.fetchone()
            assert row is not None
            self._own_seq = self.changes.seq = int(row[0])
        return self._own_seq

    async def register_nvr(self, info: NvrInfo) -> Registration:
        """Insert or update the NVR identified by hostname and mark it online."""
        seq = await self._seq()
        cursor = await self._db.execute(
            "SELECT status, agent_session, agent_seq, removed, last_seen FROM nvrs WHERE hostname = ?", (info.hostname,)
        )
        before = await cursor.fetchone()
        cursor = await self._db.execute(
            """
            INSERT INTO nvrs (hostname, device_name, region, site, model, firmware, ip_address, status, status_reason,
                              last_seen, status_changed, updated_seq, hub)
            VALUES (?, ?, ?, ?, ?, ?, ?, 'online', '', ?, ?, ?, ?)
            ON CONFLICT (hostname) DO UPDATE SET
                -- What the inventory declares (docs/inventory.md) wins over what the agent reports.
                device_name = CASE WHEN nvrs.declared = 1 AND nvrs.device_name != '' THEN nvrs.device_name
                                   ELSE excluded.device_name END,
                region = CASE WHEN nvrs.declared = 1 AND nvrs.region != '' THEN nvrs.region ELSE excluded.region END,
                site = CASE WHEN nvrs.declared = 1 AND nvrs.site != '' THEN nvrs.site ELSE excluded.site END,
                model = excluded.model, firmware = excluded.firmware, ip_address = excluded.ip_address,
                status_changed = CASE WHEN nvrs.status = 'online' THEN nvrs.status_changed
                                      ELSE excluded.status_changed END,
                status = 'online', status_reason = '', last_seen = excluded.last_seen,
                updated_seq = excluded.updated_seq, removed = 0, hub = excluded.hub
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
                self.node,
            ),
        )
        row = await cursor.fetchone()
        assert row is not None
        nvr_id = int(row[0])
        self.changes.nvr_ids.add(nvr_id)
        await self._stamp_cameras_of(nvr_id)
        if before is None or before[3] or not before[4]:
            # new, back after it was removed, or declared in the inventory and connecting for the first time
            return Registration(nvr_id, None, "", 0)
        return Registration(nvr_id, before[0], before[1], int(before[2]))

    async def replace_cameras(
        self, nvr_id: int, cameras: Sequence[CameraInfo]
    ) -> tuple[dict[str, CameraRef], list[tuple[int, str, CameraDisplay, str]]]:
        """Make the NVR's camera list exactly `cameras`; returns the new mirror and the status flips it caused
        (camera id, name, new status, reason). A camera's detail alone changing is stored without a stamp.

        A camera no longer listed shows "missing" (a wiped or stolen recorder looks like that) until its NVR lists it
        again or it is decommissioned; a name declared in the inventory wins over the NVR's."""
        seq = await self._seq()
        cursor = await self._db.execute(
            "SELECT id, ext_id, name, ip_address, status, removed, status_reason, detail, missing, declared "
            "FROM cameras WHERE nvr_id = ?",
            (nvr_id,),
        )
        existing = {row[1]: row for row in await cursor.fetchall()}
        flips: list[tuple[int, str, CameraDisplay, str]] = []
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        details: list[tuple[str, int]] = []
        for cam in cameras:
            old = existing.pop(cam.id, None)
            detail = detail_json(cam.detail)
            if old is None:
                row = (nvr_id, cam.id, cam.name, cam.ip_address, cam.status, cam.reason, detail or "{}", self.now, seq)
                inserts.append(row)
                continue
            name = old[2] if old[9] and old[2] else cam.name
            if (old[2], old[3], old[4], old[5], old[6], old[8]) != (name, cam.ip_address, cam.status, 0, cam.reason, 0):
                changed_at = self.now if old[4] != cam.status or old[5] or old[8] else None
                updates.append((name, cam.ip_address, cam.status, cam.reason, detail, changed_at, seq, old[0]))
                self.changes.camera_ids.add(int(old[0]))
                if (old[4] != cam.status or old[8]) and not old[5]:
                    flips.append((int(old[0]), name, cam.status, cam.reason))
            elif detail is not None and detail != old[7]:
                details.append((detail, int(old[0])))
        vanished = [row for row in existing.values() if not row[5] and not row[8]]
        removals = [(self.now, seq, row[0]) for row in vanished]
        flips.extend((int(row[0]), str(row[2]), "missing", "") for row in vanished)
        if inserts:
            await self._db.executemany(
                "INSERT INTO cameras (nvr_id, ext_id, name, ip_address, status, status_reason, detail, status_changed, "
                "updated_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                inserts,
            )
        if updates:
            await self._db.executemany(
                "UPDATE cameras SET name = ?, ip_address = ?, status = ?, status_reason = ?, "
                "detail = coalesce(?, detail), removed = 0, missing = 0, status_changed = coalesce(?, status_changed), "
                "updated_seq = ? WHERE id = ?",
                updates,
            )
        await self.record_details(details)
        if removals:
            await self._db.executemany(
                "UPDATE cameras SET missing = 1, degraded = '', status_changed = ?, updated_seq = ? WHERE id = ?",
                removals,
            )
            await self._db.executemany("DELETE FROM camera_health WHERE camera_id = ?", [(r[2],) for r in removals])
            self.changes.camera_ids.update(int(r[2]) for r in removals)
        cursor = await self._db.execute(
            "SELECT id, ext_id, status, status_reason FROM cameras WHERE nvr_id = ? AND removed = 0 AND missing = 0",
            (nvr_id,),
        )
        mirror = {row[1]: CameraRef(int(row[0]), row[2], row[3]) for row in await cursor.fetchall()}
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
        if nvr_id in self.changes.nvr_ids and nvr_id not in self._outside_nvrs:
            return  # stamped by this transaction already
        await self._db.execute("UPDATE nvrs SET updated_seq = ? WHERE id = ?", (await self._seq(), nvr_id))
        self.changes.nvr_ids.add(nvr_id)
        self._outside_nvrs.discard(nvr_id)

    async def set_nvr_status(self, nvr_id: int, status: NvrStatus, reason: str) -> bool:
        """Change an NVR's liveness status; returns False when it already had that status, or when another hub has
        registered it since (its agent reconnected there: that hub owns its liveness now)."""
        seq = await self._seq()
        cursor = await self._db.execute(
            "UPDATE nvrs SET status = ?, status_reason = ?, status_changed = ?, updated_seq = ? "
            "WHERE id = ? AND status != ? AND (? = '' OR hub IN ('', ?)) RETURNING id",
            (status, reason, self.now, seq, nvr_id, status, self.node, self.node),
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

    async def set_all_status(
        self,
        old: Sequence[NvrStatus],
        new: NvrStatus,
        reason: str,
        *,
        hubs: Sequence[str] | None = None,
        other_than: Sequence[str] = (),
        changed_before: float | None = None,
    ) -> list[tuple[int, str]]:
        """Move every NVR in one of the `old` statuses to `new` (hub restart and dead-hub bookkeeping): only those
        registered by one of `hubs` if given, none registered by a hub in `other_than` (live hubs own theirs), and
        only those whose status is older than `changed_before` if given; returns (id, hostname)."""
        marks = ", ".join("?" for _ in old)
        where, params = f"status IN ({marks})", list[Any](old)
        if hubs is not None:
            if not hubs:
                return []
            where += f" AND hub IN ({', '.join('?' for _ in hubs)})"
            params.extend(hubs)
        if other_than:
            where += f" AND hub NOT IN ({', '.join('?' for _ in other_than)})"
            params.extend(other_than)
        if changed_before is not None:
            where += " AND status_changed <= ?"
            params.append(changed_before)
        cursor = await self._db.execute(
            f"UPDATE nvrs SET status = ?, status_reason = ?, status_changed = ?, unstable = 0, updated_seq = ? "
            f"WHERE {where} RETURNING id, hostname",
            (new, reason, self.now, await self._seq(), *params),
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
        await self.set_camera_states((camera_id, status, "") for camera_id, status in updates)

    async def set_camera_states(self, updates: Iterable[tuple[int, Status, str]]) -> None:
        """Apply status or reason changes the hub already knows to be real (from its mirror); the time of the status
        change moves only when the status itself does."""
        rows = [(status, reason, self.now, await self._seq(), camera_id) for camera_id, status, reason in updates]
        if not rows:
            return
        await self._db.executemany(
            "UPDATE cameras SET status_changed = CASE WHEN status = ?1 THEN status_changed ELSE ?3 END, "
            "status = ?1, status_reason = ?2, updated_seq = ?4 WHERE id = ?5",
            rows,
        )
        self.changes.camera_ids.update(row[4] for row in rows)

    async def record_details(self, details: Iterable[tuple[str, int]]) -> None:
        """A camera's stream detail (JSON, camera id) measured again: stored unstamped, like heartbeat stats."""
        rows = list(details)
        if rows:
            await self._db.executemany("UPDATE cameras SET detail = ? WHERE id = ?", rows)

    async def record_heartbeats(self, beats: Iterable[tuple[int, float, dict[str, Any]]]) -> None:
        """last_seen and agent stats change every few seconds per NVR; they are not stamped (no page re-render)."""
        rows = [(ts, json.dumps(stats), nvr_id) for nvr_id, ts, stats in beats]
        if rows:
            await self._db.executemany(
                "UPDATE nvrs SET last_seen = ?1, stats = CASE WHEN ?2 = '{}' THEN stats ELSE ?2 END WHERE id = ?3",
                rows,
            )

    async def health_state(self, nvr_id: int) -> HealthState:
        """The NVR's and its cameras' current degraded words, statuses and stream detail (to derive anew)."""
        return await device_health.state(self._db, nvr_id)

    async def replace_health(self, nvr_id: int, nvr: NvrHealth, cameras: Sequence[tuple[int, CameraHealth]]) -> None:
        """Store a health message's facts, unstamped: only what they change on rows (set_degraded) is pushed."""
        await device_health.replace(self._db, nvr_id, nvr, cameras, self.now)

    async def set_degraded(self, nvr: tuple[int, str] | None, cameras: Sequence[tuple[int, str]]) -> None:
        """Rows whose degraded words changed: (id, words), "" when no longer degraded; stamped and published."""
        if nvr is None and not cameras:
            return
        await device_health.set_degraded(self._db, await self._seq(), nvr, cameras)
        if nvr is not None:
            self.changes.nvr_ids.add(nvr[0])
        self.changes.camera_ids.update(camera_id for camera_id, _ in cameras)

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
        upto = self._own_seq - 1 if self._own_seq else await removal.committed_seq(self._db)
        found = await removal.outside(self._db, after, upto)
        self._outside_nvrs.update(found.nvr_ids - self.changes.nvr_ids)
        self.changes.nvr_ids.update(found.nvr_ids)
        self.changes.camera_ids.update(found.camera_ids)
        self.changes.event_ids.extend(found.event_ids)
        self.changes.incident_ids.update(found.incident_ids)
        if found and not self._own_seq:
            # Published at the outside seq itself: taking a seq of our own would be a write that every other hub
            # then sees as outside, and so on for ever. Anything this transaction stamps later takes a new one.
            self.changes.seq = max(self.changes.seq, upto)
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
        return int(deleted)
