"""Stage 4, views: what each page shows, as first paint, as live changes, as replay from a cursor, or as a refresh."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import parse_qsl, urlencode

from markupsafe import Markup

from nvrmon.filters import (
    ListKind,
    ListQuery,
    camera_facets,
    camera_facets_from_fleet,
    nvr_facets,
    nvr_window,
    plan_window,
)
from nvrmon.live import charts
from nvrmon.live.broadcaster import encode
from nvrmon.live.renderer import Renderer
from nvrmon.models import Camera, Cursor, Event, Nvr, Summary
from nvrmon.settings import Settings
from nvrmon.store.fleet import Changes, Store

ViewKind = Literal["dashboard", "nvrs", "cameras", "nvr", "camera"]
KINDS: tuple[ViewKind, ...] = ("dashboard", "nvrs", "cameras", "nvr", "camera")
LIST_KINDS: tuple[ListKind, ...] = ("nvrs", "cameras")
# Statistics fragments by element id. Charts are listed apart so the publish path can throttle them separately.
CHART_IDS = frozenset({"nvr-status-chart", "camera-status-chart", "region-chart"})
STAT_IDS = frozenset(
    {"kpis", "region-health", "system-health", "nvr-stats", "nvr-facets", "nvr-pager", "camera-stats"}
    | {"camera-facets", "camera-pager"}
)
DETAIL_EVENTS = 20  # events in a detail modal or page


class ViewError(ValueError):
    pass


class HubInfo(Protocol):
    """What system health shows about the hub process (nvrmon.ingest.hub.Hub provides it)."""

    @property
    def started(self) -> float: ...
    @property
    def agents_connected(self) -> int: ...
    @property
    def last_event(self) -> float: ...


@dataclass(frozen=True, slots=True)
class View:
    """A page's scope. Subscribers with equal keys share every rendered byte.

    List views (nvrs, cameras) carry their normalised filters, sort and page, and the device whose detail modal is
    open (`detail`), so each distinct URL is one view and a stream only gets what its page shows.
    """

    kind: ViewKind
    id: int = 0
    query: ListQuery | None = None
    detail: int = 0

    def __post_init__(self) -> None:
        if self.kind in LIST_KINDS and self.query is None:
            object.__setattr__(self, "query", ListQuery(self.kind))

    @property
    def list_query(self) -> ListQuery:
        assert self.query is not None, self.kind
        return self.query

    @property
    def scope(self) -> str:
        """The stream URL's `id`: a device id for detail views; for lists, the canonical filter query string."""
        if self.kind in ("nvr", "camera"):
            return str(self.id)
        if self.query is None:
            return ""
        params = self.query.params()
        if self.detail:
            params["detail"] = str(self.detail)
        return urlencode(params)

    @property
    def key(self) -> str:
        if self.kind in ("nvr", "camera"):
            return f"{self.kind}:{self.id}"
        return f"{self.kind}?{self.scope}" if self.scope else self.kind

    @classmethod
    def parse(cls, kind: str | None, ident: str | None = None) -> View:
        if kind not in KINDS:
            raise ViewError(f"view must be one of {', '.join(KINDS)}")
        if kind in ("nvr", "camera"):
            if not ident or not ident.isdigit() or len(ident) > 12:
                raise ViewError(f"view '{kind}' needs a numeric id")
            return cls(kind, int(ident))
        if kind == "nvrs" or kind == "cameras":
            params = dict(parse_qsl(ident or "")) if ident and len(ident) <= 1024 else {}
            return cls.for_list(kind, params, detail=params.get("detail", ""))
        return cls(kind)

    @classmethod
    def for_list(cls, kind: ListKind, params: Mapping[str, str], detail: str = "") -> View:
        query = ListQuery.parse(kind, params)
        return cls(kind, query=query, detail=int(detail) if detail.isdigit() and len(detail) < 10 else 0)

    @classmethod
    def from_key(cls, key: str) -> View:
        kind, sep, ident = key.partition("?")
        if not sep:
            kind, _, ident = key.partition(":")
        return cls.parse(kind, ident or None)

    def events_url(self, cursor: Cursor) -> str:
        return "/events?" + self._query(cursor)

    def poll_url(self, cursor: Cursor) -> str:
        return "/poll?" + self._query(cursor)

    def _query(self, cursor: Cursor) -> str:
        query: dict[str, str | int] = {"view": self.kind}
        if self.scope:
            query["id"] = self.scope
        query["since"] = str(cursor)
        return urlencode(query)


@dataclass(frozen=True, slots=True)
class CatchUp:
    head: int  # the sequence the browser is at once it has applied `html`
    html: str  # out-of-band fragments (possibly empty when nothing it shows changed)
    changed: bool  # False: the cursor was already at the head
    refresh: bool = False  # True: a full refresh of the page's regions, not a replay


@dataclass
class _Data:
    """Rows and fragments for one batch, each loaded and rendered at most once however many views need them."""

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
            self._nvrs = await self.store.nvrs(self.changes.nvr_ids) if self.changes.nvr_ids else []
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


class Views:
    def __init__(self, store: Store, renderer: Renderer, settings: Settings) -> None:
        self.store = store
        self.renderer = renderer
        self.settings = settings
        self._catch_ups: dict[tuple[str, int], asyncio.Task[CatchUp]] = {}
        self._catch_up_head = -1
        self.hub: HubInfo | None = None  # set by the application; system health shows "not running" without it
        # The page window (row ids in order) each live list view was last sent, for keyed updates instead of refreshes.
        self._windows: dict[str, tuple[int, ...]] = {}

    def _data(self, changes: Changes | None = None) -> _Data:
        return _Data(self.store, changes or Changes(), self.settings.recent_events)

    # -- first paint ------------------------------------------------------------------------------------------------

    async def page(self, view: View, *, oob: bool = False) -> dict[str, Any] | None:
        """Everything a page template needs. The cursor is read first, so rows are at least as new as it is."""
        cursor = Cursor(self.store.epoch, await self.store.current_seq())
        data = self._data()
        now = time.time()
        ctx: dict[str, Any] = {
            "view": view,
            "cursor": cursor,
            "events_url": view.events_url(cursor),
            "now": now,
            "detail": None,
        }
        if view.kind == "dashboard":
            ctx["events"] = await self.store.events(limit=self.settings.recent_events)
        elif view.kind == "nvrs":
            query = view.list_query
            ctx["rows"], ctx["total"] = nvr_window(await data.fleet(), query)
        elif view.kind == "cameras":
            query = view.list_query
            ctx["rows"], ctx["total"] = await data.camera_page(query)
            ctx["nvr_options"] = sorted((n.hostname, n.id) for n in await data.fleet())
        elif view.kind == "nvr":
            detail = await self._nvr_detail(view.id)
            if detail is None:
                return None
            ctx.update(detail)
        else:
            detail = await self._camera_detail(view.id)
            if detail is None:
                return None
            ctx.update(detail)
        if view.kind in LIST_KINDS:
            pages = view.list_query.pages(ctx["total"])
            if view.list_query.page > pages:
                ctx["redirect"] = view.list_query.url(page=pages)
            if view.detail:
                ctx["detail"] = await (self._nvr_detail if view.kind == "nvrs" else self._camera_detail)(view.detail)
        ctx["stats"] = {k: Markup(v) for k, v in (await self.stats_html(view, data, oob=oob)).items()}
        return ctx

    async def _nvr_detail(self, nvr_id: int) -> dict[str, Any] | None:
        nvr = await self.store.nvr(nvr_id)
        if nvr is None:
            return None
        cameras = await self.store.cameras(nvr_id=nvr_id)
        events = await self.store.events(limit=DETAIL_EVENTS, nvr_id=nvr_id)
        return {"nvr": nvr, "cameras": cameras, "events": events}

    async def _camera_detail(self, camera_id: int) -> dict[str, Any] | None:
        camera = await self.store.camera(camera_id)
        if camera is None:
            return None
        return {"camera": camera, "events": await self.store.events(limit=DETAIL_EVENTS, camera_id=camera_id)}

    async def detail_html(self, kind: Literal["nvr", "camera"], ident: int) -> str | None:
        """The detail content alone: what a modal shows, and the body of the detail page."""
        found = await (self._nvr_detail if kind == "nvr" else self._camera_detail)(ident)
        if found is None:
            return None
        return self.renderer.render(f"fragments/{kind}_detail.html", oob=False, now=time.time(), **found)

    async def exists(self, view: View) -> bool:
        if view.kind == "nvr":
            return await self.store.nvr(view.id) is not None
        if view.kind == "camera":
            return await self.store.camera(view.id) is not None
        return True

    # -- statistics: KPI cards, stats bars, filter counts, pagers, charts, region roll-up, system health ---------------

    async def stats_html(
        self, view: View, data: _Data, *, oob: bool = True, parts: frozenset[str] = STAT_IDS | CHART_IDS
    ) -> dict[str, str]:
        """Every statistics fragment of a view, by element id: the ONE producer for first paint, live changes and
        refresh. Status rows go out from `rows_html` instead, so a publish path can send those at once while it
        debounces these (`STAT_IDS`) and throttles the charts (`CHART_IDS`)."""
        out: dict[str, str] = {}
        now = time.time()

        def add(fragment_id: str, template: str, **context: Any) -> None:
            if fragment_id in parts:
                key = f"stats:{view.key}:{fragment_id}:{oob}"
                if key not in data.html:
                    data.html[key] = self.renderer.render(template, oob=oob, now=now, **context)
                out[fragment_id] = data.html[key]

        if view.kind in ("nvr", "camera"):
            return out
        fleet = await data.fleet()
        summary = Summary.of(fleet)
        if view.kind == "dashboard":
            all_regions = charts.regions(fleet)
            shown, widest = charts.region_chart(all_regions)
            add("kpis", "fragments/kpis.html", summary=summary)
            nvr_donut = charts.donut(charts.nvr_counts(fleet), charts.NVR_LEGEND)
            camera_donut = charts.donut(charts.camera_counts(fleet), charts.CAMERA_LEGEND)
            add("nvr-status-chart", "fragments/status_chart.html", chart_id="nvr-status-chart", title="NVR status",
                noun="NVRs", donut=nvr_donut, link="/nvrs")  # fmt: skip
            add("camera-status-chart", "fragments/status_chart.html", chart_id="camera-status-chart",
                title="Camera status", noun="cameras", donut=camera_donut, link="/cameras")  # fmt: skip
            add("region-chart", "fragments/region_chart.html", regions=shown, widest=widest)
            add("region-health", "fragments/region_health.html", regions=all_regions)
            if "system-health" in parts:
                add("system-health", "fragments/system_health.html", hub=self.hub,
                    database_bytes=await data.database_bytes(), summary=summary)  # fmt: skip
        elif view.kind == "nvrs":
            query = view.list_query
            facets = nvr_facets(fleet, query)
            add("nvr-stats", "fragments/nvr_stats.html", summary=summary)
            add("nvr-facets", "fragments/nvr_facets.html", query=query, facets=facets)
            add("nvr-pager", "fragments/pager.html", pager_id="nvr-pager", query=query, total=facets.total,
                noun="NVRs")  # fmt: skip
        else:
            query = view.list_query
            if query.q:
                facets = camera_facets(*await data.camera_counts(query), query)
            else:
                facets = camera_facets_from_fleet(fleet, query)
            nvr_name = next((n.hostname for n in fleet if n.id == query.nvr), "") if query.nvr else ""
            add("camera-stats", "fragments/camera_stats.html", summary=summary)
            add("camera-facets", "fragments/camera_facets.html", query=query, facets=facets, nvr_name=nvr_name)
            add("camera-pager", "fragments/pager.html", pager_id="camera-pager", query=query, total=facets.total,
                noun="cameras")  # fmt: skip
        return out

    # -- live changes -----------------------------------------------------------------------------------------------

    async def render_changes(
        self, changes: Changes, view_keys: Iterable[str], *, stats: bool = True, toasts: Sequence[dict[str, Any]] = ()
    ) -> dict[str, bytes]:
        """One SSE message per view for a committed change; views it doesn't touch get nothing but the toasts.

        Toasts ride in the same message (an out-of-band inbox element app.js reads), so a burst reaches each
        browser as one message, not one for the rows and another for the notifications."""
        keys = list(view_keys)
        # Windows of views nobody watches any more are forgotten: a view that comes back starts from a refresh.
        for key in self._windows.keys() - set(keys):
            del self._windows[key]
        cursor = str(self.cursor(changes.seq))
        html = await self.render_html(changes, keys, live=True, stats=stats)
        if toasts:
            inbox = self.renderer.render("fragments/toast_inbox.html", seq=changes.seq, toasts=json.dumps(toasts))
            html = {key: html.get(key, "") + inbox for key in keys}
        return {key: encode(fragment, id=cursor) for key, fragment in html.items()}

    async def render_stats(self, view_keys: Iterable[str]) -> dict[str, bytes]:
        """Only the statistics fragments of each view (KPIs, stats bars, facets, pagers, charts, health), from the
        current state; no cursor: they carry no rows, so they must not move a browser's position."""
        html = await self.render_html(Changes(), view_keys, rows=False)
        return {key: encode(fragment) for key, fragment in html.items()}

    async def render_html(
        self, changes: Changes, view_keys: Iterable[str], *, live: bool = False, rows: bool = True, stats: bool = True
    ) -> dict[str, str]:
        """The out-of-band fragments each view needs for a change, each rendered once however many views share it.

        `live`: the change goes to every current subscriber of the view, whose page window is the one last sent
        (kept per view); otherwise (a replay for one browser) the browser's window is unknown. `rows`/`stats` select
        the two halves, so the publisher can send row changes at once and debounce the statistics.
        """
        views = [View.from_key(key) for key in view_keys]
        if not views:
            return {}
        data = self._data(changes)
        out: dict[str, str] = {}
        for view in views:
            body = await self.rows_html(view, data, live=live) if rows else ""
            if stats and (not rows or self._stats_touched(view, changes)):
                body += "".join((await self.stats_html(view, data)).values())
            if body:
                out[view.key] = body + self._fragment(
                    data, "last_update", "fragments/last_update.html", ts=time.time(), oob=True
                )
        return out

    @staticmethod
    def _stats_touched(view: View, changes: Changes) -> bool:
        if view.kind == "dashboard":
            return bool(changes)  # system health shows the last event time
        if view.kind in LIST_KINDS:
            return bool(changes.nvr_ids or changes.camera_ids)
        return False

    async def rows_html(self, view: View, data: _Data, *, live: bool = False) -> str:
        """Status rows, tiles, facts and events for a change: sent at once, never debounced."""
        changes = data.changes
        if view.kind == "dashboard":
            return self._events(data, "event-list", await data.events())
        parts: list[str] = []
        if view.kind == "nvrs" and changes.nvr_ids:
            query = view.list_query
            same = await self._same_window(view, data, changes.nvr_ids, data.nvrs) if live else None
            if same is not None:
                parts.append(self._upserts(data, "nvr", "row", "nvr-rows", same))
            else:
                rows, total = nvr_window(await data.fleet(), query)
                parts.append(self._window(view, data, rows, total, changes.nvr_ids, live=live))
        elif view.kind == "cameras" and changes.camera_ids:
            same_c = await self._same_window(view, data, changes.camera_ids, data.cameras) if live else None
            if same_c is not None:
                tiles = view.list_query.layout == "grid"
                target = "camera-tiles" if tiles else "camera-rows"
                parts.append(self._upserts(data, "camera", "tile" if tiles else "row", target, same_c))
            else:
                rows_c, total = await data.camera_page(view.list_query)
                parts.append(self._window(view, data, rows_c, total, changes.camera_ids, live=live))
        if view.kind == "nvr" or (view.kind == "nvrs" and view.detail):
            parts.append(await self._nvr_parts(view.id or view.detail, data))
        elif view.kind == "camera" or (view.kind == "cameras" and view.detail):
            parts.append(await self._camera_parts(view.id or view.detail, data))
        return "".join(parts)

    async def _same_window(
        self, view: View, data: _Data, changed: set[int], load: Callable[[], Awaitable[Sequence[Nvr | Camera]]]
    ) -> list[Nvr | Camera] | None:
        """The common live case, answered without reading the page again: every changed row is already in the window
        last sent to this view, none was removed, and the view neither filters nor sorts by anything a status change
        moves. The window is then the same rows in the same places, and only the changed ones need re-rendering.
        None means: load the page and plan the window properly."""
        known = self._windows.get(view.key)
        if known is None or not view.list_query.status_blind or not changed <= set(known):
            return None
        rows = [r for r in await load() if r.id in changed]
        if len(rows) != len(changed) or any(getattr(r, "removed", False) for r in rows):
            return None
        return rows

    def _upserts(self, data: _Data, kind: str, layout: str, target: str, rows: Sequence[Nvr | Camera]) -> str:
        items = "".join(self._item(data, kind, layout, row) for row in rows)
        return f'<template hx type="upsert" hx-target="#{target}" key="data-key" sort>{items}</template>'

    def _window(
        self, view: View, data: _Data, rows: list[Nvr] | list[Camera], total: int, changed: set[int], *, live: bool
    ) -> str:
        """A list page's rows after a change: keyed upserts and deletes when exact, else the window re-rendered."""
        query = view.list_query
        ids = tuple(r.id for r in rows)
        stable = query.stable_order and query.page == 1 and total + len(changed) <= query.per_page
        plan = plan_window(self._windows.get(view.key) if live else None, ids, changed, stable=stable)
        if live:
            self._windows[view.key] = ids
        kind = "nvr" if view.kind == "nvrs" else "camera"
        layout = "tile" if kind == "camera" and query.layout == "grid" else "row"
        target = {"nvr": "nvr-rows", "camera": "camera-tiles" if layout == "tile" else "camera-rows"}[kind]
        if plan.refresh:
            key = f"window:{view.key}"
            if key not in data.html:
                template = "fragments/camera_grid.html" if layout == "tile" else f"fragments/{kind}_table_body.html"
                data.html[key] = self.renderer.render(
                    template, oob=True, now=time.time(), rows=rows, body_id=target, flash=changed
                )
            return data.html[key]
        by_id = {r.id: r for r in rows}
        live_rows = "".join(self._item(data, kind, layout, by_id[i]) for i in plan.upsert)
        tag = "article" if layout == "tile" else "tr"
        gone = "".join(f'<{tag} id="{kind}-{i}" hx-swap-oob="delete"></{tag}>' for i in plan.delete)
        # hx-upsert: an existing row is replaced in place; a new one is inserted in data-key order.
        upsert = (
            f'<template hx type="upsert" hx-target="#{target}" key="data-key" sort>{live_rows}</template>'
            if live_rows
            else ""
        )
        return upsert + gone

    def _item(self, data: _Data, kind: str, layout: str, row: Nvr | Camera) -> str:
        template = f"fragments/{kind}_{layout}.html"
        return self._fragment(data, f"{layout}:{row.dom_id}", template, oob=False, flash=True, **{kind: row})

    async def _nvr_parts(self, nvr_id: int, data: _Data) -> str:
        parts: list[str] = []
        for nvr in await data.nvrs():
            if nvr.id == nvr_id:
                parts.append(self._fragment(data, f"nvr_facts:{nvr.id}", "fragments/nvr_facts.html", nvr=nvr))
        cameras = [c for c in await data.cameras() if c.nvr_id == nvr_id]
        live = "".join(
            self._fragment(data, f"row:{c.dom_id}", "fragments/camera_row.html", oob=False, flash=True, camera=c)
            for c in cameras
            if not c.removed
        )
        if live:
            # Targeted at this NVR's own camera table, so an upsert can never drop a camera into another list.
            parts.append(
                f'<template hx type="upsert" hx-target="#nvr-{nvr_id}-cameras" key="data-key" sort>{live}</template>'
            )
        parts.extend(f'<tr id="{c.dom_id}" hx-swap-oob="delete"></tr>' for c in cameras if c.removed)
        parts.append(self._events(data, f"nvr-{nvr_id}-events", [e for e in await data.events() if e.nvr_id == nvr_id]))
        return "".join(parts)

    async def _camera_parts(self, camera_id: int, data: _Data) -> str:
        parts: list[str] = []
        for camera in await data.cameras():
            if camera.id == camera_id:
                parts.append(
                    self._fragment(data, f"camera_facts:{camera.id}", "fragments/camera_facts.html", camera=camera)
                )
        events = [e for e in await data.events() if e.camera_id == camera_id]
        parts.append(self._events(data, f"camera-{camera_id}-events", events))
        return "".join(parts)

    def _fragment(self, data: _Data, key: str, template: str, oob: bool = True, **context: Any) -> str:
        if key not in data.html:
            data.html[key] = self.renderer.render(template, oob=oob, now=time.time(), **context)
        return data.html[key]

    def _events(self, data: _Data, list_id: str, events: list[Event]) -> str:
        if not events:
            return ""
        items = "".join(self._fragment(data, e.dom_id, "fragments/event_item.html", oob=False, event=e) for e in events)
        return f'<template hx type="upsert" hx-target="#{list_id}" key="data-key" sort="desc">{items}</template>'

    # -- replay and refresh -----------------------------------------------------------------------------------------

    async def catch_up(self, view: View, cursor: Cursor | None) -> CatchUp:
        """What a (re)connecting browser needs to converge: rows changed since its cursor, or a full refresh.

        SSE replay and long-poll both come through here, so the two transports give identical results. Browsers
        arrive in crowds with the same cursor (a page load wave, a hub restart, slow subscribers dropped together),
        so each (view, cursor) is rendered once per store head and shared, even while the first render is running.
        """
        head = await self.store.current_seq()
        if head != self._catch_up_head:
            self._catch_ups.clear()
            self._catch_up_head = head
        valid = cursor is not None and cursor.epoch == self.store.epoch and cursor.seq >= await self.store.horizon()
        key = (view.key, cursor.seq if cursor is not None and valid else -1)
        shared = self._catch_ups.get(key)
        if shared is None:
            if len(self._catch_ups) >= 256:
                self._catch_ups.clear()
            # A task of its own: a browser that leaves mid-render doesn't cancel it for the others waiting.
            shared = self._catch_ups[key] = asyncio.ensure_future(self._catch_up(view, cursor if valid else None, head))
            shared.add_done_callback(lambda task: task.exception() and self._catch_ups.pop(key, None))
        return await asyncio.shield(shared)

    async def _catch_up(self, view: View, cursor: Cursor | None, head: int) -> CatchUp:
        if cursor is not None:
            if cursor.seq >= head:
                return CatchUp(head, "", changed=False)
            changed = await self.store.changed_since(cursor.seq, self.settings.replay_max_rows)
            if changed is not None:
                events = await self.store.events(after_seq=cursor.seq, limit=self.settings.recent_events)
                changes = Changes(head, set(changed[0]), set(changed[1]), [e.id for e in events])
                html = (await self.render_html(changes, [view.key])).get(view.key, "")
                return CatchUp(head, html, changed=True)
        return CatchUp(head, await self.refresh(view), changed=True, refresh=True)

    async def refresh(self, view: View) -> str:
        """The page's regions re-rendered whole, as out-of-band swaps, for a cursor that can't be replayed."""
        ctx = await self.page(view, oob=True)
        return "" if ctx is None else self.renderer.render("refresh.html", oob=True, flash=(), **ctx)

    def cursor(self, seq: int) -> Cursor:
        return Cursor(self.store.epoch, seq)
