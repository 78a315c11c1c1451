"""Stage 4, views: what each page or embed shows, as first paint, as live changes, as replay from a cursor, or as a
refresh."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from markupsafe import Markup

from nvrmon.filters import nvr_window
from nvrmon.live.fragments import CHART_IDS, STAT_IDS, Fragments
from nvrmon.live.incident_views import IncidentViews
from nvrmon.live.loader import Batch
from nvrmon.live.renderer import Renderer
from nvrmon.live.sse import encode
from nvrmon.live.viewkey import EMBED, LIST_KINDS, View
from nvrmon.live.windows import Windows
from nvrmon.models import Cursor, HubInfo, Summary
from nvrmon.settings import Settings
from nvrmon.store import incidents as incident_rows
from nvrmon.store.fleet import Changes, Store

DETAIL_EVENTS = 20  # events in a detail modal or page


@dataclass(frozen=True, slots=True)
class CatchUp:
    head: int  # the sequence the browser is at once it has applied `html`
    html: str  # out-of-band fragments (possibly empty when nothing it shows changed)
    changed: bool  # False: the cursor was already at the head
    refresh: bool = False  # True: a full refresh of the page's regions, not a replay
    # Its SSE message by (banner, id), made once for all the streams sharing it (streams._encoded)
    encoded: dict[tuple[str, str | None], bytes] = field(default_factory=dict, compare=False, repr=False)


class Views:
    def __init__(self, store: Store, renderer: Renderer, settings: Settings) -> None:
        self.store = store
        self.renderer = renderer
        self.settings = settings
        self.fragments = Fragments(renderer)
        self._catch_ups: dict[tuple[str, int, int], asyncio.Task[CatchUp]] = {}
        self._catch_up_head = -1
        self._head_read: asyncio.Future[tuple[int, int]] | None = None
        self.windows = Windows(self.fragments)
        self.incidents = IncidentViews(store, self.fragments)
        # Whether the hub's storage refuses writes now (set by the application; the banner's state).
        self.storage_degraded: Callable[[], bool] = lambda: False
        self._banner_ok: str | None = None

    @property
    def hub(self) -> HubInfo | None:
        return self.fragments.hub

    @hub.setter
    def hub(self, hub: HubInfo | None) -> None:
        self.fragments.hub = hub  # set by the application: system health shows uptime, agents and the last event

    def batch(self, changes: Changes | None = None) -> Batch:
        return Batch(self.store, changes or Changes(), self.settings.recent_events)

    # -- first paint ------------------------------------------------------------------------------------------------

    async def page(self, view: View, *, oob: bool = False) -> dict[str, Any] | None:
        """Everything a page (or embed) template needs. The cursor is read first, so rows are at least as new."""
        cursor = Cursor(self.store.epoch, await self.store.current_seq())
        data = self.batch()
        ctx: dict[str, Any] = {"view": view, "cursor": cursor, "now": time.time(), "detail": None}
        if view.kind == "embed":
            found = await self._embed_page(view, data)
            return None if found is None else {**ctx, **found}
        ctx["events_url"] = view.events_url(cursor)
        if view.kind == "dashboard":
            ctx["events"] = await self.store.events(limit=self.settings.recent_events)
            ctx.update(await self.incidents.panel())
        elif view.kind in ("incidents", "incident"):
            found = await self.incidents.page(view)
            if found is None:
                return None
            ctx.update(found)
        elif view.kind == "nvrs":
            ctx["rows"], ctx["total"] = nvr_window(await data.fleet(), view.list_query)
        elif view.kind == "cameras":
            ctx["rows"], ctx["total"] = await data.camera_page(view.list_query)
            ctx["nvr_options"] = sorted((n.hostname, n.id) for n in await data.fleet())
        else:
            detail = await (self._nvr_detail if view.kind == "nvr" else self._camera_detail)(view.id)
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

    async def _embed_page(self, view: View, data: Batch) -> dict[str, Any] | None:
        scope = view.scope
        ctx: dict[str, Any] = {"scope": scope}
        if scope.view == "kpis":
            ctx["summary"] = Summary.of(await data.fleet())
        elif scope.view == "nvrs":
            ctx["summary"] = Summary.of(await data.fleet()) if scope.region is None else None
            ctx["nvrs"] = [n for n in await self.store.nvrs() if scope.shows(n)]
        else:
            nvr = await self.store.nvr(scope.nvr_id or 0)
            if nvr is None:
                return None
            ctx["nvr"] = nvr
            ctx["cameras"] = await self.store.cameras(nvr_id=nvr.id)
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
        if view.kind == "nvr" or (view.kind == "embed" and view.scope.view == "nvr"):
            return await self.store.nvr(view.id) is not None
        if view.kind == "camera":
            return await self.store.camera(view.id) is not None
        if view.kind == "incident":
            return await self.incidents.exists(view)
        return True

    async def stats_html(
        self, view: View, data: Batch, *, oob: bool = True, parts: frozenset[str] = STAT_IDS | CHART_IDS
    ) -> dict[str, str]:
        """KPI cards, stats bars, filter counts, pagers, charts, region roll-up, system health (see Fragments)."""
        return await self.fragments.stats(view, data, oob=oob, parts=parts)

    # -- live changes -----------------------------------------------------------------------------------------------

    async def render_changes(
        self,
        changes: Changes,
        view_keys: Iterable[str],
        *,
        stats: bool = True,
        toasts: Sequence[dict[str, Any]] = (),
        all_stats: bool = False,
    ) -> dict[str, bytes]:
        """One SSE message per view for a committed change; views it doesn't touch get nothing but the toasts.

        Toasts ride in the same message (an out-of-band inbox element transport.js reads), so a burst reaches each
        browser as one message, not one for the rows and another for the notifications. Embeds get no toasts."""
        keys = list(view_keys)
        self.windows.keep_only(keys)
        cursor = str(self.cursor(changes.seq))
        html = await self.render_html(changes, keys, live=True, stats=stats or all_stats, all_stats=all_stats)
        if toasts:
            inbox = self.renderer.render(
                "fragments/toast_inbox.html", seq=changes.seq, toasts=json.dumps(toasts, separators=(",", ":"))
            )
            for key in keys:
                if not key.startswith(EMBED):
                    html[key] = html.get(key, "") + inbox
        return {key: encode(fragment, id=cursor) for key, fragment in html.items()}

    async def render_stats(self, view_keys: Iterable[str]) -> dict[str, bytes]:
        """Only the statistics fragments of each view (KPIs, stats bars, facets, pagers, charts, health), from the
        current state; no cursor: they carry no rows, so they must not move a browser's position."""
        html = await self.render_html(Changes(), view_keys, rows=False)
        return {key: encode(fragment) for key, fragment in html.items()}

    async def render_html(
        self,
        changes: Changes,
        view_keys: Iterable[str],
        *,
        live: bool = False,
        rows: bool = True,
        stats: bool = True,
        all_stats: bool = False,
    ) -> dict[str, str]:
        """The out-of-band fragments each view needs for a change, each rendered once however many views share it.

        `live`: the change goes to every current subscriber of the view, whose page window is the one last sent
        (kept per view); otherwise (a replay for one browser) the browser's window is unknown. `rows`/`stats` select
        the two halves, so the publisher can send row changes at once and debounce the statistics.
        """
        views = [View.from_key(key) for key in view_keys]
        if not views:
            return {}
        data = self.batch(changes)
        out: dict[str, str] = {}
        for view in views:
            body = await self.rows_html(view, data, live=live) if rows else ""
            # all_stats: every view's statistics ride along (they are due), touched by this change or not.
            if stats and (not rows or all_stats or self._stats_touched(view, changes)):
                body += "".join((await self.stats_html(view, data)).values())
            if body and view.kind != "embed":  # an embed has no "last update" line
                body += self.fragments.fragment(data, "last_update", "fragments/last_update.html", ts=time.time())
            if body:
                out[view.key] = body
        return out

    @staticmethod
    def _stats_touched(view: View, changes: Changes) -> bool:
        if view.kind == "dashboard":
            return bool(changes)  # system health shows the last event time
        if view.kind in LIST_KINDS or (view.kind == "embed" and view.scope.view != "nvr"):
            return bool(changes.nvr_ids or changes.camera_ids)
        return False

    async def rows_html(self, view: View, data: Batch, *, live: bool = False) -> str:
        """Status rows, tiles, facts and events for a change: sent at once, never debounced."""
        if view.kind == "dashboard":
            events = self.fragments.events(data, "event-list", await data.events())
            return events + await self.incidents.rows(view, data)
        if view.kind in ("incidents", "incident"):
            return await self.incidents.rows(view, data)
        if view.kind == "embed":
            return await self._embed_rows(view, data)
        parts = [await self.windows.rows(view, data, live=live)]
        if view.kind == "nvr" or (view.kind == "nvrs" and view.detail):
            parts.append(await self._nvr_parts(view.id or view.detail, data, events=True))
        elif view.kind == "camera" or (view.kind == "cameras" and view.detail):
            parts.append(await self._camera_parts(view.id or view.detail, data))
        return "".join(parts)

    async def _embed_rows(self, view: View, data: Batch) -> str:
        """An embed's rows: only what its scope shows; an NVR leaving the scope (its region changed) is deleted."""
        scope, f = view.scope, self.fragments
        if scope.view == "nvr":
            return await self._nvr_parts(view.id, data, events=False)
        if scope.view != "nvrs" or not data.changes.nvr_ids:
            return ""
        nvrs = await data.nvrs()
        shown = [n for n in nvrs if scope.shows(n) and not n.removed]
        return f.items(data, "nvr", "row", "nvr-rows", shown) + "".join(f.delete("tr", n.dom_id) for n in nvrs
                                                                        if n not in shown)  # fmt: skip

    async def _nvr_parts(self, nvr_id: int, data: Batch, *, events: bool) -> str:
        f = self.fragments
        parts = [f.fragment(data, f"nvr_facts:{n.id}", "fragments/nvr_facts.html", nvr=n) for n in await data.nvrs()
                 if n.id == nvr_id]  # fmt: skip
        cameras = [c for c in await data.cameras() if c.nvr_id == nvr_id]
        # Targeted at this NVR's own camera table, so an upsert can never drop a camera into another list.
        parts.append(f.items(data, "camera", "row", f"nvr-{nvr_id}-cameras", [c for c in cameras if not c.removed]))
        parts.extend(f.delete("tr", c.dom_id) for c in cameras if c.removed)
        if events:
            mine = [e for e in await data.events() if e.nvr_id == nvr_id]
            parts.append(f.events(data, f"nvr-{nvr_id}-events", mine))
        return "".join(parts)

    async def _camera_parts(self, camera_id: int, data: Batch) -> str:
        f = self.fragments
        parts = [f.fragment(data, f"camera_facts:{c.id}", "fragments/camera_facts.html", camera=c)
                 for c in await data.cameras() if c.id == camera_id]  # fmt: skip
        events = [e for e in await data.events() if e.camera_id == camera_id]
        parts.append(f.events(data, f"camera-{camera_id}-events", events))
        return "".join(parts)

    # -- replay and refresh -----------------------------------------------------------------------------------------

    async def catch_up(self, view: View, cursor: Cursor | None) -> CatchUp:
        """What a (re)connecting browser needs to converge: rows changed since its cursor, or a full refresh.

        SSE replay and long-poll both come through here, so the two transports give identical results. Browsers
        arrive in crowds with the same cursor (a page load wave, a hub restart, slow subscribers dropped together),
        so each (view, cursor, head) is rendered once and shared, even while the first render is running. The head is
        read before the rows (and the caller subscribed before that), so what is shared is at least as new as the
        head it claims, and every change after that head reaches the subscriber live.
        """
        horizon, head = await self._read_head()
        # No await from here to the lookup: the entry found (or made) is exactly this head's, never one a slower
        # caller computed for an older head and stored after a newer one was seen.
        if head != self._catch_up_head:
            self._catch_ups.clear()
            self._catch_up_head = head
        # A cursor past the head was not handed out by this database (one restored from an older backup, say): the
        # browser shows rows this store never had, so it is as unknown as a foreign epoch and gets a full refresh.
        valid = cursor is not None and cursor.epoch == self.store.epoch and horizon <= cursor.seq <= head
        key = (view.key, cursor.seq if cursor is not None and valid else -1, head)
        shared = self._catch_ups.get(key)
        if shared is None:
            if len(self._catch_ups) >= 256:
                self._catch_ups.clear()
            # A task of its own: a browser that leaves mid-render doesn't cancel it for the others waiting.
            shared = self._catch_ups[key] = asyncio.ensure_future(self._catch_up(view, cursor if valid else None, head))
            shared.add_done_callback(lambda task: task.exception() and self._catch_ups.pop(key, None))
        return await asyncio.shield(shared)

    async def _read_head(self) -> tuple[int, int]:
        """(horizon, head) from the store, read after the caller subscribed. Callers arriving in the same turn of
        the loop (a reconnect storm) share one read, which starts only after the last of them joined."""
        shared = self._head_read
        if shared is None:
            shared = self._head_read = asyncio.ensure_future(self._read_head_now())
        return await asyncio.shield(shared)

    async def _read_head_now(self) -> tuple[int, int]:
        await asyncio.sleep(0)  # the callers of this turn join first
        self._head_read = None  # from here on, newcomers wait for a read of their own
        return await self.store.horizon(), await self.store.current_seq()

    async def _catch_up(self, view: View, cursor: Cursor | None, head: int) -> CatchUp:
        if cursor is not None:
            if cursor.seq == head:
                return CatchUp(head, "", changed=False)
            most = self.settings.replay_max_rows
            changed = await self.store.changed_since(cursor.seq, most)
            incidents = await incident_rows.changed_since(self.store.database, cursor.seq, most)
            if changed is not None and incidents is not None:
                events = await self.store.events(after_seq=cursor.seq, limit=self.settings.recent_events)
                changes = Changes(head, set(changed[0]), set(changed[1]), [e.id for e in events], set(incidents))
                html = (await self.render_html(changes, [view.key])).get(view.key, "")
                return CatchUp(head, html, changed=True)
        return CatchUp(head, await self.refresh(view), changed=True, refresh=True)

    async def refresh(self, view: View) -> str:
        """The page's regions re-rendered whole, as out-of-band swaps, for a cursor that can't be replayed."""
        ctx = await self.page(view, oob=True)
        if ctx is None:
            return ""
        if view.kind == "embed":
            return self.renderer.render("embed_regions.html", oob=True, **ctx)
        return self.renderer.render("refresh.html", oob=True, flash=(), **ctx)

    def health_banner(self) -> str:
        """The storage banner as an out-of-band swap (the hub's state is the renderer's `hub_health` global). While
        the storage is fine it is one constant element, rendered once (every stream's catch-up carries it)."""
        if self.storage_degraded():
            return self.renderer.render("fragments/hub_health.html", oob=True)
        if self._banner_ok is None:
            self._banner_ok = self.renderer.render("fragments/hub_health.html", oob=True)
        return self._banner_ok

    def cursor(self, seq: int) -> Cursor:
        return Cursor(self.store.epoch, seq)
