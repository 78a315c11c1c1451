"""Severity and device conditions as the engine sees them (degraded comes from the health work; named here already)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nvrmon.alerts.actions import Alerts
from nvrmon.alerts.engine import camera_condition, nvr_condition
from nvrmon.incidents import severity, worst
from nvrmon.store.database import Database
from nvrmon.store.incidents import GroupCamera, GroupNvr
from nvrmon.store.transaction import Changes


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


@pytest.mark.anyio
async def test_the_notifiers_doorbell_rings_only_for_commits_that_changed_incidents(tmp_path: Path) -> None:
    database = await Database.open(tmp_path / "hub.db")
    try:
        alerts = Alerts(database)
        alerts.published(Changes(seq=3, nvr_ids={1}))
        assert not alerts.committed.is_set()
        alerts.published(Changes(seq=4, incident_ids={7}))
        assert alerts.committed.is_set()
    finally:
        await database.close()
