from __future__ import annotations

import ast
import re
import time
from pathlib import Path

import pytest

from nvrmon import filters
from nvrmon.access.embed_tokens import Scope
from nvrmon.inventory import DecommissionCamera
from nvrmon.live.fragments import CHART_IDS
from nvrmon.live.renderer import Renderer, ago
from nvrmon.live.viewkey import View, ViewError
from nvrmon.live.views import Views
from nvrmon.models import Cursor
from nvrmon.protocol import CameraInfo, NvrInfo
from nvrmon.settings import Settings
from nvrmon.store import inventory
from nvrmon.store.fleet import Changes, Store
from tests.sources import parse

pytestmark = pytest.mark.anyio


@pytest.fixture
async def views(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = Settings(db_path=tmp_path / "v.db")
    store = await Store.open(settings.db_path)
    yield Views(store, Renderer(settings.templates_dir, settings.static_dir), settings)
    await store.close()


async def add_nvr(views: Views, hostname: str, *statuses: str) -> Changes:
    async with views.store.transaction(time.time()) as tx:
        nvr_id = (await tx.register_nvr(NvrInfo(hostname, region="North", site="N1"))).nvr_id
        infos = [CameraInfo(f"c{i}", f"{hostname} cam {i}", "", s) for i, s in enumerate(statuses, 1)]  # type: ignore[arg-type]
        await tx.replace_cameras(nvr_id, infos)
    return tx.changes


def test_view_parse_validates_kind_and_id() -> None:
    assert View.parse("nvr", "12").key == "nvr:12"
    assert View.parse("dashboard").key == "dashboard"
    for kind, ident in [("admin", None), ("nvr", None), ("camera", "x1"), (None, None)]:
        with pytest.raises(ViewError):
            View.parse(kind, ident)


def test_events_url_carries_view_and_cursor() -> None:
    assert View("nvr", 3).events_url(Cursor("ab12", 7)) == "/events?view=nvr&id=3&since=ab12-7"


def test_cursor_parse_rejects_garbage() -> None:
    assert Cursor.parse("ab12-7") == Cursor("ab12", 7)
    for raw in [None, "", "7", "ab-x", "-3", "a" * 80 + "-1"]:
        assert Cursor.parse(raw) is None


def test_ago_is_relative_to_now() -> None:
    assert ago(0) == "never"
    assert ago(100.0, now=102.0) == "just now"
    assert ago(100.0, now=100.0 + 125) == "2 min ago"


async def test_changes_render_once_per_view_with_keyed_rows(views: Views) -> None:
    changes = await add_nvr(views, "nvr-a", "online", "offline")
    messages = await views.render_changes(changes, ["nvrs", "cameras", "dashboard", "camera:999"])
    assert set(messages) == {"nvrs", "cameras", "dashboard"}  # a view the change doesn't touch gets nothing
    nvrs = messages["nvrs"].decode()
    assert nvrs.startswith(f"id: {views.store.epoch}-{changes.seq}\n")
    assert 'hx-target="#nvr-rows"' in nvrs and 'data-key="nvr-a"' in nvrs and 'id="nvr-stats"' in nvrs
    assert 'data-status="offline"' in messages["cameras"].decode()
    assert (
        'id="kpis" class="kpis" aria-label="Fleet figures" hx-swap-oob="outerMorph"' in messages["dashboard"].decode()
    )


async def test_vanished_camera_shows_missing_and_decommissioned_one_becomes_an_oob_delete(views: Views) -> None:
    await add_nvr(views, "nvr-a", "online", "online")
    nvr = (await views.store.nvrs())[0]
    async with views.store.transaction(time.time()) as tx:
        await tx.replace_cameras(nvr.id, [CameraInfo("c1", "nvr-a cam 1", "", "online")])
    gone = (await views.store.cameras())[-1]
    html = (await views.render_changes(tx.changes, ["cameras"]))["cameras"].decode()
    assert f'id="camera-{gone.id}"' in html and 'data-status="missing"' in html and "Missing" in html
    async with views.store.transaction(time.time()) as tx:
        await inventory.apply(tx, DecommissionCamera(gone.id), "test", max_cameras=10)
    html = (await views.render_changes(tx.changes, ["cameras"]))["cameras"].decode()
    assert f'<tr id="camera-{gone.id}" hx-swap-oob="delete"></tr>' in html


async def test_catch_up_replays_only_rows_after_the_cursor(views: Views) -> None:
    await add_nvr(views, "nvr-a", "online")
    cursor = Cursor(views.store.epoch, await views.store.current_seq())
    later = await add_nvr(views, "nvr-b", "online")
    caught = await views.catch_up(View("nvrs"), cursor)
    assert caught.head == later.seq and caught.changed and not caught.refresh
    assert 'data-key="nvr-b"' in caught.html and 'data-key="nvr-a"' not in caught.html


async def test_catch_up_at_head_sends_nothing(views: Views) -> None:
    changes = await add_nvr(views, "nvr-a", "online")
    caught = await views.catch_up(View("nvrs"), Cursor(views.store.epoch, changes.seq))
    assert (caught.head, caught.html, caught.changed) == (changes.seq, "", False)


@pytest.mark.parametrize("cursor", [None, Cursor("other-db", 1)])
async def test_catch_up_with_unknown_cursor_sends_full_refresh(views: Views, cursor: Cursor | None) -> None:
    await add_nvr(views, "nvr-a", "online")
    caught = await views.catch_up(View("nvrs"), cursor)
    assert caught.refresh
    assert '<tbody id="nvr-rows" hx-swap-oob="true">' in caught.html and 'data-key="nvr-a"' in caught.html


async def test_catch_up_past_replay_limit_sends_full_refresh(views: Views) -> None:
    for n in range(3):
        await add_nvr(views, f"nvr-{n}", "online", "online", "online")
    small = Views(views.store, views.renderer, Settings(replay_max_rows=5))
    caught = await small.catch_up(View("cameras"), Cursor(views.store.epoch, 0))
    assert caught.refresh and '<tbody id="camera-rows" hx-swap-oob="true">' in caught.html


async def test_page_and_push_render_the_same_row(views: Views) -> None:
    changes = await add_nvr(views, "nvr-a", "online")
    page = await views.page(View("nvrs"))
    assert page is not None
    first_paint = views.renderer.render("nvrs.html", title="t", active="nvrs", oob=False, transport="auto", **page)
    pushed = (await views.render_changes(changes, ["nvrs"]))["nvrs"].decode()
    nvr = page["rows"][0]
    row = views.renderer.render("fragments/nvr_row.html", nvr=nvr, now=page["now"], oob=False)
    assert row.split("<td>")[1] in first_paint and row.split("<td>")[1] in pushed.replace("data: ", "")


async def test_fragments_escape_hostile_names(views: Views) -> None:
    changes = await add_nvr(views, "nvr-x", "online")
    async with views.store.transaction(time.time()) as tx:
        await tx.register_nvr(NvrInfo("nvr-x", device_name="<img src=x onerror=alert(1)>"))
    html = (await views.render_changes(tx.changes, ["nvrs"]))["nvrs"].decode()
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert changes.seq < tx.changes.seq


async def set_status(views: Views, nvr_id: int, status: str) -> Changes:
    async with views.store.transaction(time.time()) as tx:
        await tx.set_nvr_status(nvr_id, status, "test")  # type: ignore[arg-type]
    return tx.changes


def test_view_key_includes_normalised_filters_and_open_detail() -> None:
    view = View.parse("nvrs", "sort=hostname&status=offline&bogus=1&detail=7")
    assert view.key == "nvrs?status=offline&detail=7" and View.from_key(view.key) == view
    assert View.parse("nvrs", "").key == View("nvrs").key == "nvrs"
    assert "id=status%3Doffline%26detail%3D7" in view.events_url(Cursor("e", 1))


async def test_filtered_view_gains_and_loses_rows_live(views: Views) -> None:
    await add_nvr(views, "nvr-a", "online")
    await add_nvr(views, "nvr-b", "online")
    nvr_a = next(n for n in await views.store.nvrs() if n.hostname == "nvr-a")
    key = "nvrs?status=offline"
    down = await views.render_changes(await set_status(views, nvr_a.id, "offline"), [key, "nvrs"])
    entered = down[key].decode()
    assert f'id="nvr-{nvr_a.id}"' in entered and 'data-stat="matching">1<' in entered
    # The unfiltered list keeps the row where it is: an in-place upsert, not a refresh of the window.
    assert '<tbody id="nvr-rows"' not in down["nvrs"].decode() and f'id="nvr-{nvr_a.id}"' in down["nvrs"].decode()
    up = (await views.render_changes(await set_status(views, nvr_a.id, "online"), [key]))[key].decode()
    assert f'<tr id="nvr-{nvr_a.id}" hx-swap-oob="delete"></tr>' in up and 'data-stat="matching">0<' in up


async def test_page_boundary_shift_refreshes_the_window_once(views: Views) -> None:
    for n in range(3):
        await add_nvr(views, f"nvr-{n}", "online")
    small = Views(views.store, views.renderer, Settings())
    ids = sorted(n.id for n in await views.store.nvrs())
    key = "nvrs?status=online"
    await small.render_changes(Changes(1, {ids[0]}), [key])  # remembers the window it sent
    html = (await small.render_changes(await set_status(views, ids[0], "offline"), [key]))[key].decode()
    assert f'<tr id="nvr-{ids[0]}" hx-swap-oob="delete"></tr>' in html  # unpaged: a delete is exact
    filters.PAGE_SIZE["nvrs"], saved = 1, filters.PAGE_SIZE["nvrs"]
    try:
        await small.render_changes(Changes(1, {ids[1]}), [key])
        html = (await small.render_changes(await set_status(views, ids[1], "offline"), [key]))[key].decode()
    finally:
        filters.PAGE_SIZE["nvrs"] = saved
    # One row per page: the next row slides in from page 2, so the window is re-rendered whole.
    assert '<tbody id="nvr-rows" hx-swap-oob="true">' in html and f'id="nvr-{ids[2]}"' in html


async def test_open_detail_is_live_within_a_list_view(views: Views) -> None:
    await add_nvr(views, "nvr-a", "online", "online")
    nvr_a = (await views.store.nvrs())[0]
    key = f"nvrs?detail={nvr_a.id}"
    html = await views.render_changes(await set_status(views, nvr_a.id, "offline"), [key, "nvrs"])
    assert (
        f'id="nvr-{nvr_a.id}-facts"' in html[key].decode()
        and f'hx-target="#nvr-{nvr_a.id}-cameras"' in html[key].decode()
    )
    assert f'id="nvr-{nvr_a.id}-facts"' not in html["nvrs"].decode()  # without the dialog open, no detail bytes


async def test_stats_html_is_the_one_producer_of_statistics(views: Views) -> None:
    await add_nvr(views, "nvr-a", "online", "offline")
    data = views.batch()
    assert set(await views.stats_html(View("dashboard"), data)) == {
        "kpis", "nvr-status-chart", "camera-status-chart", "region-chart", "region-health", "system-health"
    }  # fmt: skip
    assert set(await views.stats_html(View("nvrs"), data)) == {"nvr-stats", "nvr-facets", "nvr-pager"}
    charts_only = await views.stats_html(View("dashboard"), data, parts=CHART_IDS)
    assert set(charts_only) == {"nvr-status-chart", "camera-status-chart", "region-chart"}
    page = await views.page(View("cameras"))
    assert page is not None and 'data-stat="nvr_offline">0<' in page["stats"]["camera-stats"]


async def test_camera_detail_without_events_says_no_events(views: Views) -> None:
    await add_nvr(views, "nvr-a", "online")
    camera = (await views.store.cameras())[0]
    html = await views.detail_html("camera", camera.id)
    assert html is not None and f'id="camera-{camera.id}-events"' in html
    assert "No events" in html.split(f'id="camera-{camera.id}-events"')[1]


def test_embed_view_keys_round_trip_and_are_never_page_keys() -> None:
    for scope in (
        Scope.of("kpis"),
        Scope.of("nvrs"),
        Scope.of("nvrs", region="North & co"),
        Scope.of("nvr", nvr_id=12),
    ):
        view = View.for_embed(scope)
        assert view.key.startswith("embed:") and View.from_key(view.key) == view
    assert View.for_embed(Scope.of("nvr", nvr_id=12)).key == "embed:nvr/12"
    assert View.for_embed(Scope.of("nvrs", region="North")).key == "embed:nvrs?region=North"
    with pytest.raises(ViewError):
        View.parse("embed", "kpis")  # a page's stream can't ask for an embed's view


async def test_embed_views_get_their_scope_without_toasts_events_or_other_regions(views: Views) -> None:
    north = await add_nvr(views, "nvr-north", "online")
    async with views.store.transaction(time.time()) as tx:
        await tx.register_nvr(NvrInfo("nvr-south", region="South", site="S1"))
    changes = Changes(tx.changes.seq, north.nvr_ids | tx.changes.nvr_ids, north.camera_ids, north.event_ids)
    region = View.for_embed(Scope.of("nvrs", region="North")).key
    kpis = View.for_embed(Scope.of("kpis")).key
    toast = [{"level": "error", "title": "nvr-south offline"}]
    messages = await views.render_changes(changes, [region, kpis, "nvrs"], toasts=toast)
    shown = messages[region].decode()
    assert 'data-key="nvr-north"' in shown and "nvr-south" not in shown.replace('hx-swap-oob="delete"', "")
    assert "toast-inbox" not in shown and "toast-inbox" not in messages[kpis].decode()
    assert 'id="kpis"' in messages[kpis].decode() and "event-" not in messages[kpis].decode()
    assert "toast-inbox" in messages["nvrs"].decode()  # pages still get their toasts


def test_python_modules_write_no_markup() -> None:
    """Markup lives in templates: no string literal in nvrmon/ opens an HTML tag."""
    tag = re.compile(r"<(?:[a-zA-Z][a-zA-Z0-9-]*[\s>/]|/[a-zA-Z]|!doctype)", re.IGNORECASE)
    found = []
    for path in Path(filters.__file__).parent.rglob("*.py"):
        tree = parse(path.read_text())
        docstrings = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}  # prose, never sent
        for node in ast.walk(tree):
            text = node.value if isinstance(node, ast.Constant) and id(node) not in docstrings else None
            if isinstance(text, str) and tag.search(text):
                found.append(f"{path.name}:{node.lineno}")
    assert not found
