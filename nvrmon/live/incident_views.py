"""Stage 4, incident views: the /incidents list, one incident's detail and the dashboard's panel, as first paint and
as live fragments after a change (the same templates both ways, each rendered once per batch)."""

from __future__ import annotations

from typing import Any

from nvrmon.incidents import IncidentFilter
from nvrmon.live.fragments import Fragments
from nvrmon.live.loader import Batch
from nvrmon.live.viewkey import View
from nvrmon.store import incidents as sql
from nvrmon.store.fleet import Store

PANEL_SIZE = 8  # active incidents on the dashboard (the rest are a click away)
LIST_SIZE = 200  # incidents on one /incidents page, open first


class IncidentViews:
    def __init__(self, store: Store, fragments: Fragments) -> None:
        self.store = store
        self.fragments = fragments

    async def page(self, view: View) -> dict[str, Any] | None:
        """What the page's template needs (None: no such incident)."""
        db = self.store.database
        if view.kind == "incidents":
            chosen = view.incidents or IncidentFilter()
            return {"incidents": await self._list(chosen), "filters": chosen, "sites": await sql.sites(db)}
        if view.kind == "incident":
            found = await sql.incident(db, view.id)
            if found is None:
                return None
            return {"incident": found, "entries": await sql.entries(db, found.id)}
        return await self.panel()

    async def _list(self, chosen: IncidentFilter) -> list[Any]:
        return await sql.incidents(
            self.store.database, state=chosen.state, site=chosen.site, severity=chosen.severity, limit=LIST_SIZE
        )

    async def panel(self) -> dict[str, Any]:
        db = self.store.database
        return {"panel_incidents": await sql.incidents(db, state="active", limit=PANEL_SIZE),
                "panel_counts": await sql.counts(db)}  # fmt: skip

    async def exists(self, view: View) -> bool:
        return await sql.incident(self.store.database, view.id) is not None

    async def rows(self, view: View, data: Batch) -> str:
        """Out-of-band fragments for the incidents a change touched; "" when it touched none this view shows."""
        changed = data.changes.incident_ids
        if not changed:
            return ""
        f = self.fragments
        if view.kind == "dashboard":
            return f.fragment(data, "incident-panel", "fragments/incident_panel.html", **await self.panel())
        if view.kind == "incidents":
            chosen = view.incidents or IncidentFilter()
            return f.fragment(data, f"incident-list:{view.key}", "fragments/incident_list.html",
                              incidents=await self._list(chosen), filters=chosen)  # fmt: skip
        if view.kind != "incident" or view.id not in changed:
            return ""
        found = await self.page(view)
        if found is None:
            return ""
        return "".join(
            f.fragment(data, f"{name}:{view.id}", f"fragments/{name}.html", **found)
            for name in ("incident_summary", "incident_devices", "incident_timeline")
        )
