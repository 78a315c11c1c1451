"""A fleet of simulated NVR agents over real WebSockets: the demo, the tests and the benchmark drive the hub with it."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.exceptions import InvalidStatus

from nvrmon.agent.scenario import Action, CameraChange, DiskLevel, NvrOutage, Scenario

log = logging.getLogger("nvrmon.agent.simulator")

REGIONS = ("North", "South", "East", "West", "Central")
SITE_SIZE = 3  # recorders per simulated site
REMOVED_CLOSE = 4004  # an admin removed this NVR from the hub: reconnecting would register it again
REFUSED_STATUSES = (401, 403)  # the hub refuses the upgrade itself: a wrong, revoked or expired token


class Refused(Exception):
    """The hub refused the agent token; retrying with the same token can never succeed."""


MODELS = ("NV-8000", "NV-4200", "Hikari X16", "Vista R32")


@dataclass
class SimCamera:
    id: str
    name: str
    ip_address: str
    status: str = "online"

    def wire(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "ip_address": self.ip_address, "status": self.status}


@dataclass
class SimNvr:
    """One simulated agent, and the reference for a reliable one: it reconnects with exponential backoff and jitter,
    numbers its frames within a session, keeps them until the hub acknowledges them, and after a reconnect replays
    exactly those the hub reports it never committed (welcome.last_seq). The hello carries its whole state anyway."""

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
    heartbeat: float = 10.0
    nvr_id: int | None = None
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    offline_for: float = 0.0
    _drop: asyncio.Event = field(default_factory=asyncio.Event)
    session: str = field(default_factory=lambda: f"{time.time_ns():x}-{random.getrandbits(32):08x}")
    seq: int = 0
    acked: int = 0
    # Frames not yet acknowledged, oldest first; bounded: past this the oldest go (the next hello repairs the state).
    unacked: deque[tuple[int, str]] = field(default_factory=lambda: deque(maxlen=10_000))
    # Set by an error `storage_unavailable` until the next ack: the hub holds (or lost) the frames sent, not stored.
    hub_degraded: bool = False
    # Frames not yet written on this connection; never more than `unacked` holds (the same bound), so a hub that stops
    # reading (backpressure, a full disk) delays frames but never loses them from the connection.
    _unsent: deque[str] = field(default_factory=lambda: deque(maxlen=10_000))
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    # What the last connection attempt ran into, for the operator: "" once connected; `refused` ends the agent.
    last_error: str = ""
    refused: str = ""
    removed: bool = False
    attempted: asyncio.Event = field(default_factory=asyncio.Event)  # set after the first attempt, however it went

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
            "session": self.session,
        }

    def set_camera(self, camera: SimCamera, status: str) -> None:
        camera.status = status
        self.send({"type": "camera_status", "camera_id": camera.id, "status": status})

    def drop(self, seconds: float) -> None:
        """Simulate a power cut: close the connection and stay away for `seconds`."""
        self.offline_for = seconds
        self._drop.set()

    async def _wait_drop(self) -> None:
        await self._drop.wait()

    def send(self, frame: dict[str, Any]) -> None:
        """Number the frame and keep it until acknowledged; send now if connected, else after the next welcome."""
        self.seq += 1
        text = json.dumps({**frame, "seq": self.seq})
        self.unacked.append((self.seq, text))
        if self.connected.is_set():
            self._unsent.append(text)
            self._wake.set()

    def _acknowledged(self, seq: int) -> None:
        self.acked = max(self.acked, seq)
        self.hub_degraded = False
        while self.unacked and self.unacked[0][0] <= seq:
            self.unacked.popleft()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        attempt = 0
        while stop is None or not stop.is_set():
            if self.offline_for:
                await asyncio.sleep(self.offline_for)
                self.offline_for = 0.0
                self._drop.clear()
            try:
                async with websockets.connect(
                    self.url,
                    additional_headers={"Authorization": f"Bearer {self.token}"},
                    open_timeout=10,
                    max_size=2**20,
                ) as ws:
                    await ws.send(json.dumps(self.hello()))
                    welcome = json.loads(await ws.recv())
                    if welcome.get("type") != "welcome":
                        self.hub_degraded = welcome.get("code") == "storage_unavailable"  # then 1013: back off
                        raise ConnectionError(f"hub refused hello: {welcome}")
                    self.nvr_id = welcome["nvr_id"]
                    self.last_error = ""
                    self.heartbeat = float(welcome.get("heartbeat_interval", self.heartbeat))
                    self._acknowledged(int(welcome.get("last_seq", 0)))
                    attempt = 0
                    self._unsent.extend(text for _, text in self.unacked)  # replay what the hub never committed
                    self._wake.set()
                    self.connected.set()
                    self.attempted.set()
                    await self._session(ws)
                    if ws.close_code == REMOVED_CLOSE:
                        log.info("%s: removed from the hub; this agent stops", self.hostname)
                        self.removed = True
                        return
            except asyncio.CancelledError:
                raise
            except InvalidStatus as exc:
                code = exc.response.status_code
                self.last_error = f"HTTP {code}"
                if code in REFUSED_STATUSES:
                    self.refused = f"HTTP {code}"
                    self.attempted.set()
                    return
            except Exception as exc:  # any network failure: back off and reconnect
                log.debug("%s: connection lost: %s", self.hostname, exc)
                self.last_error = str(exc) or type(exc).__name__
            finally:
                self.connected.clear()
                self._unsent.clear()
            self.attempted.set()
            if self.offline_for:
                continue
            attempt += 1
            await asyncio.sleep(min(30.0, 0.5 * 2 ** min(attempt, 6)) * random.uniform(0.7, 1.3))

    async def _session(self, ws: websockets.ClientConnection) -> None:
        up_since = time.monotonic()

        async def beat() -> None:
            while True:
                await asyncio.sleep(self.heartbeat * random.uniform(0.9, 1.0))
                stats = {"uptime_s": round(time.monotonic() - up_since) + 3600, "disk_free_pct": self.disk_free_pct}
                await ws.send(json.dumps({"type": "heartbeat", "stats": stats}))

        async def drain_incoming() -> None:
            async for raw in ws:
                frame = json.loads(raw)
                if frame.get("type") == "ack":
                    self._acknowledged(int(frame["seq"]))
                elif frame.get("type") == "error" and frame.get("code") == "storage_unavailable":
                    # Retryable: keep every unacknowledged frame; the hub stores what it holds once it can, and
                    # whatever it lost is replayed after the next welcome (welcome.last_seq).
                    if not self.hub_degraded:
                        log.info("%s: hub cannot store now; keeping %d frames", self.hostname, len(self.unacked))
                    self.hub_degraded = True
                elif frame.get("type") == "error":
                    log.warning("%s: hub says %s: %s", self.hostname, frame.get("code"), frame.get("message"))

        async def forward() -> None:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._unsent:
                    await ws.send(self._unsent.popleft())

        tasks = [asyncio.create_task(t()) for t in (beat, drain_incoming, forward)]
        tasks.append(asyncio.create_task(self._wait_drop()))
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


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
            self.agents.append(agent)
        self.scenario = Scenario([cameras] * nvrs, sites, rate, seed)
        for n, agent in enumerate(self.agents):
            for c, camera in enumerate(agent.cameras):
                if self.scenario.is_down((n, c)):
                    camera.status = "offline"

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

    def _play(self, action: Action) -> None:
        agent = self.agents[action.nvr]
        if isinstance(action, CameraChange):
            agent.set_camera(agent.cameras[action.camera], action.status)
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
