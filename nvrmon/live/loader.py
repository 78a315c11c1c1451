"""Stage 4, loading: the rows and rendered fragments of one batch, each read and rendered at most once."""

from __future__ import annotations

from dataclasses import dataclass, field

from nvrmon.filters import ListQuery
from nvrmon.models import Camera, Event, Nvr
from nvrmon.store.fleet import Changes, Store


@dataclass
class Batch:
    """Rows and fragments for one batch (a flush, a replay, a first paint), however many views need them.

    `html` caches rendered fragments by a key naming what they show, so views sharing a row share its bytes."""

    store: Store
    changes: Changes
    recent_events: int
    html: dict[str, str] = field(default_factory=dict)
    _fleet: list[Nvr] | None = None
    _nvrs: list[Nvr] | None = None
    _cameras: list[Camera] | None = None
    _events: list[Event] | None = None
    _camera_pages: dict[str, tuple[list[Camera], int]] = field(default_factory=dict)
    _camera_counts: dict[str, tuple[dict[str, int], dict[str, int]]] = field(default_factory=dict)
    _database_bytes: int | None = None

    async def fleet(self) -> list[Nvr]:
        if self._fleet is None:
            self._fleet = await self.store.fleet()
        return self._fleet

    async def nvrs(self) -> list[Nvr]:
        """The changed NVRs."""
        if self._nvrs is None:
            ids = self.changes.nvr_ids  # removed ones included (they become deletes)
            self._nvrs = await self.store.nvrs(ids, include_removed=True) if ids else []
        return self._nvrs

    async def cameras(self) -> list[Camera]:
        """The changed cameras, removed ones included (they become deletes)."""
        if self._cameras is None:
            ids = self.changes.camera_ids
            self._cameras = await self.store.cameras(ids, include_removed=True) if ids else []
        return self._cameras

    async def events(self) -> list[Event]:
        if self._events is None:
            ids = self.changes.event_ids
            self._events = await self.store.events(ids=ids, limit=self.recent_events) if ids else []
        return self._events

    async def camera_page(self, query: ListQuery) -> tuple[list[Camera], int]:
        key = query.encode()
        if key not in self._camera_pages:
            self._camera_pages[key] = await self.store.camera_page(query)
        return self._camera_pages[key]

    async def camera_counts(self, query: ListQuery) -> tuple[dict[str, int], dict[str, int]]:
        key = query.encode_with(status="", region="", sort="", page=1, layout="table")
        if key not in self._camera_counts:
            self._camera_counts[key] = await self.store.camera_counts(query)
        return self._camera_counts[key]

    async def database_bytes(self) -> int:
        if self._database_bytes is None:
            self._database_bytes = await self.store.database_bytes()
        return self._database_bytes
