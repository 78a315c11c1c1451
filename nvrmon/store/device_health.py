"""Stage 3, device health: the latest health facts per NVR and camera (health.sql), and the degraded words on rows."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from nvrmon.devices import CameraHealth, NvrHealth, StreamDetail
from nvrmon.models import Status
from nvrmon.store.dialect import Connection


@dataclass(frozen=True, slots=True)
class CameraState:
    """What the hub derives a camera's degraded words from, and what it compares them with."""

    id: int
    ext_id: str
    name: str
    status: Status
    detail: StreamDetail
    degraded: str


@dataclass(frozen=True, slots=True)
class HealthState:
    nvr_degraded: str
    cameras: tuple[CameraState, ...]


def _facts(facts: NvrHealth | CameraHealth, received: float) -> str:
    data = asdict(facts)
    data["received"] = received
    return json.dumps(data, separators=(",", ":"))


async def state(db: Connection, nvr_id: int) -> HealthState:
    cursor = await db.execute("SELECT degraded FROM nvrs WHERE id = ?", (nvr_id,))
    row = await cursor.fetchone()
    cursor = await db.execute(
        "SELECT id, ext_id, name, status, detail, degraded FROM cameras WHERE nvr_id = ? AND removed = 0", (nvr_id,)
    )
    cameras = tuple(
        CameraState(int(r[0]), r[1], r[2], r[3], StreamDetail.of(json.loads(r[4] or "{}")), r[5])
        for r in await cursor.fetchall()
    )
    return HealthState(str(row[0]) if row else "", cameras)


async def replace(
    db: Connection, nvr_id: int, nvr: NvrHealth, cameras: Sequence[tuple[int, CameraHealth]], now: float
) -> None:
    """The NVR's health facts become exactly these (latest wins): cameras left out have none any more."""
    await db.execute(
        "INSERT INTO nvr_health (nvr_id, facts, received) VALUES (?, ?, ?) "
        "ON CONFLICT (nvr_id) DO UPDATE SET facts = excluded.facts, received = excluded.received",
        (nvr_id, _facts(nvr, now), now),
    )
    await db.execute("DELETE FROM camera_health WHERE nvr_id = ?", (nvr_id,))
    await db.executemany(
        "INSERT INTO camera_health (camera_id, nvr_id, facts, received) VALUES (?, ?, ?, ?)",
        [(camera_id, nvr_id, _facts(facts, now), now) for camera_id, facts in cameras],
    )


async def set_degraded(
    db: Connection, seq: int, nvr: tuple[int, str] | None, cameras: Sequence[tuple[int, str]]
) -> None:
    """New degraded words (\"\" clears) on rows, stamped with `seq`: pages show them."""
    if nvr is not None:
        await db.execute("UPDATE nvrs SET degraded = ?, updated_seq = ? WHERE id = ?", (nvr[1], seq, nvr[0]))
    await db.executemany(
        "UPDATE cameras SET degraded = ?, updated_seq = ? WHERE id = ?", [(text, seq, cid) for cid, text in cameras]
    )
