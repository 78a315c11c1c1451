"""Stage 3, removals and outside writes: an NVR's tombstone (with its cameras and agent tokens), and the rows another
process (the CLI next to a running hub) stamped, so the hub can publish them."""

from __future__ import annotations

from dataclasses import dataclass, field

from nvrmon.store.dialect import Connection
from nvrmon.store.security_rows import bump_generation


@dataclass(frozen=True, slots=True)
class Removed:
    nvr_id: int
    hostname: str
    camera_ids: tuple[int, ...]
    tokens: int  # per-NVR agent tokens revoked with it


@dataclass(slots=True)
class Outside:
    """What transactions outside this hub committed in a range of seqs: the ids to publish, and removed NVRs."""

    nvr_ids: set[int] = field(default_factory=set)
    camera_ids: set[int] = field(default_factory=set)
    event_ids: list[int] = field(default_factory=list)
    removed_nvrs: set[int] = field(default_factory=set)
    hostnames: dict[int, str] = field(default_factory=dict)  # NVRs still there (declared by `nvrmon inventory`)
    incident_ids: set[int] = field(default_factory=set)  # changed by another hub (an acknowledgement there, say)

    def __bool__(self) -> bool:
        return bool(self.nvr_ids or self.camera_ids or self.event_ids or self.incident_ids)


async def tombstone_nvr(db: Connection, hostname: str, seq: int, now: float) -> Removed | None:
    """Mark the NVR and its cameras removed at `seq` and revoke its own agent tokens (bumping the revocation
    generation, so a running hub closes connections that use them). The rows stay as tombstones: a page replaying
    from an older cursor still learns to drop them, and events keep naming the NVR."""
    cursor = await db.execute(
        "UPDATE nvrs SET removed = 1, status = 'offline', status_reason = 'removed', unstable = 0, degraded = '', "
        "status_changed = ?, agent_session = '', agent_seq = 0, updated_seq = ?, "
        # No longer expected: an agent connecting again registers it anew, as discovered (docs/inventory.md).
        "declared = 0, tags = '', expected_cameras = NULL "
        "WHERE hostname = ? AND removed = 0 RETURNING id, hostname",
        (now, seq, hostname),
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    nvr_id = int(row[0])
    cursor = await db.execute(
        "UPDATE cameras SET removed = 1, degraded = '', missing = 0, declared = 0, updated_seq = ? "
        "WHERE nvr_id = ? AND removed = 0 RETURNING id",
        (seq, nvr_id),
    )
    cameras = tuple(int(r[0]) for r in await cursor.fetchall())
    await db.execute("DELETE FROM camera_health WHERE nvr_id = ?", (nvr_id,))
    await db.execute("DELETE FROM nvr_health WHERE nvr_id = ?", (nvr_id,))
    cursor = await db.execute(
        "UPDATE agent_tokens SET revoked = ? WHERE kind = 'nvr' AND hostname = ? AND revoked = 0 RETURNING id",
        (now, row[1]),
    )
    tokens = len(list(await cursor.fetchall()))
    if tokens:
        await bump_generation(db)
    return Removed(nvr_id, str(row[1]), cameras, tokens)


async def committed_seq(db: Connection) -> int:
    cursor = await db.execute("SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'seq'")
    row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def outside(db: Connection, after: int, upto: int) -> Outside:
    """Rows still stamped with a seq in (after, upto]; later stamps were published by whoever made them."""
    found = Outside()
    if upto <= after:
        return found
    span = (after, upto)
    cursor = await db.execute("SELECT id, removed, hostname FROM nvrs WHERE updated_seq > ? AND updated_seq <= ?", span)
    for nvr_id, removed, hostname in await cursor.fetchall():
        found.nvr_ids.add(int(nvr_id))
        if removed:
            found.removed_nvrs.add(int(nvr_id))
        else:
            found.hostnames[int(nvr_id)] = str(hostname)
    cursor = await db.execute("SELECT id FROM cameras WHERE updated_seq > ? AND updated_seq <= ?", span)
    found.camera_ids.update(int(r[0]) for r in await cursor.fetchall())
    cursor = await db.execute("SELECT id FROM events WHERE seq > ? AND seq <= ? ORDER BY id", span)
    found.event_ids.extend(int(r[0]) for r in await cursor.fetchall())
    cursor = await db.execute("SELECT id FROM incidents WHERE updated_seq > ? AND updated_seq <= ?", span)
    found.incident_ids.update(int(r[0]) for r in await cursor.fetchall())
    return found


async def prune_nvrs(db: Connection, before: float) -> int:
    """Drop NVR tombstones removed before `before` that no kept event or camera names; returns the highest seq
    dropped (the new replay horizon: an older cursor may have missed a tombstone), or 0."""
    unreferenced = (
        "removed = 1 AND id NOT IN (SELECT nvr_id FROM events WHERE nvr_id IS NOT NULL) "
        "AND id NOT IN (SELECT nvr_id FROM cameras)"
    )
    cursor = await db.execute(
        f"SELECT coalesce(max(updated_seq), 0) FROM nvrs WHERE status_changed < ? AND {unreferenced}", (before,)
    )
    row = await cursor.fetchone()
    horizon = int(row[0]) if row else 0
    if horizon:
        await db.execute(f"DELETE FROM nvrs WHERE updated_seq <= ? AND {unreferenced}", (horizon,))
    return horizon
