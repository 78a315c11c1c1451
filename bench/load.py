"""Agent side of the load: N simulated NVR agents over real WebSockets in one asyncio process (pinned to the load CPU).

Every agent says hello, then sends heartbeats for as long as it lives. A change generator flips random cameras at R
changes/s (Poisson arrivals on an absolute timeline, so a slow send does not stretch the schedule) and an optional
burst sends K `offline` frames at once ("site blackout"). Every change is logged as (camera db id, new status,
time.time_ns() just before the frame is handed to the socket); the change number is its index in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from array import array
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import websockets
from benchutil import http_get

ONLINE, OFFLINE = 1, 0
STATUS_NAMES = {ONLINE: "online", OFFLINE: "offline"}


def api_cameras(port: int) -> list[dict[str, Any]]:
    """Every camera from the server's JSON API, page by page (the hub answers at most 500 rows per request; the
    reference answers all of them at once, without a total)."""
    rows: list[dict[str, Any]] = []
    while True:
        status, body, _, _ = http_get(port, f"/api/cameras?limit=500&offset={len(rows)}", timeout=120)
        if status != 200:
            raise RuntimeError(f"/api/cameras answered {status}")
        page = json.loads(body)
        rows.extend(page["cameras"])
        if not page["cameras"] or len(rows) >= page.get("total", len(rows)):
            return rows


@dataclass(frozen=True)
class FleetSpec:
    ws_url: str
    http_port: int
    token: str
    agents: int
    cameras: int
    seed: int = 1
    heartbeat: float | None = None  # None: the interval the hub announces in `welcome`
    connect_concurrency: int = 64


@dataclass(frozen=True)
class Schedule:
    t0_ns: int  # when the change generator starts (wall clock, ns)
    warmup: float
    window: float
    rate: float
    log_path: str
    burst: int = 0
    burst_at: float = 0.0  # seconds after t0


@dataclass
class SimAgent:
    index: int
    hostname: str
    ext_ids: list[str]
    ws: websockets.ClientConnection | None = None
    nvr_id: int = 0
    interval: float = 10.0
    errors: int = 0
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def hello(self) -> str:
        region = ("North", "South", "East", "West", "Central")[self.index % 5]
        site = f"{region} site {self.index // 5 + 1}"
        return json.dumps(
            {
                "type": "hello",
                "protocol": 1,
                "nvr": {
                    "hostname": self.hostname,
                    "device_name": f"{site} recorder",
                    "region": region,
                    "site": site,
                    "model": "NV-8000",
                    "firmware": "4.2.1",
                    "ip_address": f"10.{self.index // 250}.{self.index % 250}.2",
                },
                "cameras": [
                    {
                        "id": ext,
                        "name": f"{site} cam {n + 1}",
                        "ip_address": f"10.{self.index // 250}.{self.index % 250}.{n + 10}",
                        "status": "online",
                    }
                    for n, ext in enumerate(self.ext_ids)
                ],
            }
        )


class Fleet:
    def __init__(self, spec: FleetSpec) -> None:
        self.spec = spec
        self.agents = [
            SimAgent(i, f"bench-{i + 1:05d}", [f"cam{c + 1:03d}" for c in range(spec.cameras)])
            for i in range(spec.agents)
        ]
        # Filled by resolve(): every camera as (agent, ext id, db id), and the current status by db id.
        self.cameras: list[tuple[SimAgent, str, int]] = []
        self.status = bytearray()
        self.frames: dict[tuple[int, int], str] = {}

    async def connect(self) -> None:
        gate = asyncio.Semaphore(self.spec.connect_concurrency)

        async def one(agent: SimAgent) -> None:
            async with gate:
                for attempt in range(5):
                    try:
                        ws = await websockets.connect(
                            self.spec.ws_url,
                            additional_headers={"Authorization": f"Bearer {self.spec.token}"},
                            open_timeout=30,
                            ping_interval=None,
                            max_size=2**22,
                            compression=None,
                        )
                        break
                    except (OSError, websockets.WebSocketException, TimeoutError):
                        if attempt == 4:
                            raise
                        await asyncio.sleep(0.2 * (attempt + 1))
                await ws.send(agent.hello())
                welcome = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if welcome.get("type") != "welcome":
                    raise RuntimeError(f"{agent.hostname}: hub refused hello: {welcome}")
                agent.ws, agent.nvr_id = ws, int(welcome["nvr_id"])
                agent.interval = self.spec.heartbeat or float(welcome.get("heartbeat_interval", 10.0))
                agent.tasks = [asyncio.create_task(self._heartbeats(agent)), asyncio.create_task(self._read(agent))]

        await asyncio.gather(*(one(a) for a in self.agents))

    async def _heartbeats(self, agent: SimAgent) -> None:
        assert agent.ws is not None
        await asyncio.sleep(random.uniform(0, agent.interval))
        beat = json.dumps({"type": "heartbeat", "stats": {"uptime_s": 3600, "disk_free_pct": 61}})
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await agent.ws.send(beat)
                await asyncio.sleep(agent.interval)

    async def _read(self, agent: SimAgent) -> None:
        assert agent.ws is not None
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in agent.ws:
                if '"error"' in str(raw):
                    agent.errors += 1

    def resolve(self) -> None:
        """Camera db ids from the server's JSON API (one request for the whole fleet)."""
        ids = {(int(c["nvr_id"]), str(c["ext_id"])): int(c["id"]) for c in api_cameras(self.spec.http_port)}
        for agent in self.agents:
            for ext in agent.ext_ids:
                self.cameras.append((agent, ext, ids[(agent.nvr_id, ext)]))
        self.status = bytearray([ONLINE]) * (max((c[2] for c in self.cameras), default=0) + 1)
        for _, ext, db_id in self.cameras:
            for code, name in STATUS_NAMES.items():
                self.frames[(db_id, code)] = json.dumps({"type": "camera_status", "camera_id": ext, "status": name})

    async def run(self, schedule: Schedule) -> dict[str, Any]:
        """Generate the schedule's changes; returns the counts and writes the send log."""
        log_cam, log_status, log_time = array("i"), array("b"), array("q")
        burst_cams = {c[2] for c in self.cameras[: schedule.burst]}
        pool = [c for c in self.cameras if c[2] not in burst_cams]
        rnd = random.Random(self.spec.seed)
        end_ns = schedule.t0_ns + int((schedule.warmup + schedule.window) * 1e9)
        w0_ns = schedule.t0_ns + int(schedule.warmup * 1e9)
        burst_info: dict[str, Any] = {}
        stalls = 0

        async def send(agent: SimAgent, db_id: int, code: int) -> None:
            assert agent.ws is not None
            self.status[db_id] = code
            frame = self.frames[(db_id, code)]
            log_cam.append(db_id)
            log_status.append(code)
            log_time.append(time.time_ns())
            with contextlib.suppress(websockets.ConnectionClosed):
                await agent.ws.send(frame)

        async def steady() -> None:
            nonlocal stalls
            if schedule.rate <= 0 or not pool:
                return
            at = schedule.t0_ns / 1e9
            while True:
                at += rnd.expovariate(schedule.rate)
                if at * 1e9 >= end_ns:
                    return
                delay = at - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -0.05:
                    stalls += 1
                agent, _, db_id = pool[rnd.randrange(len(pool))]
                await send(agent, db_id, OFFLINE if self.status[db_id] == ONLINE else ONLINE)

        async def burst() -> None:
            if not schedule.burst:
                return
            delay = schedule.t0_ns / 1e9 + schedule.burst_at - time.time()
            await asyncio.sleep(max(0.0, delay))
            first = time.time_ns()
            # One task per NVR, as a real blackout would look: every agent reports its own cameras at once.
            by_agent: dict[int, list[tuple[SimAgent, int]]] = {}
            for agent, _, db_id in self.cameras[: schedule.burst]:
                by_agent.setdefault(agent.index, []).append((agent, db_id))

            async def report(items: list[tuple[SimAgent, int]]) -> None:
                for agent, db_id in items:
                    await send(agent, db_id, OFFLINE)

            await asyncio.gather(*(report(items) for items in by_agent.values()))
            burst_info.update(t0_ns=first, last_ns=time.time_ns(), cameras=sorted(burst_cams))

        started = time.time_ns()
        await asyncio.gather(steady(), burst())
        sent_total = len(log_time)
        in_window = sum(1 for t in log_time if w0_ns <= t < end_ns)
        with open(schedule.log_path, "wb") as f:
            array("q", [sent_total]).tofile(f)
            log_cam.tofile(f)
            log_status.tofile(f)
            log_time.tofile(f)
        return {
            "sent": sent_total,
            "sent_in_window": in_window,
            "achieved_rate": in_window / schedule.window if schedule.window else 0.0,
            "late_sends": stalls,
            "generator_s": (time.time_ns() - started) / 1e9,
            "final": bytes(self.status),
            "burst": burst_info,
            "agent_errors": sum(a.errors for a in self.agents),
        }

    async def flip(self, count: int) -> bytes:
        """Flip `count` cameras (spread over the fleet) at once, unlogged: what changes while browsers are away in a
        reconnect storm. Returns the status every camera should then show."""
        step = max(1, len(self.cameras) // max(1, count))
        picked = self.cameras[::step][:count]
        for agent, _ext, db_id in picked:
            code = OFFLINE if self.status[db_id] == ONLINE else ONLINE
            self.status[db_id] = code
            if agent.ws is not None:
                with contextlib.suppress(websockets.ConnectionClosed):
                    await agent.ws.send(self.frames[(db_id, code)])
        return bytes(self.status)

    async def close(self) -> None:
        for agent in self.agents:
            for task in agent.tasks:
                task.cancel()

        async def one(agent: SimAgent) -> None:
            if agent.ws is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(agent.ws.close(), 2)

        await asyncio.gather(*(one(a) for a in self.agents))


def read_log(path: str) -> tuple[array[int], array[int], array[int]]:
    """The send log written by Fleet.run: (camera db ids, statuses, send times in ns), in send order."""
    with open(path, "rb") as f:
        count = array("q")
        count.fromfile(f, 1)
        n = count[0]
        cams, statuses, times = array("i"), array("b"), array("q")
        cams.fromfile(f, n)
        statuses.fromfile(f, n)
        times.fromfile(f, n)
    return cams, statuses, times


async def _recv(conn: Connection) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, conn.recv)


async def _main(conn: Connection, spec: FleetSpec) -> None:
    fleet = Fleet(spec)
    started = time.monotonic()
    try:
        await fleet.connect()
        fleet.resolve()
    except Exception as exc:
        conn.send(("error", f"agents failed to start: {exc!r}"))
        await fleet.close()
        return
    conn.send(("ready", {"agents": len(fleet.agents), "cameras": len(fleet.cameras), "status": bytes(fleet.status),
                         "setup_s": time.monotonic() - started}))  # fmt: skip
    while True:
        command, arg = await _recv(conn)
        if command == "go":
            conn.send(("sent", await fleet.run(arg)))
        elif command == "flip":
            conn.send(("flipped", await fleet.flip(arg)))
        elif command == "close":
            await fleet.close()
            conn.send(("closed", None))
            return


def agents_main(conn: Connection, spec: FleetSpec) -> None:
    """Entry point of the agents process."""
    try:
        import uvloop

        uvloop.run(_main(conn, spec))
    except ImportError:
        asyncio.run(_main(conn, spec))
