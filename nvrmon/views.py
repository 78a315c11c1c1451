"""Stage 4, views: what each page shows, as first paint, as live changes, as replay from a cursor, or as a refresh."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

from nvrmon.broadcaster import encode
from nvrmon.models import Camera, Cursor, Event, Nvr, Summary
from nvrmon.renderer import Renderer
from nvrmon.settings import Settings
from nvrmon.store import Changes, Store

ViewKind = Literal["dashboard", "nvrs", "cameras", "nvr", "camera"]
KINDS: tuple[ViewKind, ...] = ("dashboard", "nvrs", "cameras", "nvr", "camera")


class ViewError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class View:
    """A page's scope. Subscribers with equal keys share every rendered byte."""

    kind: ViewKind
    id: int = 0

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.id}" if self.kind in ("nvr", "camera") else self.kind

    @classmethod
    def parse(cls, kind: str | None, ident: str | None = None) -> View:
        if kind not in KINDS:
            raise ViewError(f"view must be one of {', '.join(KINDS)}")
        if kind in ("nvr", "camera"):
            if not ident or not ident.isdigit() or len(ident) > 12:
                raise ViewError(f"view '{kind}' needs a numeric id")
            return cls(kind, int(ident))
        return cls(kind)

    @classmethod
    def from_key(cls, key: str) -> View:
        kind, _, ident = key.partition(":")
        return cls.parse(kind, ident or None)

    def events_url(self, cursor: Cursor) -> str:
        return "/events?" + self._query(cursor)

    def poll_url(self, cursor: Cursor) -> str:
        return "/poll?" + self._query(cursor)

    def _query(self, cursor: Cursor) -> str:
        query: dict[str, str | int] = {"view": self.kind}
        if self.id:
            query["id"] = self.id
        query["since"] = str(cursor)
        return urlencode(query)


@dataclass(frozen=True, slots=True)
class CatchUp:
    head: int  # the sequence the browser is at once it has applied `html`
    html: str  # out-of-band fragments (possibly empty when nothing it shows changed)
    changed: bool  # False: the cursor was already at the head
    refresh: bool = False  # True: a full refresh of the page's regions, not a replay


@dataclass
class _Loaded:
    """Rows and fragments for one batch, loaded and rendered at most once however many views need them."""

    nvrs: list[Nvr]
    cameras: list[Camera]
    events: list[Event]
    summary: Summary | None
    html: dict[str, str]


class Views:
    def __init__(self, store: Store, renderer: Renderer, settings: Settings) -> None:
        self.store = store
        self.renderer = renderer
        self.settings = settings
        self._catch_ups: dict[tuple[str, int], asyncio.Task[CatchUp]] = {}
        self._catch_up_head = -1

    # -- first paint ------------------------------------------------------------------------------------------------

    async def page(self, view: View) -> dict[str, Any] | None:
        """Everything a page template needs. The cursor is read first, so rows are at least as new as it is."""
        cursor = Cursor(self.store.epoch, await self.store.current_seq())
        ctx: dict[str, Any] = {
            "view": view,
            "cursor": cursor,
            "events_url": view.events_url(cursor),
            "now": time.time(),
        }
        ctx["summary"] = await self.store.summary()
        if view.kind == "dashboard":
            ctx["events"] = await self.store.events(limit=self.settings.recent_events)
        elif view.kind == "nvrs":
            ctx["nvrs"] = await self.store.nvrs()
        elif view.kind == "cameras":
            ctx["cameras"] = await self.store.cameras()
        elif view.kind == "nvr":
            nvr = await self.store.nvr(view.id)
            if nvr is None:
                return None
            ctx["nvr"] = nvr
            ctx["cameras"] = await self.store.cameras(nvr_id=view.id)
            ctx["events"] = await self.store.events(limit=self.settings.recent_events, nvr_id=view.id)
        else:
            camera = await self.store.camera(view.id)
            if camera is None:
                return None
            ctx["camera"] = camera
            ctx["events"] = await self.store.events(limit=self.settings.recent_events, camera_id=view.id)
        return ctx

    async def exists(self, view: View) -> bool:
        if view.kind == "nvr":
            return await self.store.nvr(view.id) is not None
        if view.kind == "camera":
            return await self.store.camera(view.id) is not None
        return True

    # -- live changes -----------------------------------------------------------------------------------------------

    async def render_changes(
        self, changes: Changes, view_keys: Iterable[str], *, stats: bool = True
    ) -> dict[str, bytes]:
        """One SSE message per view for a committed change; views it doesn't touch get nothing."""
        cursor = str(self.cursor(changes.seq))
        html = await self.render_html(changes, view_keys, stats=stats)
        return {key: encode(fragment, id=cursor) for key, fragment in html.items()}

    async def render_stats(self, view_keys: Iterable[str]) -> dict[str, bytes]:
        """Only the statistics fragments (KPIs, stats bars) of each view, from the current state; no cursor: they
        carry no rows, so they must not move a browser's position."""
        html = await self.render_html(Changes(), view_keys, rows=False)
        return {key: encode(fragment) for key, fragment in html.items()}

    async def render_html(
        self, changes: Changes, view_keys: Iterable[str], *, rows: bool = True, stats: bool = True
    ) -> dict[str, str]:
        """The out-of-band fragments each view needs for a change, each rendered once however many views share it.

        rows/stats select the two halves, so the publisher can send row changes at once and debounce statistics.
        """
        views = [View.from_key(key) for key in view_keys]
        if not views:
            return {}
        loaded = await self._load(changes, views, stats=stats, rows_changed=rows)
        html = {view.key: self._compose(view, changes, loaded) for view in views}
        return {key: fragment for key, fragment in html.items() if fragment}

    async def _load(self, changes: Changes, views: list[View], *, stats: bool, rows_changed: bool) -> _Loaded:
        kinds = {v.kind for v in views}
        nvrs = await self.store.nvrs(changes.nvr_ids) if changes.nvr_ids and kinds & {"nvrs", "nvr", "camera"} else []
        cameras = (
            await self.store.cameras(changes.camera_ids, include_removed=True)
            if changes.camera_ids and kinds & {"cameras", "nvr", "camera"}
            else []
        )
        events = (
            await self.store.events(ids=changes.event_ids, limit=self.settings.recent_events)
            if changes.event_ids
            else []
        )
        touched = changes.nvr_ids or changes.camera_ids or not rows_changed
        needs_summary = stats and touched and kinds & {"dashboard", "nvrs", "cameras"}
        summary = await self.store.summary() if needs_summary else None
        return _Loaded(nvrs, cameras, events, summary, {})

    def _compose(self, view: View, changes: Changes, data: _Loaded) -> str:
        parts: list[str] = []
        if view.kind == "dashboard":
            if data.summary:
                parts.append(self._fragment(data, "kpis", "fragments/kpis.html", summary=data.summary))
            parts.append(self._events(data, data.events))
        elif view.kind == "nvrs":
            if data.summary:
                parts.append(self._fragment(data, "nvr_stats", "fragments/nvr_stats.html", summary=data.summary))
            parts.append(self._rows(data, "#nvr-rows", "nvr", data.nvrs))
        elif view.kind == "cameras":
            if data.summary:
                parts.append(self._fragment(data, "camera_stats", "fragments/camera_stats.html", summary=data.summary))
            parts.append(self._rows(data, "#camera-rows", "camera", data.cameras))
        elif view.kind == "nvr":
            for nvr in data.nvrs:
                if nvr.id == view.id:
                    parts.append(self._fragment(data, f"nvr_facts:{nvr.id}", "fragments/nvr_facts.html", nvr=nvr))
            parts.append(self._rows(data, "#nvr-cameras", "camera", [c for c in data.cameras if c.nvr_id == view.id]))
            parts.append(self._events(data, [e for e in data.events if e.nvr_id == view.id]))
        else:
            for camera in data.cameras:
                if camera.id == view.id:
                    parts.append(
                        self._fragment(data, f"camera_facts:{camera.id}", "fragments/camera_facts.html", camera=camera)
                    )
            parts.append(self._events(data, [e for e in data.events if e.camera_id == view.id]))
        body = "".join(parts)
        if not body:
            return ""
        return body + self._fragment(data, "last_update", "fragments/last_update.html", ts=time.time(), oob=True)

    def _fragment(self, data: _Loaded, key: str, template: str, oob: bool = True, **context: Any) -> str:
        if key not in data.html:
            data.html[key] = self.renderer.render(template, oob=oob, now=time.time(), **context)
        return data.html[key]

    def _rows(self, data: _Loaded, target: str, kind: str, rows: list[Nvr] | list[Camera]) -> str:
        """Changed rows as one upsert (replace by id, or insert in order); removed cameras as deletes."""
        live = "".join(
            self._fragment(data, r.dom_id, f"fragments/{kind}_row.html", oob=False, **{kind: r})
            for r in rows
            if not getattr(r, "removed", False)
        )
        gone = "".join(f'<tr id="{r.dom_id}" hx-swap-oob="delete"></tr>' for r in rows if getattr(r, "removed", False))
        # hx-upsert: an existing row is replaced in place; a new one is inserted in data-key order.
        upsert = (
            f'<template hx type="upsert" hx-target="{target}" key="data-key" sort>{live}</template>' if live else ""
        )
        return upsert + gone

    def _events(self, data: _Loaded, events: list[Event]) -> str:
        if not events:
            return ""
        items = "".join(self._fragment(data, e.dom_id, "fragments/event_item.html", oob=False, event=e) for e in events)
        return f'<template hx type="upsert" hx-target="#event-list" key="data-key" sort="desc">{items}</template>'

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
        ctx = await self.page(view)
        return "" if ctx is None else self.renderer.render("refresh.html", oob=True, **ctx)

    def cursor(self, seq: int) -> Cursor:
        return Cursor(self.store.epoch, seq)
