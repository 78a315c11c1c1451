"""Stage 4, list windows: a list view's live rows as keyed upserts and deletes, or its page window re-rendered."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence

from nvrmon.filters import nvr_window, plan_window
from nvrmon.live.fragments import Fragments
from nvrmon.live.loader import Batch
from nvrmon.live.viewkey import View
from nvrmon.models import Camera, Nvr


class Windows:
    """The page window (row ids in order) each live list view was last sent, so a change to it can go out as keyed
    updates instead of a refresh. A replay for one browser (`live=False`) doesn't know that browser's window."""

    def __init__(self, fragments: Fragments) -> None:
        self.fragments = fragments
        self._sent: dict[str, tuple[int, ...]] = {}

    def keep_only(self, keys: Iterable[str]) -> None:
        """Windows of views nobody watches any more are forgotten: a view that comes back starts from a refresh."""
        for key in self._sent.keys() - set(keys):
            del self._sent[key]

    async def rows(self, view: View, data: Batch, *, live: bool) -> str:
        """A list page's rows (nvrs, cameras) after a change; "" when the change has none of its kind."""
        changes, f = data.changes, self.fragments
        if view.kind == "nvrs" and changes.nvr_ids:
            same = await self._same(view, changes.nvr_ids, data.nvrs) if live else None
            if same is not None:
                return f.items(data, "nvr", "row", "nvr-rows", same)
            rows, total = nvr_window(await data.fleet(), view.list_query)
            return self._window(view, data, rows, total, changes.nvr_ids, live=live)
        if view.kind == "cameras" and changes.camera_ids:
            same = await self._same(view, changes.camera_ids, data.cameras) if live else None
            if same is not None:
                tiles = view.list_query.layout == "grid"
                target = "camera-tiles" if tiles else "camera-rows"
                return f.items(data, "camera", "tile" if tiles else "row", target, same)
            cameras, total = await data.camera_page(view.list_query)
            return self._window(view, data, cameras, total, changes.camera_ids, live=live)
        return ""

    async def _same(
        self, view: View, changed: set[int], load: Callable[[], Awaitable[Sequence[Nvr | Camera]]]
    ) -> list[Nvr | Camera] | None:
        """The common live case, answered without reading the page again: every changed row is already in the window
        last sent to this view, none was removed, and the view neither filters nor sorts by anything a status change
        moves. The window is then the same rows in the same places, and only the changed ones need re-rendering.
        None means: load the page and plan the window properly."""
        known = self._sent.get(view.key)
        if known is None or not view.list_query.status_blind or not changed <= set(known):
            return None
        rows = [r for r in await load() if r.id in changed]
        if len(rows) != len(changed) or any(getattr(r, "removed", False) for r in rows):
            return None
        return rows

    def _window(
        self, view: View, data: Batch, rows: list[Nvr] | list[Camera], total: int, changed: set[int], *, live: bool
    ) -> str:
        """Keyed upserts and deletes when the plan is exact, else the window re-rendered."""
        query = view.list_query
        ids = tuple(r.id for r in rows)
        stable = query.stable_order and query.page == 1 and total + len(changed) <= query.per_page
        plan = plan_window(self._sent.get(view.key) if live else None, ids, changed, stable=stable)
        if live:
            self._sent[view.key] = ids
        kind = "nvr" if view.kind == "nvrs" else "camera"
        layout = "tile" if kind == "camera" and query.layout == "grid" else "row"
        target = {"nvr": "nvr-rows", "camera": "camera-tiles" if layout == "tile" else "camera-rows"}[kind]
        if plan.refresh:
            template = "fragments/camera_grid.html" if layout == "tile" else f"fragments/{kind}_table_body.html"
            return self.fragments.fragment(
                data, f"window:{view.key}", template, rows=rows, body_id=target, flash=changed
            )
        by_id = {r.id: r for r in rows}
        upsert = self.fragments.items(data, kind, layout, target, [by_id[i] for i in plan.upsert])
        tag = "article" if layout == "tile" else "tr"
        return upsert + "".join(self.fragments.delete(tag, f"{kind}-{i}") for i in plan.delete)
