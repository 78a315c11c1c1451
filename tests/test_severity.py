"""Severity and device conditions as the engine sees them (degraded comes from the health work; named here already)."""

from __future__ import annotations

from nvrmon.alerts.engine import camera_condition, nvr_condition
from nvrmon.incidents import severity, worst
from nvrmon.store.incidents import GroupCamera, GroupNvr


def nvr(status: str, *, unstable: bool = False, removed: bool = False) -> GroupNvr:
    return GroupNvr(1, "nvr-a", status, unstable, removed)


def test_severity_follows_kind_and_state_offline_over_degraded_over_unstable() -> None:
    assert [severity("site", s) for s in ("offline", "degraded", "unstable")] == ["critical", "major", "minor"]
    assert [severity("nvr", s) for s in ("offline", "degraded", "unstable")] == ["critical", "major", "minor"]
    assert [severity("camera", s) for s in ("offline", "degraded", "unstable")] == ["major", "minor", "minor"]
    assert worst(["minor", "critical", "major"]) == "critical"


def test_nvr_conditions_name_degraded_and_keep_unknown_apart() -> None:
    assert nvr_condition(nvr("degraded")) == "degraded"
    assert nvr_condition(nvr("online", unstable=True)) == "unstable"
    assert nvr_condition(nvr("stale")) == "up"  # late, not down
    assert nvr_condition(nvr("unknown")) == "unknown"  # after a hub restart: neither down nor up
    assert nvr_condition(nvr("offline", removed=True)) == "gone"


def test_a_camera_behind_a_down_nvr_cannot_be_seen() -> None:
    camera = GroupCamera(5, 1, "Gate 3", "offline", False)
    assert camera_condition(nvr("offline"), camera) == "unknown"
    assert camera_condition(nvr("online"), camera) == "offline"
    assert camera_condition(nvr("degraded"), GroupCamera(5, 1, "Gate 3", "degraded", False)) == "degraded"
    assert camera_condition(nvr("online"), GroupCamera(5, 1, "Gate 3", "online", True)) == "gone"
