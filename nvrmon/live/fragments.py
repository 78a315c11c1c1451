"""Stage 4, fragments: rendering a view's pieces once per batch: rows, events, statistics and their live envelopes."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from markupsafe import Markup

from nvrmon.filters import camera_facets, camera_facets_from_fleet, nvr_facets
from nvrmon.live import charts
from nvrmon.live.loader import Batch
from nvrmon.live.renderer import Renderer
from nvrmon.live.viewkey import View
from nvrmon.models import Camera, Event, HubInfo, Nvr, Summary

WRAPPERS = "fragments/_wrappers.html"
# Statistics fragments by element id. Charts are listed apart so the publish path can throttle them separately.
CHART_IDS = frozenset({"nvr-status-chart", "camera-status-chart", "region-chart"})
STAT_IDS = frozenset(
    {"kpis", "region-health", "system-health", "nvr-stats", "nvr-facets", "nvr-pager", "camera-stats"}
    | {"camera-facets", "camera-pager"}
)


class Fragments:
    """The one place fragments are rendered for live changes, replays and refreshes, cached in the batch."""

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer
        self.hub: HubInfo | None = None  # set by the application; system health shows "not running" without it

    def fragment(self, batch: Batch, key: str, template: str, oob: bool = True, **context: Any) -> str:
        if key not in batch.html:
            batch.html[key] = self.renderer.render(template, oob=oob, now=time.time(), **context)
        return batch.html[key]

    def upsert(self, target: str, items: str, sort: str = "") -> str:
        """Keyed rows for the element `target`: each replaces its namesake or is inserted in order."""
        return self.renderer.macro(WRAPPERS, "upsert", target, Markup(items), sort) if items else ""

    def delete(self, tag: str, dom_id: str) -> str:
        return self.renderer.macro(WRAPPERS, "delete", tag, dom_id)

    def item(self, batch: Batch, kind: str, layout: str, row: Nvr | Camera) -> str:
        template = f"fragments/{kind}_{layout}.html"
        return self.fragment(batch, f"{layout}:{row.dom_id}", template, oob=False, flash=True, **{kind: row})

    def items(self, batch: Batch, kind: str, layout: str, target: str, rows: Sequence[Nvr | Camera]) -> str:
        return self.upsert(target, "".join(self.item(batch, kind, layout, row) for row in rows))

    def events(self, batch: Batch, list_id: str, events: list[Event]) -> str:
        items = "".join(self.fragment(batch, e.dom_id, "fragments/event_item.html", oob=False, event=e) for e in events)
        return self.upsert(list_id, items, "desc")

    async def stats(
        self, view: View, batch: Batch, *, oob: bool = True, parts: frozenset[str] = STAT_IDS | CHART_IDS
    ) -> dict[str, str]:
        """Every statistics fragment of a view, by element id: the ONE producer for first paint, live changes and
        refresh. Status rows go out apart, so a publish path can send those at once while it debounces these
        (`STAT_IDS`) and throttles the charts (`CHART_IDS`)."""
        out: dict[str, str] = {}
        now = time.time()

        def add(fragment_id: str, template: str, **context: Any) -> None:
            if fragment_id in parts:
                key = f"stats:{view.key}:{fragment_id}:{oob}"
                if key not in batch.html:
                    batch.html[key] = self.renderer.render(template, oob=oob, now=now, **context)
                out[fragment_id] = batch.html[key]

        if view.kind in ("nvr", "camera", "incidents", "incident"):
            return out
        fleet = await batch.fleet()
        summary = Summary.of(fleet)
        if view.kind == "embed":
            # Fleet-wide figures only where the scope is fleet-wide: a region's embed must not tell of other regions.
            if view.scope.view == "kpis":
                add("kpis", "fragments/kpis.html", summary=summary)
            elif view.scope.view == "nvrs" and view.scope.region is None:
                add("nvr-stats", "fragments/nvr_stats.html", summary=summary)
        elif view.kind == "dashboard":
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
                    database_bytes=await batch.database_bytes(), summary=summary)  # fmt: skip
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
                facets = camera_facets(*await batch.camera_counts(query), query)
            else:
                facets = camera_facets_from_fleet(fleet, query)
            nvr_name = next((n.hostname for n in fleet if n.id == query.nvr), "") if query.nvr else ""
            add("camera-stats", "fragments/camera_stats.html", summary=summary)
            add("camera-facets", "fragments/camera_facets.html", query=query, facets=facets, nvr_name=nvr_name)
            add("camera-pager", "fragments/pager.html", pager_id="camera-pager", query=query, total=facets.total,
                noun="cameras")  # fmt: skip
        return out
