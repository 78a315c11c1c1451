"""Stage 3, fleet rows: the SQL column lists and filters of the fleet tables, and row -> model mappers."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from nvrmon.devices import CameraHealth, NvrHealth, StreamDetail
from nvrmon.filters import ListQuery
from nvrmon.models import Camera, Event, Nvr

# An NVR declared in the inventory that never connected shows "missing" (models.NvrStatus); the table keeps 'offline'.
NVR_STATUS = "CASE WHEN n.declared = 1 AND n.last_seen = 0 AND n.status = 'offline' THEN 'missing' ELSE n.status END"
NVR_BASE = f"""
    n.id, n.hostname, n.device_name, n.region, n.site, n.model, n.firmware, n.ip_address, {NVR_STATUS},
    n.status_reason, n.last_seen, n.status_changed, n.updated_seq, n.unstable, n.removed, n.degraded, n.declared,
    n.tags, n.expected_cameras
"""
# A few NVRs: correlated counts, each an index-only lookup on cameras_nvr_status.
NVR_COLUMNS = f"""{NVR_BASE},
    (SELECT count(*) FROM cameras c WHERE c.nvr_id = n.id AND c.removed = 0 AND c.status = 'online' AND c.missing = 0),
    (SELECT count(*) FROM cameras c WHERE c.nvr_id = n.id AND c.removed = 0),
    (SELECT count(*) FROM cameras c WHERE c.nvr_id = n.id AND c.removed = 0 AND c.status = 'online' AND c.missing = 0
        AND c.degraded != ''),
    (SELECT count(*) FROM cameras c WHERE c.nvr_id = n.id AND c.removed = 0 AND c.missing = 1),
    n.stats,
    (SELECT h.facts FROM nvr_health h WHERE h.nvr_id = n.id)
"""
# The whole fleet: one grouped pass over the covering index instead of two subqueries per NVR.
FLEET_FROM = """
    FROM nvrs n LEFT JOIN (
        SELECT nvr_id, sum(CASE WHEN status = 'online' AND missing = 0 THEN 1 ELSE 0 END) AS online,
            count(*) AS total, sum(CASE WHEN status = 'online' AND missing = 0 AND degraded != '' THEN 1 ELSE 0 END)
            AS degraded, sum(missing) AS missing
        FROM cameras WHERE removed = 0 GROUP BY nvr_id
    ) k ON k.nvr_id = n.id
    WHERE n.removed = 0
"""
FLEET_COUNTS = "coalesce(k.online, 0), coalesce(k.total, 0), coalesce(k.degraded, 0), coalesce(k.missing, 0)"
# How a camera shows (models.Camera.display), in SQL, for filtering, counting and sorting.
DISPLAY = (
    "CASE WHEN c.missing = 1 THEN 'missing' WHEN n.status = 'offline' THEN 'nvr_offline' "
    "WHEN n.status = 'unknown' THEN 'unknown' WHEN c.status = 'online' AND c.degraded != '' THEN 'degraded' "
    "ELSE c.status END"
)
CAMERA_ORDER = {
    "nvr": "n.hostname, c.name, c.id",
    "name": "c.name, n.hostname, c.id",
    "status": f"CASE {DISPLAY} WHEN 'offline' THEN 0 WHEN 'missing' THEN 1 WHEN 'nvr_offline' THEN 2 "
    "WHEN 'degraded' THEN 3 WHEN 'unknown' THEN 4 ELSE 5 END, "
    "n.hostname, c.name, c.id",
    "region": "n.region, n.site, n.hostname, c.name, c.id",
    "since": "c.status_changed, c.id",
}
CAMERA_COLUMNS = f"""
    c.id, c.nvr_id, n.hostname, {NVR_STATUS}, n.region, n.site, c.ext_id, c.name, c.ip_address, c.status,
    c.status_changed, c.removed, c.updated_seq, c.status_reason, c.detail, c.degraded, h.facts, c.missing, c.declared,
    c.tags
"""
CAMERA_FROM = "cameras c JOIN nvrs n ON n.id = c.nvr_id"
# Rows (not counts) also carry the camera's health facts.
CAMERA_ROWS_FROM = f"{CAMERA_FROM} LEFT JOIN camera_health h ON h.camera_id = c.id"
EVENT_COLUMNS = """
    e.id, e.seq, e.ts, e.kind, e.severity, e.nvr_id, coalesce(n.hostname, ''), e.camera_id, coalesce(c.name, ''),
    e.message
"""
EVENT_FROM = "events e LEFT JOIN nvrs n ON n.id = e.nvr_id LEFT JOIN cameras c ON c.id = e.camera_id"


def camera_filter(query: ListQuery) -> tuple[str, list[Any]]:
    """The WHERE terms (without WHERE) and parameters of a camera list query."""
    clauses: list[str] = ["c.removed = 0"]
    params: list[Any] = []
    if query.status:
        clauses.append(f"{DISPLAY} = ?")
        params.append(query.status)
    if query.region:
        clauses.append("n.region = ?")
        params.append(query.region)
    if query.site:
        clauses.append("n.site = ?")
        params.append(query.site)
    if query.nvr:
        clauses.append("c.nvr_id = ?")
        params.append(query.nvr)
    if query.q:
        like = "%" + query.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        fields = ("c.name", "c.ext_id", "c.ip_address", "n.hostname", "n.site")
        clauses.append("(" + " OR ".join(f"{f} LIKE ? ESCAPE '\\'" for f in fields) + ")")
        params.extend([like] * len(fields))
    return " AND ".join(clauses), params


def ids_clause(column: str, ids: Iterable[int] | None) -> tuple[list[str], list[Any]]:
    """`column IN ids` as a list of at most one WHERE term; no term at all when ids is None (every row)."""
    if ids is None:
        return [], []
    # json_each takes any number of ids as one parameter (no SQLITE_MAX_VARIABLE_NUMBER limit).
    return [f"{column} IN (SELECT value FROM json_each(?))"], [json.dumps(sorted(set(ids)))]


def where(clauses: list[str]) -> str:
    return f"WHERE {' AND '.join(clauses)}" if clauses else ""


def nvr(row: sqlite3.Row | tuple[Any, ...]) -> Nvr:
    # The fleet query sends '{}' for every row: skipping json.loads for it keeps 2,000 rows cheap.
    stats = json.loads(row[23]) if row[23] and row[23] != "{}" else {}
    health = NvrHealth.of(json.loads(row[24])) if len(row) > 24 and row[24] else None
    return Nvr(
        id=row[0], hostname=row[1], device_name=row[2], region=row[3], site=row[4], model=row[5], firmware=row[6],
        ip_address=row[7], status=row[8], status_reason=row[9], last_seen=row[10], status_changed=row[11],
        updated_seq=row[12], unstable=bool(row[13]), removed=bool(row[14]), degraded=row[15], declared=bool(row[16]),
        tags=tuple(row[17].split()) if row[17] else (), cameras_expected=row[18], cameras_online=int(row[19]),
        cameras_total=int(row[20]), cameras_degraded=int(row[21]), cameras_missing=int(row[22]), stats=stats,
        health=health,
    )  # fmt: skip


def camera(row: sqlite3.Row | tuple[Any, ...]) -> Camera:
    return Camera(
        id=row[0], nvr_id=row[1], nvr_hostname=row[2], nvr_status=row[3], region=row[4], site=row[5], ext_id=row[6],
        name=row[7], ip_address=row[8], status=row[9], status_changed=row[10], removed=bool(row[11]),
        updated_seq=row[12], status_reason=row[13],
        detail=StreamDetail.of(json.loads(row[14])) if row[14] and row[14] != "{}" else StreamDetail(),
        degraded=row[15], health=CameraHealth.of(json.loads(row[16])) if row[16] else None,
        missing=bool(row[17]), declared=bool(row[18]), tags=tuple((row[19] or '').split()),
    )  # fmt: skip


def event(row: sqlite3.Row | tuple[Any, ...]) -> Event:
    return Event(
        id=row[0], seq=row[1], ts=row[2], kind=row[3], severity=row[4], nvr_id=row[5], nvr_hostname=row[6],
        camera_id=row[7], camera_name=row[8], message=row[9],
    )  # fmt: skip
