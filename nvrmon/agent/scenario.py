"""Agent side, the demo's script: a mostly healthy fleet with incidents that recover, as a seeded state machine.

No I/O and no clock: `advance()` returns when the next actions happen (seconds since the start) and what they are,
so the simulator plays them in real time and a test steps through an hour at once.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

Key = tuple[int, int]  # (NVR index, camera index)

# Background alerts: what real recorders say now and then, at the severity an operator would give it.
ROUTINE_ALERTS = (
    ("info", "Firmware update available"),
    ("info", "Configuration backup completed"),
    ("warning", "Fan speed high"),
    ("warning", "Recording gap detected"),
)
INCIDENTS = (("reboot", 0.35), ("flapping", 0.25), ("disk", 0.2), ("power", 0.2))
FLAPS = 6  # status changes of a flapping camera before it settles (online)


@dataclass(frozen=True, slots=True)
class CameraChange:
    nvr: int
    camera: int
    status: str


@dataclass(frozen=True, slots=True)
class NvrOutage:
    """The NVR loses power or reboots: its agent disconnects and stays away `seconds`."""

    nvr: int
    seconds: float


@dataclass(frozen=True, slots=True)
class AlertRaised:
    nvr: int
    severity: str
    message: str
    camera: int | None = None


@dataclass(frozen=True, slots=True)
class DiskLevel:
    nvr: int
    free_pct: int


Action = CameraChange | NvrOutage | AlertRaised | DiskLevel


@dataclass(slots=True)
class Incident:
    kind: str
    started: float
    nvrs: tuple[int, ...]
    recovered: float | None = None


class Pool:
    """A set with O(1) add, remove and uniform random choice (30,000 cameras, a hundred picks a second)."""

    def __init__(self) -> None:
        self._items: list[Key] = []
        self._index: dict[Key, int] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Key) -> bool:
        return key in self._index

    def __iter__(self) -> Iterator[Key]:
        return iter(self._items)

    def add(self, key: Key) -> None:
        if key not in self._index:
            self._index[key] = len(self._items)
            self._items.append(key)

    def discard(self, key: Key) -> None:
        at = self._index.pop(key, None)
        if at is None:
            return
        last = self._items.pop()
        if at < len(self._items):
            self._items[at] = last
            self._index[last] = at

    def pick(self, rnd: random.Random) -> Key:
        return self._items[rnd.randrange(len(self._items))]


@dataclass(order=True)
class _Timed:
    at: float
    order: int
    run: Callable[[], list[Action]] = field(compare=False)


class Scenario:
    """Cameras fail and come back as a birth-death process: each change (`rate` a second, fleet-wide) is a recovery
    with the probability that holds the offline share near `target`, so a camera that went down comes back after a
    while. From `warmup` on, an incident every `incident_every` seconds on average: an NVR reboot, a site power cut
    (every NVR of one site, about a minute; one at a time), a flapping camera, a disk filling up; each recovers."""

    def __init__(
        self,
        cameras: Sequence[int],
        sites: Sequence[int],
        rate: float,
        seed: int | None = None,
        *,
        target: float = 0.012,
        incident_every: float | None = None,
        alert_every: float = 90.0,
        warmup: float = 60.0,
    ) -> None:
        self.random = random.Random(seed)
        self.rate = rate
        self.target = target
        self.sites = list(sites)
        self.now = 0.0
        self.up, self.down = Pool(), Pool()
        self.held: set[Key] = set()  # cameras an incident is playing with
        self.nvr_down: set[int] = set()
        self.busy: set[int] = set()  # NVRs in an incident
        self.incidents: list[Incident] = []
        self._timeline: list[_Timed] = []
        self._order = 0
        for nvr, count in enumerate(cameras):
            for camera in range(count):
                self.up.add((nvr, camera))
        if rate > 0 and len(self.up):
            # Start in the steady state rather than all green: the first minutes look like every other minute.
            for _ in range(round(len(self.up) * target)):
                key = self.up.pick(self.random)
                self.up.discard(key)
                self.down.add(key)
            # Incidents scale with the fleet: about one every two minutes for 50 NVRs, at most one per 20 s.
            every = incident_every or max(20.0, 6000.0 / max(1, len(cameras)))
            self._at(self.random.expovariate(rate), self._camera_change)
            self._at(warmup + self.random.expovariate(1 / every), lambda: self._incident(every))
            self._at(warmup + self.random.expovariate(1 / alert_every), lambda: self._routine_alert(alert_every))

    def is_down(self, key: Key) -> bool:
        return key in self.down

    def offline_share(self) -> float:
        """Cameras not seen online: their own status, or their NVR is down."""
        total = len(self.up) + len(self.down) + len(self.held)
        dark = sum(1 for key in [*self.up, *self.held] if key[0] in self.nvr_down) + len(self.down)
        return dark / total if total else 0.0

    def advance(self) -> tuple[float, list[Action]]:
        """The next moment something happens and what; (inf, []) when nothing ever will (rate 0)."""
        while self._timeline:
            timed = heapq.heappop(self._timeline)
            self.now = timed.at
            actions = timed.run()
            if actions:
                return timed.at, actions
        return float("inf"), []

    # -- the steady background ----------------------------------------------------------------------------------

    def _at(self, at: float, run: Callable[[], list[Action]]) -> None:
        self._order += 1
        heapq.heappush(self._timeline, _Timed(at, self._order, run))

    def _camera_change(self) -> list[Action]:
        self._at(self.now + self.random.expovariate(self.rate), self._camera_change)
        off, on = len(self.down), len(self.up)
        weight = off * (1 - self.target)
        recover = weight / (weight + on * self.target) if weight + on else 0.0
        pool = self.down if self.random.random() < recover else self.up
        for _ in range(3):  # a camera of an NVR that is down can't change: pick again
            if not len(pool):
                break
            key = pool.pick(self.random)
            if key[0] in self.nvr_down:
                continue
            status = "online" if pool is self.down else "offline"
            pool.discard(key)
            (self.up if status == "online" else self.down).add(key)
            return [CameraChange(key[0], key[1], status)]
        return []

    def _routine_alert(self, every: float) -> list[Action]:
        self._at(self.now + self.random.expovariate(1 / every), lambda: self._routine_alert(every))
        nvr = self._free_nvr()
        if nvr is None:
            return []
        severity, message = self.random.choice(ROUTINE_ALERTS)
        return [AlertRaised(nvr, severity, message)]

    def _free_nvr(self) -> int | None:
        free = [n for n in range(len(self.sites)) if n not in self.busy and n not in self.nvr_down]
        return self.random.choice(free) if free else None

    # -- incidents ----------------------------------------------------------------------------------------------

    def _incident(self, every: float) -> list[Action]:
        self._at(self.now + self.random.expovariate(1 / every), lambda: self._incident(every))
        kind = self.random.choices([k for k, _ in INCIDENTS], [w for _, w in INCIDENTS])[0]
        if kind == "power":
            return self._power_cut()
        nvr = self._free_nvr()
        if nvr is None:
            return []
        if kind == "reboot":
            return self._outage("reboot", (nvr,), self.random.uniform(20, 45))
        if kind == "disk":
            return self._disk(nvr)
        return self._flapping(nvr)

    def _start(self, kind: str, nvrs: tuple[int, ...]) -> Incident:
        incident = Incident(kind, self.now, nvrs)
        self.incidents.append(incident)
        self.busy.update(nvrs)
        return incident

    def _end(self, incident: Incident) -> None:
        incident.recovered = self.now
        self.busy.difference_update(incident.nvrs)

    def _power_cut(self) -> list[Action]:
        if any(i.kind == "power" and i.recovered is None for i in self.incidents):
            return []  # one site at a time: two at once would be a regional disaster, not a demo
        site = self.sites[self.random.randrange(len(self.sites))]
        nvrs = tuple(n for n, s in enumerate(self.sites) if s == site and n not in self.busy and n not in self.nvr_down)
        return self._outage("power", nvrs, self.random.uniform(45, 90)) if nvrs else []

    def _outage(self, kind: str, nvrs: tuple[int, ...], seconds: float) -> list[Action]:
        incident = self._start(kind, nvrs)
        self.nvr_down.update(nvrs)
        left = set(nvrs)
        actions: list[Action] = []
        for nvr in nvrs:
            away = seconds + self.random.uniform(0, 5)  # recorders boot at slightly different speeds
            actions.append(NvrOutage(nvr, away))

            def back(nvr: int = nvr) -> list[Action]:
                self.nvr_down.discard(nvr)
                left.discard(nvr)
                if not left:
                    self._end(incident)
                text = "Back after a power cut at its site" if kind == "power" else "Restarted after a watchdog reset"
                return [AlertRaised(nvr, "warning" if kind == "power" else "info", text)]

            self._at(self.now + away, back)
        return actions

    def _disk(self, nvr: int) -> list[Action]:
        incident = self._start("disk", (nvr,))

        def pruned() -> list[Action]:
            self._end(incident)
            return [DiskLevel(nvr, 38), AlertRaised(nvr, "info", "Old recordings pruned; disk usage back to 62%")]

        self._at(self.now + self.random.uniform(120, 300), pruned)
        return [DiskLevel(nvr, 7), AlertRaised(nvr, "warning", "Disk usage above 90%")]

    def _flapping(self, nvr: int) -> list[Action]:
        cameras = [key for key in (*self.up, *self.down) if key[0] == nvr and key not in self.held]
        if not cameras:
            return []
        key = self.random.choice(cameras)
        incident = self._start("flapping", (nvr,))
        self.up.discard(key)
        self.down.discard(key)
        self.held.add(key)
        flips = [0]

        def flip() -> list[Action]:
            flips[0] += 1
            if flips[0] < FLAPS:
                self._at(self.now + self.random.uniform(4, 12), flip)
                return [CameraChange(nvr, key[1], "offline" if flips[0] % 2 else "online")]
            self.held.discard(key)
            self.up.add(key)
            self._end(incident)
            return [CameraChange(nvr, key[1], "online")]

        self._at(self.now + self.random.uniform(1, 3), flip)
        return [AlertRaised(nvr, "warning", "Video signal unstable", key[1])]
