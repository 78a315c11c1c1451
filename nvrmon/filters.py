"""Stage 4, list scopes: filters, sort and page of the NVR and Camera lists, normalised so equal URLs share one view,
and what a live change does to a page window (upsert, delete, or refresh the window)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import urlencode

from nvrmon.models import Camera, Nvr

ListKind = Literal["nvrs", "cameras"]
# Shown statuses (Nvr.display, Camera.display): "degraded" is online with a health problem (docs/protocol.md).
NVR_STATUSES: tuple[str, ...] = ("online", "degraded", "stale", "offline", "unknown")
CAMERA_STATUSES: tuple[str, ...] = ("online", "degraded", "offline", "nvr_offline", "unknown")
# Column keys a list can be sorted by; a leading "-" sorts descending. The first one is the default.
NVR_SORTS: tuple[str, ...] = ("hostname", "status", "device", "region", "cameras", "last_seen", "firmware")
CAMERA_SORTS: tuple[str, ...] = ("nvr", "name", "status", "region", "since")
LAYOUTS: tuple[str, ...] = ("table", "grid")  # the first is the default
PAGE_SIZE: dict[ListKind, int] = {"nvrs": 50, "cameras": 60}
# Larger pages on request (?per=): wall displays show a whole site or region at once.
PAGE_SIZES = (100, 250, 500, 1000)
MAX_TEXT = 64  # longer search or region text is cut: it bounds the number of distinct views, too
MAX_PAGE = 10_000
# Problems first when sorting by status.
NVR_STATUS_RANK = {"offline": 0, "stale": 1, "degraded": 2, "unknown": 3, "online": 4}
CAMERA_STATUS_RANK = {"offline": 0, "nvr_offline": 1, "degraded": 2, "unknown": 3, "online": 4}


def _text(raw: str | None) -> str:
    return " ".join((raw or "").split())[:MAX_TEXT]


@dataclass(frozen=True, slots=True)
class ListQuery:
    """What a list page shows. Built only through `parse`, so two URLs meaning the same thing give equal queries."""

    kind: ListKind
    status: str = ""
    region: str = ""
    q: str = ""
    nvr: int = 0  # cameras: only this NVR's
    sort: str = ""  # "" is the kind's default order
    page: int = 1
    layout: str = "table"  # cameras: table rows or a grid of tiles
    per: int = 0  # rows per page; 0 is the kind's default

    @classmethod
    def parse(cls, kind: ListKind, params: Mapping[str, str]) -> ListQuery:
        """Normalise request parameters; unknown parameters and invalid values are ignored, never an error."""
        statuses, sorts = (NVR_STATUSES, NVR_SORTS) if kind == "nvrs" else (CAMERA_STATUSES, CAMERA_SORTS)
        status = params.get("status", "")
        sort = params.get("sort", "")
        if sort.removeprefix("-") not in sorts or sort == sorts[0]:
            sort = ""  # the default sort has one spelling: none
        page = params.get("page", "1")
        nvr = params.get("nvr", "") if kind == "cameras" else ""
        layout = params.get("layout", "") if kind == "cameras" else ""
        per = params.get("per", "")
        return cls(
            kind=kind,
            status=status if status in statuses else "",
            region=_text(params.get("region")),
            q=_text(params.get("q")).lower(),
            nvr=int(nvr) if nvr.isdigit() and len(nvr) < 10 else 0,
            sort=sort,
            page=min(int(page), MAX_PAGE) if page.isdigit() and 0 < len(page) < 7 and int(page) > 0 else 1,
            layout=layout if layout in LAYOUTS else LAYOUTS[0],
            per=int(per) if per.isdigit() and int(per) in PAGE_SIZES else 0,
        )

    def params(self) -> dict[str, str]:
        """The non-default parameters in a fixed order: the canonical query string of this view."""
        out: dict[str, str] = {}
        for name in ("status", "region", "q", "nvr", "sort", "layout", "per", "page"):
            value = getattr(self, name)
            if value and value != ListQuery.__dataclass_fields__[name].default:
                out[name] = str(value)
        return out

    def encode(self) -> str:
        return urlencode(self.params())

    def url(self, **changes: Any) -> str:
        """A link to this list with some parameters changed; changing a filter or the sort goes back to page 1."""
        if changes.keys() - {"page", "layout"}:
            changes.setdefault("page", 1)
        query = self.encode_with(**changes)
        return f"/{self.kind}" + (f"?{query}" if query else "")

    def encode_with(self, **changes: Any) -> str:
        return replace(self, **changes).encode()

    @property
    def per_page(self) -> int:
        return self.per or PAGE_SIZE[self.kind]

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    @property
    def sort_column(self) -> str:
        return self.sort.removeprefix("-") or (NVR_SORTS if self.kind == "nvrs" else CAMERA_SORTS)[0]

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")

    @property
    def filtered(self) -> bool:
        return bool(self.status or self.region or self.q or self.nvr)

    @property
    def status_blind(self) -> bool:
        """Neither filtered nor sorted by anything a status change alters (status, counts, times), so a status
        change moves no row into, out of or within a page."""
        volatile = {"status", "cameras", "last_seen", "since"}
        return not self.status and self.sort.removeprefix("-") not in volatile

    @property
    def stable_order(self) -> bool:
        """Sorted by a key a live change never alters (hostname; NVR then camera name), so a known row keeps its place
        and a new one can be inserted by its data-key."""
        return self.sort == ""

    def sort_link(self, column: str) -> str:
        """Header link: sort by `column`, or flip the direction if it is already the sort column."""
        if column == self.sort_column:
            return self.url(sort=column if self.descending else f"-{column}")
        return self.url(sort=column)

    def aria_sort(self, column: str) -> str:
        if column != self.sort_column:
            return "none"
        return "descending" if self.descending else "ascending"

    def pages(self, total: int) -> int:
        return max(1, -(-total // self.per_page))


# -- NVRs: filtered, sorted and paged in Python over the fleet snapshot (2,000 rows sort in about a millisecond) -------

_DIGITS = re.compile(r"(\d+)")


def natural(text: str) -> tuple[Any, ...]:
    """Case-insensitive, numbers by value (nvr-2 before nvr-10), like the browser's localeCompare(numeric)."""
    return tuple(int(part) if part.isdigit() else part.casefold() for part in _DIGITS.split(text))


def nvr_matches(nvr: Nvr, query: ListQuery, *, status: bool = True, region: bool = True) -> bool:
    """Whether the NVR is in the list; `status`/`region` False leaves that filter out (for that filter's counts)."""
    if status and query.status and nvr.display != query.status:
        return False
    if region and query.region and nvr.region != query.region:
        return False
    if query.q:
        haystack = f"{nvr.hostname}\n{nvr.device_name}\n{nvr.site}\n{nvr.region}\n{nvr.ip_address}\n{nvr.firmware}"
        if query.q not in haystack.lower():
            return False
    return True


def _nvr_key(column: str) -> Any:
    keys: dict[str, Any] = {
        "hostname": lambda n: natural(n.hostname),
        "status": lambda n: (NVR_STATUS_RANK[n.display], natural(n.hostname)),
        "device": lambda n: (natural(n.device_name), natural(n.hostname)),
        "region": lambda n: (natural(n.region), natural(n.site), natural(n.hostname)),
        # Fewest cameras up first: the ratio, then the absolute number down.
        "cameras": lambda n: (
            n.cameras_online / n.cameras_total if n.cameras_total else 1.0,
            n.cameras_online - n.cameras_total,
            natural(n.hostname),
        ),
        # Connected NVRs first (their last_seen moves with every heartbeat, which is not a change), then the most
        # recently seen, so the order only moves when a status does.
        "last_seen": lambda n: (
            n.status != "online",
            -n.last_seen if n.status != "online" else 0.0,
            natural(n.hostname),
        ),
        "firmware": lambda n: (natural(n.firmware), natural(n.hostname)),
    }
    return keys[column]


def nvr_window(fleet: Sequence[Nvr], query: ListQuery) -> tuple[list[Nvr], int]:
    """The NVRs on the query's page, in order, and how many match in all."""
    matching = [n for n in fleet if nvr_matches(n, query)]
    matching.sort(key=_nvr_key(query.sort_column), reverse=query.descending)
    return matching[query.offset : query.offset + query.per_page], len(matching)


def nvr_data_key(nvr: Nvr) -> str:
    return nvr.hostname


def camera_data_key(camera: Camera) -> str:
    return f"{camera.nvr_hostname}/{camera.name}"


# -- facet counts ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Facets:
    """Live counts next to each filter choice: each counts what the list would show with that choice, the other
    filters staying as they are."""

    total: int  # rows matching the whole query
    status: dict[str, int]  # status -> count, ignoring the status filter
    region: list[tuple[str, int]]  # (region, count), ignoring the region filter, largest first
    any_status: int  # count with no status filter
    any_region: int  # count with no region filter


def _regions(counts: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], natural(item[0])))


def nvr_facets(fleet: Iterable[Nvr], query: ListQuery) -> Facets:
    status: Counter[str] = Counter()
    region: Counter[str] = Counter()
    total = 0
    for nvr in fleet:
        if nvr_matches(nvr, query, status=False):
            status[nvr.display] += 1
            if not query.status or nvr.display == query.status:
                total += 1
        if nvr_matches(nvr, query, region=False):
            region[nvr.region] += 1
    return Facets(
        total, {s: status[s] for s in NVR_STATUSES}, _regions(region), sum(status.values()), sum(region.values())
    )


def camera_split(nvr: Nvr) -> dict[str, int]:
    """How an NVR's cameras show: all 'NVR offline' or 'unknown' while the NVR is, else their own statuses."""
    if nvr.status == "offline":
        return {"nvr_offline": nvr.cameras_total}
    if nvr.status == "unknown":
        return {"unknown": nvr.cameras_total}
    return {
        "online": nvr.cameras_online - nvr.cameras_degraded,
        "degraded": nvr.cameras_degraded,
        "offline": nvr.cameras_total - nvr.cameras_online,
    }


def camera_facets_from_fleet(fleet: Iterable[Nvr], query: ListQuery) -> Facets:
    """Camera counts from per-NVR camera counts, without touching the 30,000 camera rows (no text search)."""
    status: Counter[str] = Counter()
    region: Counter[str] = Counter()
    for nvr in fleet:
        if query.nvr and nvr.id != query.nvr:
            continue
        split = camera_split(nvr)
        if not query.region or nvr.region == query.region:
            status.update(split)
        shown = split.get(query.status, 0) if query.status else nvr.cameras_total
        if shown:
            region[nvr.region] += shown
    return camera_facets(status, region, query)


def camera_facets(status: Mapping[str, int], region: Mapping[str, int], query: ListQuery) -> Facets:
    total = status.get(query.status, 0) if query.status else sum(status.values())
    regions = Counter({name: count for name, count in region.items() if count})
    return Facets(
        total,
        {s: status.get(s, 0) for s in CAMERA_STATUSES},
        _regions(regions),
        sum(status.values()),
        sum(regions.values()),
    )


# -- live membership of a page window -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WindowPlan:
    """What to send for a page window after a change: keyed upserts and deletes, or one refresh of the whole window."""

    refresh: bool
    upsert: tuple[int, ...] = ()
    delete: tuple[int, ...] = ()


def plan_window(old: Sequence[int] | None, new: Sequence[int], changed: Collection[int], *, stable: bool) -> WindowPlan:
    """Decide how a browser showing window `old` (None: unknown, as in a replay) reaches window `new`.

    Rows that did not change keep their filter membership and sort keys, so only changed rows can enter, leave or
    move. Upserts replace a row in place, deletes remove it; anything else (a row entering, a row moving, a page
    boundary shifting) is a refresh of the window, rendered once per view. With `old` unknown, keyed updates are
    exact only when the whole result fits on one page before and after and the order never changes (`stable`).
    """
    in_window = tuple(i for i in new if i in changed)
    if old is None:
        if stable:
            members = set(new)
            return WindowPlan(False, in_window, tuple(sorted(i for i in changed if i not in members)))
        return WindowPlan(True)
    if list(old) == list(new):
        return WindowPlan(False, in_window)
    members = set(new)
    if [i for i in old if i in members] == list(new):
        return WindowPlan(False, in_window, tuple(i for i in old if i not in members))
    return WindowPlan(True)
