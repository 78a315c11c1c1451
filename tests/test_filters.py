from __future__ import annotations

from nvrmon.filters import (
    ListQuery,
    camera_facets_from_fleet,
    natural,
    nvr_facets,
    nvr_window,
    plan_window,
)
from nvrmon.models import Nvr


def nvr(
    ident: int, hostname: str, status: str = "online", region: str = "North", online: int = 2, total: int = 2
) -> Nvr:
    return Nvr(ident, hostname, f"{hostname} box", region, f"{region} 1", "NV", "1.0", "10.0.0.1", status, "",  # type: ignore[arg-type]
               100.0 + ident, 0.0, 1, cameras_online=online, cameras_total=total)  # fmt: skip


FLEET = [
    nvr(1, "nvr-10", "offline", "South", 0, 4),
    nvr(2, "nvr-2", "online", "North", 3, 4),
    nvr(3, "nvr-1", "stale", "North", 4, 4),
    nvr(4, "gate-7", "online", "South", 1, 1),
]


def test_list_query_normalises_so_equal_meanings_share_a_key() -> None:
    a = ListQuery.parse("nvrs", {"status": "offline", "q": "  Gate   7 ", "sort": "hostname", "page": "1", "x": "y"})
    b = ListQuery.parse("nvrs", {"q": "gate 7", "status": "offline"})
    assert a == b and a.encode() == b.encode() == "status=offline&q=gate+7"


def test_list_query_ignores_invalid_values() -> None:
    query = ListQuery.parse(
        "cameras", {"status": "purple", "sort": "-bogus", "page": "-3", "nvr": "x1", "layout": "3d"}
    )
    assert query == ListQuery("cameras")
    assert ListQuery.parse("nvrs", {"page": "99999999"}).page == 1
    assert len(ListQuery.parse("nvrs", {"q": "x" * 500}).q) == 64


def test_list_query_links_reset_the_page_when_a_filter_changes() -> None:
    query = ListQuery.parse("nvrs", {"status": "online", "page": "3"})
    assert query.url(region="North") == "/nvrs?status=online&region=North"
    assert query.url(page=4) == "/nvrs?status=online&page=4"
    assert query.sort_link("hostname") == "/nvrs?status=online&sort=-hostname"  # the default column flips
    assert ListQuery.parse("nvrs", {"sort": "-hostname"}).sort_link("hostname") == "/nvrs?sort=hostname"


def test_natural_sort_orders_numbers_by_value() -> None:
    assert sorted(["nvr-10", "nvr-2", "NVR-1"], key=natural) == ["NVR-1", "nvr-2", "nvr-10"]


def test_nvr_window_filters_sorts_and_pages() -> None:
    rows, total = nvr_window(FLEET, ListQuery.parse("nvrs", {"region": "North"}))
    assert [r.id for r in rows] == [3, 2] and total == 2
    rows, _ = nvr_window(FLEET, ListQuery.parse("nvrs", {"sort": "status"}))
    assert [r.status for r in rows] == ["offline", "stale", "online", "online"]
    rows, _ = nvr_window(FLEET, ListQuery.parse("nvrs", {"sort": "-cameras"}))
    assert rows[-1].id == 1  # none of its cameras up: last when the best come first
    rows, total = nvr_window(FLEET, ListQuery.parse("nvrs", {"q": "GATE"}))
    assert [r.id for r in rows] == [4] and total == 1


def test_nvr_facets_count_each_choice_with_the_other_filters_kept() -> None:
    facets = nvr_facets(FLEET, ListQuery.parse("nvrs", {"status": "online", "region": "South"}))
    assert facets.total == 1
    assert facets.status == {"online": 1, "degraded": 0, "stale": 0, "offline": 1, "unknown": 0}  # South, any status
    assert dict(facets.region) == {"North": 1, "South": 1}  # online, any region
    assert facets.any_status == 2 and facets.any_region == 2


def test_camera_facets_from_fleet_show_nvr_offline_apart() -> None:
    facets = camera_facets_from_fleet(FLEET, ListQuery("cameras"))
    assert facets.status == {"online": 8, "degraded": 0, "offline": 1, "nvr_offline": 4, "unknown": 0}
    assert facets.total == 13
    south_down = camera_facets_from_fleet(FLEET, ListQuery.parse("cameras", {"status": "nvr_offline"}))
    assert south_down.total == 4 and dict(south_down.region) == {"South": 4}


def test_plan_window_replaces_rows_in_place_when_the_window_is_unchanged() -> None:
    plan = plan_window((1, 2, 3), (1, 2, 3), {2, 9}, stable=False)
    assert (plan.refresh, plan.upsert, plan.delete) == (False, (2,), ())


def test_plan_window_deletes_rows_that_left() -> None:
    plan = plan_window((1, 2, 3), (1, 3), {2}, stable=False)
    assert (plan.refresh, plan.upsert, plan.delete) == (False, (), (2,))


def test_plan_window_refreshes_when_a_row_enters_or_moves() -> None:
    assert plan_window((1, 2), (1, 5, 2), {5}, stable=False).refresh  # entered
    assert plan_window((1, 2, 3), (2, 3, 4), {1}, stable=False).refresh  # 1 left, 4 slid in from the next page
    assert plan_window((1, 2, 3), (2, 1, 3), {1}, stable=False).refresh  # moved


def test_plan_window_without_a_known_window_is_keyed_only_when_stable() -> None:
    plan = plan_window(None, (1, 2), {2, 7}, stable=True)
    assert (plan.refresh, plan.upsert, plan.delete) == (False, (2,), (7,))
    assert plan_window(None, (1, 2), {2}, stable=False).refresh


def test_list_query_page_size_takes_only_offered_values() -> None:
    assert ListQuery.parse("cameras", {"per": "500"}).per_page == 500
    assert ListQuery.parse("cameras", {"per": "500"}).encode() == "per=500"
    assert ListQuery.parse("cameras", {"per": "7"}).per_page == 60
    assert ListQuery.parse("nvrs", {"per": "x"}).per_page == 50
