"""Stage 3, the fleet store: the fleet's truth in SQLite, read for pages and replay; written through transactions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

from nvrmon.filters import ListQuery
from nvrmon.models import Camera, Event, Nvr, Summary
from nvrmon.store import rows
from nvrmon.store.database import POOL_SIZE, Database
from nvrmon.store.transaction import CameraRef, Changes, NewEvent, Transaction

# Callers import the write vocabulary from here too (the hub, publisher and views name it as nvrmon.store.fleet's).
__all__ = ["CameraRef", "Changes", "NewEvent", "Store", "Transaction"]


class Store:
    """The fleet over a shared Database: reads on its reader connection, writes in its one writer transaction."""

    def __init__(self, database: Database, *, owned: bool = False) -> None:
        self.database = database
        self.epoch = database.epoch
        self.path = database.path
        self.node = ""  # the hub's node id (ingest/cluster.py): NVRs it registers are stamped with it
        self._owned = owned  # opened by Store.open: closing the store closes the database

    @classmethod
    async def open(cls, path: Path | str, *, pool_size: int = POOL_SIZE) -> Store:
        """A store with a Database of its own (tests, tools); the hub shares one Database with its credentials."""
        return cls(await Database.open(path, pool_size=pool_size), owned=True)

    async def close(self) -> None:
        if self._owned:
            await self.database.close()

    @asynccontextmanager
    async def transaction(self, now: float) -> AsyncIterator[Transaction]:
        """BEGIN IMMEDIATE … COMMIT; on any error the whole batch rolls back and nothing is published."""
        async with self.database.transaction() as db:
            yield Transaction(db, now, self.node)

    # -- meta -------------------------------------------------------------------------------------------------------

    async def meta(self, key: str) -> str | None:
        return await self.database.meta(key)

    async def set_meta(self, key: str, value: str) -> None:
        await self.database.set_meta(key, value)

    async def wait_commit(self, timeout: float) -> None:
        """Return when another process may have committed (a PostgreSQL notification), or after `timeout` seconds."""
        await self.database.wait_commit(timeout)

    async def current_seq(self) -> int:
        return int(await self.meta("seq") or 0)

    async def horizon(self) -> int:
        """Cursors older than this may have missed a pruned tombstone, so they get a full refresh."""
        return int(await self.meta("horizon") or 0)

    # -- reads ------------------------------------------------------------------------------------------------------

    async def summary(self) -> Summary:
        """The fleet figures, from the same rows the dashboard counts (models.Summary.of is their one producer)."""
        # seq first: the fleet read after it is at least as new, so a reader that resumes from this seq misses nothing.
        seq = await self.current_seq()
        return Summary.of(await self.fleet(), seq)

    async def nvrs(self, ids: Iterable[int] | None = None, *, include_removed: bool = False) -> list[Nvr]:
        """Every NVR, or those of `ids`; removed ones (tombstones) only when asked, for live deletes."""
        if ids is None:
            sql = f"SELECT {rows.NVR_BASE}, {rows.FLEET_COUNTS}, n.stats {rows.FLEET_FROM} ORDER BY n.hostname"
            return [rows.nvr(row) for row in await self.database.fetch_all(sql)]
        clauses, params = rows.ids_clause("n.id", ids)
        if not include_removed:
            clauses.append("n.removed = 0")
        sql = f"SELECT {rows.NVR_COLUMNS} FROM nvrs n {rows.where(clauses)} ORDER BY n.hostname"
        return [rows.nvr(row) for row in await self.database.fetch_all(sql, params)]

    async def fleet(self) -> list[Nvr]:
        """Every NVR with its camera counts (without agent stats): the input of lists, counts, charts and Summary."""
        sql = f"SELECT {rows.NVR_BASE}, {rows.FLEET_COUNTS}, '{{}}' {rows.FLEET_FROM}"
        return [rows.nvr(row) for row in await self.database.fetch_all(sql)]

    async def camera_page(
        self, query: ListQuery, limit: int | None = None, offset: int | None = None
    ) -> tuple[list[Camera], int]:
        """One page of the camera list for a query (or `limit` rows from `offset`), and how many match in all."""
        where, params = rows.camera_filter(query)
        order = rows.CAMERA_ORDER[query.sort_column]
        if query.descending:
            order = ", ".join(f"{term} DESC" for term in order.split(", "))
        found = await self.database.fetch_all(
            f"SELECT {rows.CAMERA_COLUMNS} FROM {rows.CAMERA_ROWS_FROM} WHERE {where} "
            f"ORDER BY {order} LIMIT ? OFFSET ?",
            [*params, query.per_page if limit is None else limit, query.offset if offset is None else offset],
        )
        count = await self.database.fetch_one(f"SELECT count(*) FROM {rows.CAMERA_FROM} WHERE {where}", params)
        return [rows.camera(row) for row in found], int(count[0]) if count else 0

    async def camera_counts(self, query: ListQuery) -> tuple[dict[str, int], dict[str, int]]:
        """Cameras by shown status (ignoring the status filter) and by region (ignoring the region filter)."""
        where, params = rows.camera_filter(replace(query, status=""))
        by_status = await self.database.fetch_all(
            f"SELECT {rows.DISPLAY}, count(*) FROM {rows.CAMERA_FROM} WHERE {where} GROUP BY 1", params
        )
        where, params = rows.camera_filter(replace(query, region=""))
        by_region = await self.database.fetch_all(
            f"SELECT n.region, count(*) FROM {rows.CAMERA_FROM} WHERE {where} GROUP BY 1", params
        )
        return {str(r[0]): int(r[1]) for r in by_status}, {str(r[0]): int(r[1]) for r in by_region}

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
        clauses, params = rows.ids_clause("c.id", ids)
        if not include_removed:
            clauses.append("c.removed = 0")
        if nvr_id is not None:
            clauses.append("c.nvr_id = ?")
            params.append(nvr_id)
        if region is not None:
            clauses.append("n.region = ?")
            params.append(region)
        if status == "missing":
            clauses.append("c.missing = 1")
        elif status == "nvr_offline":
            clauses.append("n.status = 'offline' AND c.missing = 0")
        elif status == "unknown":
            clauses.append("n.status = 'unknown' AND c.missing = 0")
        elif status == "degraded":
            clauses.append(
                "n.status IN ('online', 'stale') AND c.status = 'online' AND c.degraded != '' AND c.missing = 0"
            )
        elif status == "online":
            clauses.append(
                "n.status IN ('online', 'stale') AND c.status = 'online' AND c.degraded = '' AND c.missing = 0"
            )
        elif status == "offline":
            clauses.append("n.status IN ('online', 'stale') AND c.status = 'offline' AND c.missing = 0")
        found = await self.database.fetch_all(
            f"SELECT {rows.CAMERA_COLUMNS} FROM {rows.CAMERA_ROWS_FROM} {rows.where(clauses)} "
            "ORDER BY n.hostname, c.name, c.id",
            params,
        )
        return [rows.camera(row) for row in found]

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
        offset: int = 0,
    ) -> list[Event]:
        clauses, params = rows.ids_clause("e.id", ids)
        for column, value in (("e.nvr_id", nvr_id), ("e.camera_id", camera_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if after_seq is not None:
            clauses.append("e.seq > ?")
            params.append(after_seq)
        found = await self.database.fetch_all(
            f"SELECT {rows.EVENT_COLUMNS} FROM {rows.EVENT_FROM} {rows.where(clauses)} "
            "ORDER BY e.id DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return [rows.event(row) for row in found]

    async def changed_since(self, seq: int, limit: int) -> tuple[list[int], list[int]] | None:
        """Ids of NVRs and cameras stamped after `seq`; None when more than `limit` rows changed (refresh instead)."""
        found = await self.database.fetch_all(
            "SELECT 'n', id FROM nvrs WHERE updated_seq > ? UNION ALL "
            "SELECT 'c', id FROM cameras WHERE updated_seq > ? LIMIT ?",
            (seq, seq, limit + 1),
        )
        if len(found) > limit:
            return None
        return [int(r[1]) for r in found if r[0] == "n"], [int(r[1]) for r in found if r[0] == "c"]

    async def database_bytes(self) -> int:
        sql = "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
        if self.database.backend == "postgresql":
            sql = "SELECT pg_database_size(current_database())"
        row = await self.database.fetch_one(sql)
        return int(row[0]) if row else 0
