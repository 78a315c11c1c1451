"""Stage 3, hub leases: which hub processes share the database, which are alive, and work claimed once among them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nvrmon.store.database import Database


@dataclass(frozen=True, slots=True)
class Lease:
    node: str
    address: str
    started: float
    heartbeat: float


async def renew(db: Any, node: str, address: str, now: float) -> bool:
    """This hub is alive: its lease row's heartbeat moves to `now`. False when the row was gone (created anew): the
    others took this hub for dead and took its NVRs over."""
    cursor = await db.execute(
        "UPDATE hubs SET heartbeat = ?, address = ? WHERE node = ? RETURNING node", (now, address, node)
    )
    if await cursor.fetchone() is not None:
        return True
    await db.execute(
        "INSERT INTO hubs (node, address, started, heartbeat) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (node) DO UPDATE SET heartbeat = excluded.heartbeat, address = excluded.address",
        (node, address, now, now),
    )
    return False


async def expire(db: Any, node: str) -> None:
    """A hub stopping on purpose: its lease ends now, so the others take over its NVRs at once."""
    await db.execute("UPDATE hubs SET heartbeat = 0 WHERE node = ?", (node,))


async def take_dead(db: Any, before: float, me: str) -> list[str]:
    """Remove and return the hubs whose heartbeat is older than `before`. Inside the writer transaction: whoever
    deletes a row takes over that hub's NVRs, so each dead hub is handled exactly once however many hubs look."""
    cursor = await db.execute("DELETE FROM hubs WHERE heartbeat < ? AND node != ? RETURNING node", (before, me))
    return sorted(str(row[0]) for row in await cursor.fetchall())


async def forget_others(db: Any, me: str) -> None:
    """One hub per file (SQLite's HubLock): any other lease row is a previous run of this hub, dead by definition."""
    await db.execute("DELETE FROM hubs WHERE node != ?", (me,))


async def alive_others(db: Any, since: float, me: str) -> list[str]:
    cursor = await db.execute("SELECT node FROM hubs WHERE heartbeat >= ? AND node != ?", (since, me))
    return [str(row[0]) for row in await cursor.fetchall()]


async def claim(db: Any, name: str, now: float, every: float) -> bool:
    """True at most once per `every` seconds cluster-wide for the job `name` (retention pruning, say): the claim is
    a meta row moved forward inside the caller's write transaction, which the store serialises across hubs."""
    key = f"claim:{name}"
    await db.execute("INSERT INTO meta (key, value) VALUES (?, '0') ON CONFLICT (key) DO NOTHING", (key,))
    cursor = await db.execute(
        "UPDATE meta SET value = ? WHERE key = ? AND CAST(value AS DOUBLE PRECISION) <= ? RETURNING key",
        (repr(now), key, now - every),
    )
    return await cursor.fetchone() is not None


async def leases(database: Database) -> list[Lease]:
    """Every hub's lease as stored (for /healthz and `nvrmon` operators), newest heartbeat first."""
    rows = await database.fetch_all("SELECT node, address, started, heartbeat FROM hubs ORDER BY heartbeat DESC")
    return [Lease(str(r[0]), str(r[1]), float(r[2]), float(r[3])) for r in rows]
