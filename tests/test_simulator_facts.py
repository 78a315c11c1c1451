"""The simulator's device truth: seeded offline reasons, stream detail and health messages the hub accepts."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from nvrmon import protocol
from nvrmon.agent.scenario import CameraChange
from nvrmon.agent.simfacts import REASONS
from nvrmon.agent.simulator import Fleet


def fleet(seed: int, nvrs: int = 120) -> Fleet:
    return Fleet("ws://127.0.0.1:9/ws/agent", "t", nvrs=nvrs, cameras=8, rate=2.0, seed=seed)


def facts(made: Fleet) -> list[Any]:
    """Everything seeded about the fleet, without the wall-clock timestamps."""
    return [(a.profile and (a.profile.disks, a.profile.clock_skew_s, sorted(a.profile.not_recording)),
             [(c.status, c.reason, c.detail) for c in a.cameras]) for a in made.agents]  # fmt: skip


def test_simulator_facts_are_seeded_and_deterministic() -> None:
    assert facts(fleet(7)) == facts(fleet(7))
    assert facts(fleet(7)) != facts(fleet(8))


def test_simulator_frames_with_facts_are_accepted_by_the_protocol() -> None:
    made = fleet(3)
    offline = [c for a in made.agents for c in a.cameras if c.status == "offline"]
    assert offline and all(c.reason in dict(REASONS) for c in offline)
    for agent in made.agents:
        hello = protocol.parse_message(agent.hello(), max_cameras=1024)
        assert isinstance(hello, protocol.Hello)
        health = protocol.parse_message({**agent.health(), "seq": 1}, max_cameras=1024)  # type: ignore[dict-item]
        assert isinstance(health, protocol.Health) and len(health.cameras) == 8
        assert len(json.dumps(agent.health())) < 8_000  # well inside the hub's frame limit
    made._play(CameraChange(0, 1, "offline"))
    _, text = made.agents[0].unacked[-1]
    status = protocol.parse_message(json.loads(text), max_cameras=1024)
    assert isinstance(status, protocol.CameraStatus) and status.reason in dict(REASONS)
    assert status.detail.codec in ("H264", "H265")


def test_simulator_health_has_a_realistic_mix() -> None:
    made = fleet(5, nvrs=400)
    frames = [agent.health() or {} for agent in made.agents]
    recording = Counter(c["recording"] for f in frames for c in f["cameras"])
    assert recording["recording"] > 0.9 * sum(recording.values()) and recording["not_recording"] > 0
    skews = [abs(f["nvr"]["clock_skew_s"]) for f in frames]
    assert sum(s > 60 for s in skews) >= 1 and sum(s < 2 for s in skews) > 0.9 * len(skews)
    states = Counter(d["state"] for f in frames for d in f["nvr"]["disks"])
    assert states["ok"] > 0 and states["failing"] > 0
    reasons = Counter(c.reason for a in made.agents for c in a.cameras if c.status == "offline")
    assert len(reasons) >= 3, reasons


def test_simulator_cameras_keep_their_own_clocks_when_their_nvr_is_off() -> None:
    made = fleet(5, nvrs=400)
    frames = [agent.health() or {} for agent in made.agents]
    skewed = [f for f in frames if abs(f["nvr"]["clock_skew_s"]) > 60]
    assert skewed  # an NVR with a wrong clock is one degraded device; its cameras' clocks are their own
    assert all(abs(c["clock_skew_s"]) < 1 for f in skewed for c in f["cameras"])
