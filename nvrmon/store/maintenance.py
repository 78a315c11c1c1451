"""Stage 3, maintenance windows: the windows' SQL, and stamping the devices a window covers so pages re-render them."""

from __future__ import annotations

from typing import Any

from nvrmon.incidents import Match, Window
from nvrmon.store.database import Database
from nvrmon.store.dialect import Connection
from nvrmon.store.transaction import Transaction

COLUMNS = (
    "id, match_camera, match_nvr, match_site, match_region, starts_at, ends_at, reason, created_by, created_at, days, "
    "time_from, time_to, tz"
)
GENERATION = "maintenance_generation"
MAX_WINDOWS = 1000  # kept at once; a hub with more is refused new ones (bounded: every render checks them all)


def _window(row: Any) -> Window:
    days = tuple(int(d) for d in str(row[10]).split(",") if d)
    return Window(int(row[0]), Match(row[1], row[2], row[3], row[4]), row[5], row[6], row[7], row[8], row[9], days,
                  row[11], row[12], row[13])  # fmt: skip


async def windows(source: Database | Connection) -> list[Window]:
    sql = f"SELECT {COLUMNS} FROM maintenance ORDER BY starts_at, id"
    if isinstance(source, Database):
        return [_window(r) for r in await source.fetch_all(sql)]
    cursor = await source.execute(sql)
    return [_window(r) for r in await cursor.fetchall()]


async def insert(tx: Transaction, window: Window) -> int:
    """Store a new window (its id is assigned here); 0 when the hub already keeps MAX_WINDOWS."""
    db = tx.connection
    cursor = await db.execute("SELECT count(*) FROM maintenance")
    row = await cursor.fetchone()
    if row is not None and int(row[0]) >= MAX_WINDOWS:
        return 0
    m = window.match
    cursor = await db.execute(
        "INSERT INTO maintenance (match_camera, match_nvr, match_site, match_region, starts_at, ends_at, reason, "
        "created_by, created_at, days, time_from, time_to, tz) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "RETURNING id",
        (m.camera, m.nvr, m.site, m.region, window.starts_at, window.ends_at, window.reason, window.created_by,
         window.created_at, ",".join(str(d) for d in window.days), window.time_from, window.time_to, window.tz),
    )  # fmt: skip
    row = await cursor.fetchone()
    assert row is not None
    await _bump(db)
    return int(row[0])


async def delete(tx: Transaction, window_id: int) -> Window | None:
    cursor = await tx.connection.execute(f"DELETE FROM maintenance WHERE id = ? RETURNING {COLUMNS}", (window_id,))
    row = await cursor.fetchone()
    if row is None:
        return None
    await _bump(tx.connection)
    return _window(row)


async def generation(source: Database | Connection) -> str:
    """Moves on every change to the windows, so a hub sharing the database knows when to read them again."""
    sql, params = "SELECT value FROM meta WHERE key = ?", (GENERATION,)
    if isinstance(source, Database):
        row = await source.fetch_one(sql, params)
    else:
        row = await (await source.execute(sql, params)).fetchone()
    return "" if row is None else str(row[0])


async def _bump(db: Connection) -> None:
    await db.execute(
        "INSERT INTO meta (key, value) VALUES (?, '1') "
        "ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(meta.value AS INTEGER) + 1 AS TEXT)",
        (GENERATION,),
    )


async def stamp_covered(tx: Transaction, match: Match) -> None:
    """Give the NVRs and cameras a window covers this transaction's seq: their rows show "maintenance" (or no longer
    do), so live pages re-render them, a replay from an older cursor does too, and the incidents engine looks at
    their sites again."""
    clauses, params = ["removed = 0"], []
    for column, value in (("hostname", match.nvr), ("site", match.site), ("region", match.region)):
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    where = " AND ".join(clauses)
    seq, db = await tx.seq(), tx.connection
    if match.camera is None:
        cursor = await db.execute(f"UPDATE nvrs SET updated_seq = ? WHERE {where} RETURNING id", (seq, *params))
        tx.changes.nvr_ids.update(int(r[0]) for r in await cursor.fetchall())
    camera_clause, camera_params = ("", []) if match.camera is None else (" AND id = ?", [match.camera])
    cursor = await db.execute(
        f"UPDATE cameras SET updated_seq = ? WHERE removed = 0{camera_clause} AND nvr_id IN "
        f"(SELECT id FROM nvrs WHERE {where}) RETURNING id",
        (seq, *camera_params, *params),
    )
    tx.changes.camera_ids.update(int(r[0]) for r in await cursor.fetchall())
