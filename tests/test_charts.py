from __future__ import annotations

from dataclasses import replace

import pytest

from nvrmon.live import charts
from nvrmon.models import Nvr


def nvr(ident: int, status: str, region: str, online: int, total: int) -> Nvr:
    return Nvr(ident, f"nvr-{ident}", "", region, "", "", "", "", status, "", 0.0, 0.0, 1,  # type: ignore[arg-type]
               cameras_online=online, cameras_total=total)  # fmt: skip


def test_segments_cover_the_whole_and_keep_order() -> None:
    segs = charts.segments({"online": 3, "offline": 1}, charts.NVR_LEGEND)
    assert [s.key for s in segs] == ["online", "offline"]
    assert segs[0].start == 0 and segs[1].start == pytest.approx(75)
    assert sum(s.length for s in segs) == pytest.approx(100)


def test_one_device_in_five_thousand_stays_visible() -> None:
    segs = charts.segments({"online": 4999, "offline": 1}, charts.NVR_LEGEND)
    offline = next(s for s in segs if s.key == "offline")
    assert offline.length == charts.MIN_SHARE and offline.percent_text == "<0.1%"
    assert sum(s.length for s in segs) == pytest.approx(100)


def test_empty_fleet_draws_no_segments() -> None:
    donut = charts.donut({}, charts.CAMERA_LEGEND)
    assert donut.segments == [] and donut.headline == "–"
    assert [row.count for row in donut.legend] == [0] * len(charts.CAMERA_LEGEND)


def test_donut_headline_is_share_online_rounded_down() -> None:
    assert charts.donut({"online": 2, "offline": 1}, charts.NVR_LEGEND).headline == "66.6%"
    assert charts.donut({"online": 4999, "offline": 1}, charts.NVR_LEGEND).headline == "99.9%"  # never a false 100%


def test_camera_counts_put_cameras_of_offline_nvrs_apart() -> None:
    fleet = [nvr(1, "online", "N", 3, 4), nvr(2, "offline", "N", 2, 2), nvr(3, "unknown", "S", 1, 1)]
    assert charts.camera_counts(fleet) == {"online": 3, "degraded": 0, "offline": 1, "nvr_offline": 2, "unknown": 1}


def test_degraded_devices_count_apart_from_online_but_as_up() -> None:
    fleet = [
        replace(nvr(1, "online", "N", 3, 4), cameras_degraded=1, degraded="disk2 failing"),
        nvr(2, "online", "N", 1, 1),
    ]
    assert charts.camera_counts(fleet) == {"online": 3, "degraded": 1, "offline": 1, "nvr_offline": 0, "unknown": 0}
    assert charts.nvr_counts(fleet) == {"online": 1, "degraded": 1, "stale": 0, "offline": 0, "unknown": 0}
    [region] = charts.regions(fleet)
    assert (region.nvrs_up, region.cameras_online, region.health) == (2, 3, "critical")


def test_regions_roll_up_health_worst_first() -> None:
    fleet = [nvr(1, "online", "Calm", 10, 10), nvr(2, "online", "Busy", 10, 10), nvr(3, "offline", "Busy", 0, 10)]
    rolled = charts.regions(fleet)
    assert [(r.name, r.health) for r in rolled] == [("Busy", "critical"), ("Calm", "healthy")]
    assert (rolled[0].nvrs_up, rolled[0].nvrs_total, rolled[0].cameras_online, rolled[0].cameras_total) == (
        1,
        2,
        10,
        20,
    )


def test_region_chart_folds_the_tail_into_other() -> None:
    fleet = [nvr(i, "online", f"R{i:02d}", 1, 1) for i in range(20)]
    shown, widest = charts.region_chart(charts.regions(fleet), limit=5)
    assert len(shown) == 5 and shown[-1].name == "Other (16)" and shown[-1].nvrs_total == 16 and widest == 16
