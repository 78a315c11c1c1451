"""A fleet of simulated NVR agents over real WebSockets: the demo, the tests and the benchmark drive the hub with it."""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nvrmon.agent.link import Link
from nvrmon.agent.scenario import Action, CameraChange, DiskLevel, NvrOutage, Scenario
from nvrmon.agent.simfacts import NvrProfile, SimFacts, health

REGIONS = ("North", "South", "East", "West", "Central")
SITE_SIZE = 3  # recorders per simulated site
HEALTH_EVERY = 60.0  # seconds between one NVR's health messages (the contract's "at least every 60 s")


class Refused(Exception):
    """The hub refused the agent token; retrying with the same token can never succeed."""


MODELS = ("NV-8000", "NV-4200", "Hikari X16", "Vista R32")


@dataclass
class SimCamera:
    id: str
    name: str
    ip_address: str
    status: str = "online"
    reason: str = ""  # why it is offline, in the words a prober would use
    detail: dict[str, Any] = field(default_factory=dict)  # codec, resolution, fps as a probe measured them

    def wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"id": self.id, "name": self.name, "ip_address": self.ip_address, "status": self.status}
        if self.reason and self.status == "offline":
            wire["reason"] = self.reason
        if self.detail:
            wire["detail"] = self.detail
        return wire


@dataclass
class SimNvr:
    """One simulated agent over the shared link (nvrmon/agent/link.py): reconnects with backoff and jitter, numbers
    and replays its frames, and its hello carries its whole state."""

    url: str
    token: str
    hostname: str
    region: str
    site: str
    cameras: list[SimCamera]
    model: str = MODELS[0]
    ip_address: str = ""
    device_name: str = ""
    disk_free_pct: int = 61
    profile: NvrProfile | None = None  # its health facts; None: it sends no health messages
    offline_since: dict[str, float] = field(default_factory=dict)  # camera id -> when it went offline
    link: Link = field(init=False)

    def __post_init__(self) -> None:
        self.link = Link(self.url, self.token, self.hostname, self.hello, stats=self.stats)

    def hello(self) -> dict[str, Any]:
        return {
            "type": "hello",
            "protocol": 1,
            "nvr": {
                "hostname": self.hostname,
                "device_name": self.device_name or f"{self.site} recorder",
                "region": self.region,
                "site": self.site,
                "model": self.model,
                "firmware": "4.2.1",
                "ip_address": self.ip_address,
            },
            "cameras": [c.wire() for c in self.cameras],
        }

    def stats(self, connected_for: float) -> dict[str, Any]:
        return {"uptime_s": round(connected_for) + 3600, "disk_free_pct": self.disk_free_pct}

    def set_camera(self, camera: SimCamera, status: str, reason: str = "") -> None:
        camera.status = status
        camera.reason = reason if status == "offline" else ""
        if status == "offline":
            self.offline_since[camera.id] = round(time.time(), 1)
        else:
            self.offline_since.pop(camera.id, None)
        frame: dict[str, Any] = {"type": "camera_status", "camera_id": camera.id, "status": status}
        if camera.reason:
            frame["reason"] = camera.reason
        if camera.detail:
            frame["detail"] = camera.detail
        self.send(frame)

    def health(self) -> dict[str, Any] | None:
        return health(self.profile, self.disk_free_pct, self.cameras, self.offline_since) if self.profile else None

    # The link's state, as the fleet and the tests read it.
    @property
    def connected(self) -> asyncio.Event:
        return self.link.connected

    @property
    def attempted(self) -> asyncio.Event:
        return self.link.attempted

    @property
    def nvr_id(self) -> int | None:
        return self.link.nvr_id

    @property
    def acked(self) -> int:
        return self.link.acked

    @property
    def unacked(self) -> deque[tuple[int, str]]:
        return self.link.unacked

    @property
    def hub_degraded(self) -> bool:
        return self.link.hub_degraded

    @property
    def last_error(self) -> str:
        return self.link.last_error

    @property
    def refused(self) -> str:
        return self.link.refused

    @property
    def removed(self) -> bool:
        return self.link.removed

    def send(self, frame: dict[str, Any]) -> None:
        self.link.send(frame)

    def drop(self, seconds: float) -> None:
        """Simulate a power cut: close the connection and stay away for `seconds`."""
        self.link.drop(seconds)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        await self.link.run(stop)


class Fleet:
    """N simulated NVRs played by a Scenario: camera changes at `rate` per second (fleet-wide, about 1 % of cameras
    down at any time) and, now and then, an incident that recovers (nvrmon.agent.scenario)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        nvrs: int,
        cameras: int = 8,
        rate: float = 2.0,
        regions: Sequence[str] = REGIONS,
        prefix: str = "nvr",
        seed: int | None = None,
    ) -> None:
        self.rate = rate
        self.url = url
        self.sent = 0  # changes handed to agents (camera statuses and alerts)
        self.agents: list[SimNvr] = []
        self.facts = SimFacts(seed)
        sites: list[int] = []
        for n in range(nvrs):
            region = regions[n % len(regions)]
            # A site has SITE_SIZE recorders (NVRs n, n + R, n + 2R of one region), so a power cut takes several.
            number = n // (len(regions) * SITE_SIZE)
            sites.append(number * len(regions) + n % len(regions))
            site = f"{region} site {number + 1}"
            recorder = n // len(regions) % SITE_SIZE + 1
            cams = [
                SimCamera(f"cam{c + 1:02d}", camera_name(c, recorder), f"10.{n // 250}.{n % 250}.{c + 10}")
                for c in range(cameras)
            ]
            hostname = f"{prefix}-{region.lower().replace(' ', '-')}-{n + 1:04d}"
            model = MODELS[n % len(MODELS)]
            agent = SimNvr(url, token, hostname, region, site, cams, model, f"10.{n // 250}.{n % 250}.2")
            agent.device_name = f"{site} recorder {recorder}"
            agent.profile = self.facts.profile(cameras)
            for camera in cams:
                camera.detail = self.facts.detail()
            self.agents.append(agent)
        self.scenario = Scenario([cameras] * nvrs, sites, rate, seed)
        for n, agent in enumerate(self.agents):
            for c, camera in enumerate(agent.cameras):
                if self.scenario.is_down((n, c)):
                    camera.status = "offline"
                    camera.reason = self.facts.reason()

    async def run(
        self, duration: float | None = None, report: Callable[[str], None] | None = None, every: float = 5.0
    ) -> None:
        """Run the agents (until `duration` passes, or forever); `report` hears how it goes every `every` seconds and
        at once when the hub can't be reached. Raises Refused when the hub refuses the token."""
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        try:
            if self.agents:
                # One agent tries first, so a wrong token is one refused connection at the hub, not one per NVR.
                tasks.append(asyncio.create_task(self.agents[0].run(stop)))
                await self.agents[0].attempted.wait()
                self._check_refused()
            tasks += [asyncio.create_task(agent.run(stop)) for agent in self.agents[1:]]
            if self.rate > 0:
                tasks.append(asyncio.create_task(self._changes()))
            tasks.append(asyncio.create_task(self._health()))
            watch = asyncio.create_task(self._watch(report, every))
            done, _ = await asyncio.wait([watch], timeout=duration)
            if done:
                watch.result()  # Refused
            else:
                watch.cancel()
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _check_refused(self) -> None:
        refused = next((agent for agent in self.agents if agent.refused), None)
        if refused is not None:
            raise Refused(f"the hub refused the agent token ({refused.refused}) for {refused.hostname}")

    def progress(self) -> str:
        """One line for the operator: how many agents are connected and how many changes went out."""
        connected = sum(agent.connected.is_set() for agent in self.agents)
        live = [agent for agent in self.agents if not agent.removed]
        line = f"{connected}/{len(live)} NVRs connected, {self.sent} changes sent"
        if len(live) < len(self.agents):
            line += f" ({len(self.agents) - len(live)} removed at the hub)"
        failing = next((agent.last_error for agent in self.agents if agent.last_error), "")
        if connected < len(live) and failing:
            line += f"; hub not reachable at {self.url} ({failing}), retrying with backoff"
        return line

    async def _watch(self, report: Callable[[str], None] | None, every: float) -> None:
        told_unreachable = False
        next_report = time.monotonic() + every
        while True:
            await asyncio.sleep(0.2)
            self._check_refused()
            if report is None:
                continue
            unreachable = not any(a.connected.is_set() for a in self.agents) and any(a.last_error for a in self.agents)
            if unreachable and not told_unreachable or time.monotonic() >= next_report:
                report(self.progress())
                next_report = time.monotonic() + every
            told_unreachable = unreachable

    async def _changes(self) -> None:
        """Play the scenario in real time; a hub that is slow to take frames only delays what follows."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        while True:
            at, actions = self.scenario.advance()
            if at == float("inf"):
                return
            delay = at - (loop.time() - start)
            if delay > 0:
                await asyncio.sleep(delay)
            for action in actions:
                self._play(action)

    async def _health(self) -> None:
        """Each NVR's health message every HEALTH_EVERY seconds, the first soon after the start, spread out so a
        large fleet sends them evenly (at most one per NVR per HEALTH_EVERY: the benchmark's load shape)."""
        loop = asyncio.get_running_loop()
        due = [loop.time() + random.uniform(1.0, 15.0) for _ in self.agents]
        while True:
            await asyncio.sleep(1.0)
            now = loop.time()
            for n, agent in enumerate(self.agents):
                if due[n] <= now and agent.connected.is_set():
                    frame = agent.health()
                    if frame is not None:
                        agent.send(frame)
                    due[n] = now + HEALTH_EVERY

    def _play(self, action: Action) -> None:
        agent = self.agents[action.nvr]
        if isinstance(action, CameraChange):
            reason = self.facts.reason() if action.status == "offline" else ""
            agent.set_camera(agent.cameras[action.camera], action.status, reason)
            self.sent += 1
        elif isinstance(action, NvrOutage):
            agent.drop(action.seconds)
        elif isinstance(action, DiskLevel):
            agent.disk_free_pct = action.free_pct
        else:
            frame: dict[str, Any] = {"type": "alert", "severity": action.severity, "message": action.message}
            if action.camera is not None:
                frame["camera_id"] = agent.cameras[action.camera].id
            agent.send(frame)
            self.sent += 1


# Where cameras hang, as operators name them: short, the distinguishing word first (tiles truncate long names).
PLACES = ("Entrance", "Lobby", "Car park", "Loading dock", "Corridor", "Stairs", "Server room", "Gate",
          "Reception", "Warehouse", "Yard", "Roof", "Office", "Canteen", "Fence", "Back door")  # fmt: skip


def camera_name(index: int, recorder: int) -> str:
    """`Lobby 2` for the second recorder of a site's lobby camera; a 17th camera becomes `Entrance 2b`, and so on."""
    place = PLACES[index % len(PLACES)]
    lap = index // len(PLACES)
    return f"{place} {recorder}" + (chr(ord("a") + lap) if lap else "")
