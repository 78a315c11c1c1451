"""Stage 3, the fleet inventory's columns and reads: the migration adding them, the declared fleet for export, and the
rows an edit reads inside its write transaction (nvrmon/store/inventory.py writes)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from nvrmon.inventory import CameraDecl, Declaration, InventoryError, NvrDecl, SiteDecl, tag_tuple
from nvrmon.store.dialect import Connection


class Reader(Protocol):
    """The Database's reads (nvrmon/store/database.py, which imports this module for its migration)."""

    async def fetch_all(self, sql: str, params: Iterable[Any] = ()) -> list[Any]: ...


COLUMNS = (
    ("nvrs", "declared", "INTEGER NOT NULL DEFAULT 0"),
    ("nvrs", "tags", "TEXT NOT NULL DEFAULT ''"),
    ("nvrs", "expected_cameras", "INTEGER"),
    ("cameras", "declared", "INTEGER NOT NULL DEFAULT 0"),
    ("cameras", "tags", "TEXT NOT NULL DEFAULT ''"),
    ("cameras", "missing", "INTEGER NOT NULL DEFAULT 0"),
)


async def migrate(db: Connection) -> None:
    """Add the inventory's columns to a file made before them (schema version 3)."""
    for table, column, kind in COLUMNS:
        cursor = await db.execute(f"SELECT count(*) FROM pragma_table_info('{table}') WHERE name = ?", (column,))
        row = await cursor.fetchone()
        if row is not None and not row[0]:
            await db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    # The fleet's camera counts group by NVR over this index alone (missing ones count apart).
    await db.execute("CREATE INDEX IF NOT EXISTS cameras_nvr_missing ON cameras (nvr_id, removed, status, missing)")


# -- the declared fleet, for export -----------------------------------------------------------------------------------


async def declaration(reader: Reader) -> Declaration:
    """The fleet as it is now, declared and discovered, in the file's shape (nvrmon/fleetfile.py)."""
    sites = [
        SiteDecl(str(r[0]), str(r[1])) for r in await reader.fetch_all("SELECT name, region FROM sites ORDER BY name")
    ]
    cameras: dict[int, list[CameraDecl]] = {}
    for nvr_id, ext_id, name, tags in await reader.fetch_all(
        "SELECT nvr_id, ext_id, name, tags FROM cameras WHERE removed = 0 ORDER BY nvr_id, ext_id"
    ):
        cameras.setdefault(int(nvr_id), []).append(CameraDecl(str(ext_id), str(name), tag_tuple(tags) or None))
    nvrs = [
        NvrDecl(
            str(host),
            str(name),
            str(region),
            str(site),
            tag_tuple(tags) or None,
            expected,
            tuple(cameras.get(int(nvr_id), ())),
        )  # fmt: skip
        for nvr_id, host, name, region, site, tags, expected in await reader.fetch_all(
            "SELECT id, hostname, device_name, region, site, tags, expected_cameras FROM nvrs WHERE removed = 0 "
            "ORDER BY hostname"
        )
    ]
    return Declaration(tuple(sites), tuple(nvrs))


@dataclass(slots=True)
class NvrRow:
    id: int
    hostname: str
    fields: dict[str, Any]  # device_name, region, site, tags (text), expected_cameras
    declared: bool
    removed: bool


# -- reads inside the transaction -----------------------------------------------------------------------------------

_NVR_SQL = "SELECT id, hostname, device_name, region, site, tags, expected_cameras, declared, removed FROM nvrs"


def nvr_row(row: Iterable[Any]) -> NvrRow:
    nvr_id, host, name, region, site, tags, expected, declared, removed = row
    fields = {"device_name": name, "region": region, "site": site, "tags": tags, "expected_cameras": expected}
    return NvrRow(int(nvr_id), str(host), fields, bool(declared), bool(removed))


async def nvrs(db: Connection) -> list[NvrRow]:
    cursor = await db.execute(_NVR_SQL)
    return [nvr_row(row) for row in await cursor.fetchall()]


async def nvr_by_id(db: Connection, nvr_id: int) -> NvrRow:
    cursor = await db.execute(f"{_NVR_SQL} WHERE id = ? AND removed = 0", (nvr_id,))
    row = await cursor.fetchone()
    if row is None:
        raise InventoryError(404, "not_found", f"no NVR with id {nvr_id}")
    return nvr_row(row)


_CAMERA_SQL = (
    "SELECT c.id, c.nvr_id, c.ext_id, c.name, c.tags, c.declared, c.removed, n.hostname FROM cameras c "
    "JOIN nvrs n ON n.id = c.nvr_id"
)


def camera_row(row: Iterable[Any]) -> tuple[Any, ...]:
    camera_id, nvr_id, ext_id, name, tags, declared, removed, hostname = row
    current = {"name": name, "tags": tags, "declared": declared}
    return (int(camera_id), int(nvr_id), str(ext_id), current, bool(removed), str(hostname))


async def cameras_of(db: Connection, nvr_ids: list[int]) -> dict[tuple[int, str], tuple[Any, ...]]:
    cursor = await db.execute(f"{_CAMERA_SQL} WHERE c.nvr_id IN (SELECT value FROM json_each(?))", (str(nvr_ids),))
    return {(row[1], row[2]): row for row in map(camera_row, await cursor.fetchall())}


async def camera_by_id(db: Connection, camera_id: int) -> tuple[Any, ...]:
    cursor = await db.execute(f"{_CAMERA_SQL} WHERE c.id = ? AND c.removed = 0 AND n.removed = 0", (camera_id,))
    row = await cursor.fetchone()
    if row is None:
        raise InventoryError(404, "not_found", f"no camera with id {camera_id}")
    return camera_row(row)
