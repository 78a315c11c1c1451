"""The demo fleet's script, stepped through a simulated hour: mostly healthy, and every incident recovers."""

from __future__ import annotations

import statistics

import pytest

from nvrmon.agent.scenario import AlertRaised, CameraChange, NvrOutage, Scenario
from nvrmon.agent.simulator import SITE_SIZE, Fleet

HOUR = 3600.0


def scenario(nvrs: int, cameras: int, rate: float, seed: int) -> Scenario:
    # The simulator's own layout (sites of SITE_SIZE recorders), without opening a socket.
    fleet = Fleet("ws://127.0.0.1:9/ws/agent", "t", nvrs=nvrs, cameras=cameras, rate=rate, seed=seed)
    assert len(set(fleet.scenario.sites)) * SITE_SIZE >= nvrs > len(set(fleet.scenario.sites))
    return fleet.scenario


def play(script: Scenario, until: float, every: float = 10.0) -> tuple[list[float], list[tuple[float, object]]]:
    """Step the script to `until` (no real time); the offline share every `every` seconds, and what happened."""
    shares: list[float] = []
    happened: list[tuple[float, object]] = []
    sample = every
    while True:
        at, actions = script.advance()
        while at >= sample and sample <= until:
            shares.append(script.offline_share())
            sample += every
        happened += [(at, action) for action in actions]  # (the last one is past `until`: the state includes it)
        if at > until:
            return shares, happened


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_fleet_stays_mostly_healthy_for_an_hour(seed: int) -> None:
    script = scenario(200, 16, 20.0, seed)  # the README's `nvrmon simulate` fleet
    shares, happened = play(script, HOUR)
    assert min(shares) >= 0.005 and max(shares) <= 0.05, (min(shares), max(shares))
    changes = sum(isinstance(a, CameraChange) for _, a in happened)
    assert 0.9 * 20 * HOUR <= changes <= 1.1 * 20 * HOUR  # --rate is still camera changes per second
    kinds = {i.kind for i in script.incidents}
    assert kinds == {"reboot", "power", "disk", "flapping"}, kinds


def test_the_demo_fleet_is_healthy_on_average_and_incidents_recover() -> None:
    script = scenario(50, 8, 2.0, 7)  # `nvrmon serve --demo 50`
    shares, happened = play(script, HOUR)
    assert 0.005 <= statistics.mean(shares) <= 0.05 and statistics.median(shares) <= 0.03
    assert script.incidents and all(i.started >= 60 for i in script.incidents)  # starts calm
    play(script, HOUR + 600)  # ten more minutes: whatever was under way by the hour is over
    assert all(i.recovered is not None for i in script.incidents if i.started < HOUR)
    outages = [a for _, a in happened if isinstance(a, NvrOutage)]
    assert outages and all(15 <= a.seconds <= 100 for a in outages)


def test_a_camera_that_went_down_comes_back() -> None:
    script = scenario(100, 8, 5.0, 4)
    _, happened = play(script, HOUR)
    last: dict[tuple[int, int], tuple[float, str]] = {}
    for at, action in happened:
        if isinstance(action, CameraChange):
            last[(action.nvr, action.camera)] = (at, action.status)
    stuck = [key for key, (at, status) in last.items() if status == "offline" and at < HOUR - 900]
    assert not stuck, stuck  # nothing down for the last quarter of an hour
    assert all(script.is_down(k) == (s == "offline") for k, (_, s) in last.items() if k not in script.held)


def test_alerts_carry_sensible_severities() -> None:
    _, happened = play(scenario(200, 4, 5.0, 5), HOUR)
    alerts = {(a.message, a.severity) for _, a in happened if isinstance(a, AlertRaised)}
    assert ("Firmware update available", "info") in alerts and ("Fan speed high", "warning") in alerts
    assert {s for _, s in alerts} <= {"info", "warning"}  # nothing in a healthy demo is an error


def test_the_script_is_the_same_under_the_same_seed() -> None:
    first = play(scenario(30, 4, 10.0, 9), 600)
    assert first == play(scenario(30, 4, 10.0, 9), 600)
    assert first != play(scenario(30, 4, 10.0, 10), 600)


def test_a_rate_of_zero_changes_nothing() -> None:
    script = scenario(10, 4, 0.0, 1)
    assert script.advance() == (float("inf"), []) and script.offline_share() == 0.0
