"""Cluster benchmark: 1 hub on SQLite, 1 hub on PostgreSQL and 2 hubs on one PostgreSQL database, same load, one run.

    python3 bench/cluster.py                              # 200 agents, 100 changes/s, 200 browsers, 20 s each
    python3 bench/cluster.py --configs sqlite-1,pg-2      # some configurations only
    python3 bench/cluster.py --json bench/cluster.json --markdown bench/CLUSTER.md
    python3 bench/cluster.py --tiny --json OUT            # a few seconds; what tests/test_bench_cluster.py runs

Each configuration gets fresh hub processes and a fresh database (a temporary SQLite file, or a new PostgreSQL
database `nvrmon_b_<random>` dropped WITH (FORCE) afterwards) and the same load: S real WebSocket agents flipping
cameras at R changes/s fleet-wide and B SSE browsers (raw /events streams with a viewer's session cookie) on the
cameras list. With 2 hubs, agents and browsers are split half and half over them (agent i and browser i on hub
i mod 2), so every change reaches half the browsers through the other hub (LISTEN/NOTIFY doorbell, then a store
read). See bench/CLUSTER.md for what is measured and the last run's figures.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import multiprocessing as mp
import os
import random
import re
import secrets
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, cast

from benchutil import COOKIE_ENV, free_port, http_get, login, machine, percentile, raise_fd_limit, stall_probe

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TOKEN = "bench-cluster-agent-token"
USER, PASSWORD = "bench", "bench-viewer-password"
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CONFIGS: dict[str, tuple[str, int]] = {"sqlite-1": ("sqlite", 1), "pg-1": ("postgresql", 1), "pg-2": ("postgresql", 2)}
CTX = mp.get_context("fork")  # children start from this process's state: no re-import, no event loop running
CLK_TCK = os.sysconf("SC_CLK_TCK")
ROW = re.compile(rb'id="camera-(\d+)"[^>]*data-status="(\w+)"')
EVENT_ID = re.compile(rb"(?m)^id: (\S+)")
ONLINE, OFFLINE, OTHER = 1, 0, 2
CODES = {b"online": ONLINE, b"offline": OFFLINE}


@dataclass(frozen=True)
class Load:
    agents: int = 200
    cameras: int = 4  # per agent; the cameras list shows at most 1,000 rows (per=1000), so agents x cameras <= 1000
    rate: float = 100.0
    browsers: int = 200
    seconds: float = 20.0
    warmup: float = 3.0
    drain: float = 15.0
    seed: int = 1

    def describe(self, rates: list[float] | None = None) -> str:
        rate = "/".join(f"{r:g}" for r in rates or [self.rate])
        return (
            f"{self.agents} agents x {self.cameras} cameras, {rate} changes/s, {self.browsers} browsers, "
            f"{self.warmup:g} s warm-up + {self.seconds:g} s window"
        )


# -- processes and /proc -------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (all its threads) from /proc/<pid>/stat; None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: fields 14 and 15 are the 12th and 13th after the ')'.
    fields = stat[stat.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def stop(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM this one process (by its pid), SIGKILL after `grace`."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def stop_child(child: BaseProcess) -> None:
    if child.is_alive():
        child.terminate()
        child.join(5)
        if child.is_alive():
            child.kill()
            child.join(5)


def expect(conn: Connection, kind: str, timeout: float, what: str) -> Any:
    if not conn.poll(timeout):
        raise TimeoutError(f"{what}: no '{kind}' within {timeout:.0f} s")
    got, payload = conn.recv()
    if got == "error":
        raise RuntimeError(f"{what}: {payload}")
    if got != kind:
        raise RuntimeError(f"{what}: expected '{kind}', got '{got}'")
    return payload


def sleep_until(wall: float) -> None:
    delay = wall - time.time()
    if delay > 0:
        time.sleep(delay)


# -- PostgreSQL ------------------------------------------------------------------------------------------------------


async def _pg(url: str, statement: str, *args: Any) -> list[Any]:
    import asyncpg  # only for the PostgreSQL configurations

    connection = await asyncpg.connect(url, timeout=5)
    try:
        return list(await connection.fetch(statement, *args))
    finally:
        await connection.close()


def pg(statement: str, *args: Any, url: str = ADMIN_URL) -> list[Any]:
    return asyncio.run(_pg(url, statement, *args))


def postgres_unavailable(hub_src: Path, admin_url: str) -> str:
    """Why the PostgreSQL configurations can't run here ('' if they can)."""
    settings = hub_src / "nvrmon" / "settings.py"
    if "database_url" not in settings.read_text():
        return f"the hub at {hub_src} has no PostgreSQL backend (no NVRMON_DATABASE_URL setting)"
    try:
        pg("SELECT 1", url=admin_url)
    except Exception as exc:  # asyncpg missing, server down, refused: all mean "not here"
        return f"PostgreSQL at {admin_url} does not answer: {exc!r}"
    return ""


def pg_settings(admin_url: str) -> dict[str, str]:
    names = ["server_version", "synchronous_commit", "fsync", "shared_buffers", "max_connections"]
    rows = pg("SELECT name, setting FROM pg_settings WHERE name = ANY($1::text[])", names, url=admin_url)
    return {row["name"]: row["setting"] for row in rows}


def backend_pids(admin_url: str, database: str) -> list[int]:
    """The server processes serving this database (each hub's pool and listener connection)."""
    rows = pg(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name <> $2",
        database,
        WATCH_NAME,
        url=admin_url,
    )
    return [int(row["pid"]) for row in rows]


WATCH_NAME = "nvrmon-bench-watch"  # the watcher's own connections, left out of the backends measured
TABLE_COUNTERS = ("seq_scan", "seq_tup_read", "idx_scan", "idx_tup_fetch", "n_tup_ins", "n_tup_upd")
DB_COUNTERS = ("xact_commit", "xact_rollback", "tup_returned", "tup_fetched", "tup_inserted", "tup_updated")


class PgWatch:
    """What this database's backends do during the window: every `every` s, the state and wait event of each one
    (pg_stat_activity), and pg_stat_database's commit and row counters at both ends. Runs in a thread with its own
    event loop and one connection to the admin database, so the hubs' databases see none of it."""

    def __init__(self, admin_url: str, database: str, every: float = 0.05) -> None:
        self.admin_url, self.database, self.every = admin_url, database, every
        self.samples: dict[str, int] = {}
        self.counters: list[dict[str, int]] = []
        self.tables: list[dict[str, dict[str, int]]] = []
        self.ages: list[float] = []  # ms since the transaction of a busy backend began, at each sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="pg-watch", daemon=True)

    async def _counters(self, conn: Any) -> dict[str, int]:
        row = await conn.fetchrow(
            f"SELECT {', '.join(DB_COUNTERS)} FROM pg_stat_database WHERE datname = $1", self.database
        )
        return {k: int(row[k]) for k in DB_COUNTERS}

    async def _tables(self) -> dict[str, dict[str, int]]:
        """Per table of the bench's database: scans and rows read (pg_stat_user_tables is per database)."""
        import asyncpg

        url = self.admin_url.rsplit("/", 1)[0] + "/" + self.database
        conn = await asyncpg.connect(url, timeout=5, server_settings={"application_name": WATCH_NAME})
        try:
            rows = await conn.fetch(f"SELECT relname, {', '.join(TABLE_COUNTERS)} FROM pg_stat_user_tables")
            return {row["relname"]: {k: int(row[k] or 0) for k in TABLE_COUNTERS} for row in rows}
        finally:
            await conn.close()

    async def _run(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.admin_url, timeout=5, server_settings={"application_name": WATCH_NAME})
        try:
            self.tables.append(await self._tables())
            await conn.execute("SELECT pg_stat_clear_snapshot()")
            self.counters.append(await self._counters(conn))
            query = (
                "SELECT state, wait_event_type, wait_event, extract(epoch FROM now() - xact_start) AS age"
                " FROM pg_stat_activity WHERE datname = $1 AND application_name <> $2"
            )
            while not self._stop.is_set():
                await conn.execute("SELECT pg_stat_clear_snapshot()")
                for row in await conn.fetch(query, self.database, WATCH_NAME):
                    if row["state"] == "idle":
                        key = "idle"
                    elif row["wait_event_type"] is None:
                        key = f"{row['state']}: on CPU"
                    else:
                        key = f"{row['state']}: {row['wait_event_type']}/{row['wait_event']}"
                    self.samples[key] = self.samples.get(key, 0) + 1
                    if row["age"] is not None and row["state"] != "idle":
                        self.ages.append(float(row["age"]) * 1000)
                await asyncio.sleep(self.every)
            await conn.execute("SELECT pg_stat_clear_snapshot()")
            # The statistics collector publishes counters with a delay of up to 0.5 s (PostgreSQL 15: at the end of
            # each transaction, at most every PGSTAT_MIN_INTERVAL); the window is long enough for that not to matter.
            self.counters.append(await self._counters(conn))
            self.tables.append(await self._tables())
        finally:
            await conn.close()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(10)
        total = sum(v for k, v in self.samples.items() if k != "idle") or 1
        busy = {k: round(100 * v / total, 1) for k, v in sorted(self.samples.items(), key=lambda kv: -kv[1])}
        busy.pop("idle", None)
        deltas = {k: self.counters[-1][k] - self.counters[0][k] for k in DB_COUNTERS} if len(self.counters) == 2 else {}
        tables: dict[str, dict[str, int]] = {}
        if len(self.tables) == 2:
            for name, after in self.tables[1].items():
                before = self.tables[0].get(name, {})
                delta = {k: v - before.get(k, 0) for k, v in after.items()}
                if any(delta.values()):
                    tables[name] = delta
        top = sorted(tables.items(), key=lambda kv: -(kv[1]["seq_tup_read"] + kv[1]["idx_tup_fetch"]))
        return {
            "tables": dict(top[:8]),
            "busy_samples_pct": busy,
            "busy_samples": total,
            "counters": deltas,
            "open_transaction_age_ms": latency_summary(self.ages),
        }


# -- hubs ------------------------------------------------------------------------------------------------------------


@dataclass
class Hubs:
    """The hub processes of one configuration on one database, and how to reach them."""

    backend: str
    count: int
    tmp: Path
    hub_src: Path
    admin_url: str
    pin: bool
    database: str = ""  # PostgreSQL database name, or the SQLite file
    ports: list[int] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def url(self) -> str:
        return self.admin_url.rsplit("/", 1)[0] + "/" + self.database

    def env(self, node: int) -> dict[str, str]:
        # One address for every simulated browser and agent, one session for all browsers: lift the per-address and
        # per-session caps, as bench/run.py does.
        env = {
            **os.environ,
            "NVRMON_MAX_CONNECTIONS_PER_ADDRESS": "0",
            "NVRMON_MAX_STREAMS_PER_SESSION": "0",
            "NVRMON_MAX_STREAMS_PER_ADDRESS": "0",
            "NVRMON_AGENT_TOKEN": TOKEN,
            "NVRMON_SECRET_KEY": self.secret,
            "NVRMON_NODE_ID": f"bench-hub-{node}",
            "PYTHONPATH": os.pathsep.join([str(self.hub_src), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        }
        if self.backend == "postgresql":
            env["NVRMON_DATABASE_URL"] = self.url
        return env

    def target(self) -> list[str]:
        return [] if self.backend == "postgresql" else ["--db", self.database]

    def create(self) -> None:
        if self.backend == "postgresql":
            self.database = f"nvrmon_b_{secrets.token_hex(6)}"
            pg(f'CREATE DATABASE "{self.database}"', url=self.admin_url)
        else:
            self.database = str(self.tmp / f"bench-{secrets.token_hex(4)}.db")
        # The viewer account, created as an operator would; it also sets the schema up before any hub starts.
        done = subprocess.run(
            [sys.executable, "-m", "nvrmon.cli", "user", "add", USER, "--role", "viewer", *self.target()],
            input=PASSWORD + "\n",
            env=self.env(0),
            cwd=self.tmp,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"nvrmon user add failed:\n{done.stdout}{done.stderr}")

    def start(self) -> None:
        cpus = sorted(os.sched_getaffinity(0))
        for n in range(self.count):
            port = free_port()
            cmd = [
                sys.executable,
                "-m",
                "nvrmon.cli",
                "serve",
                "--port",
                str(port),
                *self.target(),
                "--log-level",
                "warning",
            ]
            before = os.sched_getaffinity(0)
            if self.pin and len(cpus) > 1:
                # One hub per core: a child inherits the forking thread's CPU set, so every thread it starts stays.
                os.sched_setaffinity(0, {cpus[n % len(cpus)]})
            try:
                with (self.tmp / f"hub{n}-{port}.log").open("ab") as log:
                    proc = subprocess.Popen(cmd, env=self.env(n), cwd=self.tmp, stdout=log, stderr=subprocess.STDOUT)
            finally:
                os.sched_setaffinity(0, before)
            self.ports.append(port)
            self.procs.append(proc)
        for n, (port, proc) in enumerate(zip(self.ports, self.procs, strict=True)):
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"hub {n} exited during start-up:\n{self.log(n)}")
                with contextlib.suppress(OSError):
                    if http_get(port, "/healthz", timeout=2)[0] == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"hub {n} did not answer /healthz in 60 s:\n{self.log(n)}")
                time.sleep(0.05)
        if self.backend == "postgresql" and (self.tmp / "nvrmon.db").exists():
            raise RuntimeError("a hub opened SQLite although NVRMON_DATABASE_URL was set")

    def log(self, n: int, lines: int = 30) -> str:
        found = sorted(self.tmp.glob(f"hub{n}-*.log"))
        return "\n".join(found[-1].read_text(errors="replace").splitlines()[-lines:]) if found else ""

    def stop(self) -> None:
        for proc in self.procs:
            stop(proc)
        if self.backend == "postgresql" and self.database.startswith("nvrmon_b_"):
            with contextlib.suppress(Exception):
                pg(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)', url=self.admin_url)


# -- agents (one process) --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentPlan:
    ws_urls: list[str]  # agent i connects to ws_urls[i % len]
    http_port: int
    agents: int
    cameras: int
    seed: int


@dataclass(frozen=True)
class Schedule:
    t0: float
    seconds: float  # warm-up + window: how long changes are sent
    rate: float


def hello(index: int, cameras: int) -> str:
    region = ("North", "South", "East", "West", "Central")[index % 5]
    site = f"{region} site {index // 5 + 1}"
    net = f"10.{index // 250}.{index % 250}"
    return json.dumps(
        {
            "type": "hello",
            "protocol": 1,
            "nvr": {
                "hostname": f"bench-{index + 1:05d}",
                "device_name": f"{site} recorder",
                "region": region,
                "site": site,
                "model": "NV-8000",
                "firmware": "4.2.1",
                "ip_address": f"{net}.2",
            },
            "cameras": [
                {
                    "id": f"cam{c + 1:03d}",
                    "name": f"{site} cam {c + 1}",
                    "ip_address": f"{net}.{c + 10}",
                    "status": "online",
                }
                for c in range(cameras)
            ],
        }
    )


async def _agents(conn: Connection, plan: AgentPlan) -> None:
    import websockets

    sockets: list[Any] = [None] * plan.agents
    nvr_ids = [0] * plan.agents
    tasks: list[asyncio.Task[None]] = []
    gate = asyncio.Semaphore(32)

    async def beat(ws: Any, interval: float) -> None:
        await asyncio.sleep(random.uniform(0, interval))
        frame = json.dumps({"type": "heartbeat", "stats": {"uptime_s": 3600, "disk_free_pct": 61}})
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await ws.send(frame)
                await asyncio.sleep(interval)

    async def drain(ws: Any) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for _ in ws:
                pass

    async def connect(i: int) -> None:
        async with gate:
            for attempt in range(5):
                try:
                    ws = await websockets.connect(
                        plan.ws_urls[i % len(plan.ws_urls)],
                        open_timeout=30,
                        additional_headers={"Authorization": f"Bearer {TOKEN}"},
                        ping_interval=None,
                        compression=None,
                    )
                    break
                except (OSError, websockets.WebSocketException, TimeoutError):
                    if attempt == 4:
                        raise
                    await asyncio.sleep(0.3 * (attempt + 1))
            await ws.send(hello(i, plan.cameras))
            welcome = json.loads(await asyncio.wait_for(ws.recv(), 60))
            if welcome.get("type") != "welcome":
                raise RuntimeError(f"agent {i}: hub refused hello: {welcome}")
            sockets[i], nvr_ids[i] = ws, int(welcome["nvr_id"])
            tasks.append(asyncio.create_task(beat(ws, float(welcome.get("heartbeat_interval", 10.0)))))
            tasks.append(asyncio.create_task(drain(ws)))

    try:
        await asyncio.gather(*(connect(i) for i in range(plan.agents)))
        ids: dict[tuple[int, str], int] = {}
        offset = 0
        while True:  # the API pages at most 500 rows
            status, body, _, _ = http_get(plan.http_port, f"/api/cameras?limit=500&offset={offset}", timeout=60)
            if status != 200:
                raise RuntimeError(f"/api/cameras answered {status}")
            page = json.loads(body)
            ids.update({(int(c["nvr_id"]), str(c["ext_id"])): int(c["id"]) for c in page["cameras"]})
            offset += page["count"]
            if not page["count"] or offset >= page["total"]:
                break
        # (agent, ext id, db id) for every camera, in a seeded random order that the generator walks round-robin.
        cameras = [
            (i, f"cam{c + 1:03d}", ids[(nvr_ids[i], f"cam{c + 1:03d}")])
            for i in range(plan.agents)
            for c in range(plan.cameras)
        ]
    except Exception as exc:
        conn.send(("error", f"agents failed to start: {exc!r}"))
        return
    status_now = bytearray([ONLINE]) * (max(c[2] for c in cameras) + 1)
    conn.send(
        ("ready", {"size": len(status_now), "hub_of_camera": {db: i % len(plan.ws_urls) for i, _, db in cameras}})
    )
    rnd = random.Random(plan.seed)
    rnd.shuffle(cameras)
    loop = asyncio.get_running_loop()
    while True:
        command, arg = await loop.run_in_executor(None, conn.recv)
        if command == "close":
            for task in tasks:
                task.cancel()
            await asyncio.gather(*(asyncio.wait_for(ws.close(), 2) for ws in sockets), return_exceptions=True)
            conn.send(("closed", None))
            return
        schedule = cast(Schedule, arg)
        log_cam, log_code, log_ns = array("i"), array("b"), array("q")
        late = 0
        at, end, k = schedule.t0, schedule.t0 + schedule.seconds, 0
        while True:
            # Poisson arrivals on an absolute timeline: a slow send doesn't stretch the schedule. The cameras are
            # walked round-robin, so one camera changes again only after every other one has (agents x cameras / R s).
            at += rnd.expovariate(schedule.rate)
            if at >= end:
                break
            delay = at - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.05:
                late += 1
            agent, ext, db_id = cameras[k % len(cameras)]
            k += 1
            code = OFFLINE if status_now[db_id] == ONLINE else ONLINE
            status_now[db_id] = code
            frame = {"type": "camera_status", "camera_id": ext, "status": "offline" if code == OFFLINE else "online"}
            if code == OFFLINE:
                frame["reason"] = f"bench change {k}"
            log_cam.append(db_id)
            log_code.append(code)
            log_ns.append(time.time_ns())
            with contextlib.suppress(websockets.ConnectionClosed):
                await sockets[agent].send(json.dumps(frame))
        conn.send(
            (
                "sent",
                {
                    "cams": log_cam.tobytes(),
                    "codes": log_code.tobytes(),
                    "ns": log_ns.tobytes(),
                    "final": bytes(status_now),
                    "late": late,
                },
            )
        )


def agents_main(conn: Connection, plan: AgentPlan) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        try:
            import uvloop

            uvloop.run(_agents(conn, plan))
        except ImportError:
            asyncio.run(_agents(conn, plan))


# -- browsers (worker processes) -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BrowserPlan:
    hubs: list[tuple[int, str]]  # (port, /events path with the hub's cursor); browser i uses hubs[i % len]
    first: int
    count: int
    size: int  # camera db ids are below this
    cookie: str


class Browser(asyncio.Protocol):
    """One /events stream on a raw socket: per read, one timestamp; camera rows of every complete HTTP chunk (the hub
    writes whole SSE messages per chunk) are recorded as (camera db id, status, receive ns)."""

    def __init__(self, index: int, hub: int, port: int, path: str, cookie: str, size: int) -> None:
        self.index, self.hub, self.port, self.path, self.cookie = index, hub, port, path, cookie
        self.state = bytearray([ONLINE]) * size  # what this browser shows, by camera db id
        self.cams, self.codes, self.times = array("i"), array("b"), array("q")
        self.buf = bytearray()
        self.in_body = False
        self.last_id = b""
        self.drops = 0
        self.error = ""
        self.closing = False
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def request(self) -> bytes:
        resume = f"Last-Event-ID: {self.last_id.decode()}\r\n" if self.last_id else ""
        return (
            f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nAccept: text/event-stream\r\n"
            f"Cookie: {self.cookie}\r\n{resume}\r\n"
        ).encode()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request())

    def data_received(self, data: bytes) -> None:
        t = time.time_ns()
        buf = self.buf
        buf += data
        pos = 0
        if not self.in_body:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end])
            if b" 200 " not in head.split(b"\r\n", 1)[0] or b"chunked" not in head.lower():
                self.error = head.split(b"\r\n", 1)[0].decode(errors="replace")
                self.closing = True
                if self.transport is not None:
                    self.transport.close()
                return
            self.in_body = True
            if not self.ready.done():
                self.ready.set_result(None)
            pos = end + 4
        while True:  # every complete chunk
            nl = buf.find(b"\r\n", pos)
            if nl < 0:
                break
            size = int(bytes(buf[pos:nl]).split(b";", 1)[0], 16)
            if len(buf) < nl + 4 + size:
                break
            chunk = bytes(buf[nl + 2 : nl + 2 + size])
            pos = nl + 4 + size
            for match in ROW.finditer(chunk):
                cam, code = int(match.group(1)), CODES.get(match.group(2), OTHER)
                if cam < len(self.state):
                    self.state[cam] = code
                    self.cams.append(cam)
                    self.codes.append(code)
                    self.times.append(t)
            ids = EVENT_ID.findall(chunk)
            if ids:
                self.last_id = ids[-1]
        del buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(self.error or f"closed before the stream began: {exc!r}"))
        if not self.closing:
            # As a browser would: come back after the hub's retry (1 s) and resume from the last event id.
            self.drops += 1
            self.buf.clear()
            self.in_body = False
            asyncio.get_running_loop().call_later(1.0, lambda: asyncio.ensure_future(self.connect()))

    async def connect(self) -> None:
        if self.closing:
            return
        try:
            await asyncio.get_running_loop().create_connection(lambda: self, "127.0.0.1", self.port)
        except OSError as exc:
            self.error = repr(exc)
            self.drops += 1
            asyncio.get_running_loop().call_later(1.0, lambda: asyncio.ensure_future(self.connect()))


async def _browsers(conn: Connection, plan: BrowserPlan) -> None:
    browsers = [
        Browser(i, i % len(plan.hubs), *plan.hubs[i % len(plan.hubs)], plan.cookie, plan.size)
        for i in range(plan.first, plan.first + plan.count)
    ]
    gate = asyncio.Semaphore(64)

    async def open_one(b: Browser) -> None:
        async with gate:
            await b.connect()
            await asyncio.wait_for(b.ready, 60)

    opened = await asyncio.gather(*(open_one(b) for b in browsers), return_exceptions=True)
    failed = [repr(r) for r in opened if isinstance(r, BaseException)]
    conn.send(("connected", {"failed": len(failed), "errors": failed[:3]}))
    loop = asyncio.get_running_loop()
    while True:
        command, arg = await loop.run_in_executor(None, conn.recv)
        if command == "converge":
            final, deadline = arg
            while time.time() < deadline and any(b.state != final for b in browsers):
                await asyncio.sleep(0.1)
            conn.send(("converged", sum(b.state != final for b in browsers)))
        elif command == "collect":
            for b in browsers:
                b.closing = True
                if b.transport is not None:
                    b.transport.close()
            rows = [
                {
                    "hub": b.hub,
                    "cams": b.cams.tobytes(),
                    "codes": b.codes.tobytes(),
                    "times": b.times.tobytes(),
                    "state": bytes(b.state),
                    "drops": b.drops,
                }
                for b in browsers
            ]
            conn.send(("rows", rows))
            return


def browsers_main(conn: Connection, plan: BrowserPlan) -> None:
    raise_fd_limit(plan.count * 2 + 256)
    with contextlib.suppress(KeyboardInterrupt):
        try:
            import uvloop

            uvloop.run(_browsers(conn, plan))
        except ImportError:
            asyncio.run(_browsers(conn, plan))


# -- matching ----------------------------------------------------------------------------------------------------------


def latency_summary(values: list[float]) -> dict[str, float | int]:
    values.sort()
    return {
        "count": len(values),
        "p50": round(percentile(values, 50), 2),
        "p90": round(percentile(values, 90), 2),
        "p99": round(percentile(values, 99), 2),
        "max": round(values[-1], 2) if values else 0.0,
    }


def analyse(
    sent: dict[str, Any], browsers: list[dict[str, Any]], hub_of_camera: dict[int, int], w0: float, w1: float
) -> dict[str, Any]:
    """Match every row a browser received to the change it shows.

    The cameras are changed round-robin and every change is a flip, so a row (camera, status) received at r stands
    for the latest change of that camera to that status sent at or before r. A change is delivered to a browser by
    the first row that stands for it (later ones are duplicates); the latency is r - its send time. A change sent in
    the window and never delivered to a browser is undelivered (superseded if a later change of the same camera was).
    """
    cams, codes, sent_ns = array("i"), array("b"), array("q")
    cams.frombytes(sent["cams"])
    codes.frombytes(sent["codes"])
    sent_ns.frombytes(sent["ns"])
    by_cam: dict[int, tuple[list[int], list[int]]] = {}
    for n, (cam, t) in enumerate(zip(cams, sent_ns, strict=True)):
        times, numbers = by_cam.setdefault(cam, ([], []))
        times.append(t)
        numbers.append(n)
    w0_ns, w1_ns = int(w0 * 1e9), int(w1 * 1e9)
    in_window = [w0_ns <= t < w1_ns for t in sent_ns]
    local: list[float] = []
    remote: list[float] = []
    deliveries = duplicates = unmatched = undelivered = superseded = 0
    for b in browsers:
        r_cams, r_codes, r_times = array("i"), array("b"), array("q")
        r_cams.frombytes(b["cams"])
        r_codes.frombytes(b["codes"])
        r_times.frombytes(b["times"])
        got: set[int] = set()
        for cam, code, r in zip(r_cams, r_codes, r_times, strict=True):
            times, numbers = by_cam.get(cam, ([], []))
            at = bisect.bisect_right(times, r) - 1
            while at >= 0 and codes[numbers[at]] != code:
                at -= 1
            if at < 0:
                unmatched += 1  # the state before the first change (a replay), or a status the bench never sends
                continue
            n = numbers[at]
            if n in got:
                duplicates += 1
                continue
            got.add(n)
            if w0_ns <= r < w1_ns:
                deliveries += 1
            if in_window[n]:
                (local if hub_of_camera.get(cam, 0) == b["hub"] else remote).append((r - sent_ns[n]) / 1e6)
        for _, numbers in by_cam.values():
            for i, n in enumerate(numbers):
                if in_window[n] and n not in got:
                    if any(m in got for m in numbers[i + 1 :]):
                        superseded += 1
                    else:
                        undelivered += 1
    return {
        "deliveries": deliveries,
        "latency_ms": latency_summary(local + remote),
        "latency_same_hub_ms": latency_summary(local),
        "latency_other_hub_ms": latency_summary(remote),
        "duplicates": duplicates,
        "unmatched_rows": unmatched,
        "undelivered": undelivered,
        "superseded": superseded,
    }


# -- one configuration -------------------------------------------------------------------------------------------------


@dataclass
class Started:
    """What one configuration started (stopped by pid whatever happens)."""

    children: list[BaseProcess] = field(default_factory=list)

    def fork(self, target: Any, *args: Any, name: str) -> BaseProcess:
        child = CTX.Process(target=target, args=args, name=name, daemon=True)
        child.start()
        self.children.append(child)
        return child

    def stop(self) -> None:
        for child in self.children:
            stop_child(child)


def run_config(name: str, load: Load, hub_src: Path, admin_url: str, pin: bool, workers: int) -> dict[str, Any]:
    backend, count = CONFIGS[name]
    with tempfile.TemporaryDirectory(prefix=f"nvrmon-cluster-{name}-") as tmp:
        hubs = Hubs(backend, count, Path(tmp), hub_src, admin_url, pin)
        started = Started()
        try:
            hubs.create()
            hubs.start()
            return measure(name, load, hubs, started, workers)
        finally:
            started.stop()
            hubs.stop()


def measure(name: str, load: Load, hubs: Hubs, started: Started, workers: int) -> dict[str, Any]:
    begun = time.monotonic()
    cookie = login(hubs.ports[0], USER, PASSWORD)  # one session, valid on every hub of the database
    os.environ[COOKIE_ENV] = cookie  # benchutil.http_get sends it (here and in the forked agents)
    result: dict[str, Any] = {"config": name, "backend": hubs.backend, "hubs": hubs.count}

    agents_conn, child = CTX.Pipe()
    ws_urls = [f"ws://127.0.0.1:{port}/ws/agent" for port in hubs.ports]
    plan = AgentPlan(ws_urls, hubs.ports[0], load.agents, load.cameras, load.seed)
    agents = started.fork(agents_main, child, plan, name="bench-cluster-agents")
    ready = expect(agents_conn, "ready", 120 + load.agents / 10, f"{name}: agents")
    hub_of_camera: dict[int, int] = ready["hub_of_camera"]

    # Each browser starts from its hub's cursor, as a page rendered there just now would.
    paths = []
    for port in hubs.ports:
        health = json.loads(http_get(port, "/healthz")[1])
        paths.append((port, f"/events?view=cameras&id=per%3D1000&since={health['epoch']}-{health['seq']}"))
    n_workers = max(1, min(workers or (1 if load.browsers < 100 else 2), load.browsers))
    browser_conns: list[Connection] = []
    for w in range(n_workers):
        share = load.browsers // n_workers + (w < load.browsers % n_workers)
        first = w * (load.browsers // n_workers) + min(w, load.browsers % n_workers)
        parent, child = CTX.Pipe()
        bplan = BrowserPlan(paths, first, share, ready["size"], cookie)
        started.fork(browsers_main, child, bplan, name=f"bench-cluster-browsers-{w}")
        browser_conns.append(parent)
    failed = 0
    for conn in browser_conns:
        info = expect(conn, "connected", 120 + load.browsers / 20, f"{name}: browsers")
        failed += info["failed"]
        if info["errors"]:
            result.setdefault("browser_errors", []).extend(info["errors"])
    result["browsers_failed"] = failed
    time.sleep(0.5)

    t0 = time.time() + 0.3
    w0, w1 = t0 + load.warmup, t0 + load.warmup + load.seconds
    agents_conn.send(("go", Schedule(t0, load.warmup + load.seconds, load.rate)))
    probe_conn, child = CTX.Pipe()
    started.fork(stall_probe, child, None, name="bench-cluster-probe")
    load_pids = [c.pid for c in started.children if c.pid is not None and c.name != "bench-cluster-probe"]
    hub_pids = [p.pid for p in hubs.procs]
    sleep_until(w0)
    watch = PgWatch(hubs.admin_url, hubs.database) if hubs.backend != "sqlite" else None
    if watch is not None:
        watch.start()
    pg0 = (
        {pid: cpu_seconds(pid) for pid in backend_pids(hubs.admin_url, hubs.database)}
        if hubs.backend != "sqlite"
        else {}
    )
    h0 = [cpu_seconds(pid) or 0.0 for pid in hub_pids]
    l0 = sum(cpu_seconds(pid) or 0.0 for pid in load_pids)
    sleep_until(w1)
    h1 = [cpu_seconds(pid) or 0.0 for pid in hub_pids]
    l1 = sum(cpu_seconds(pid) or 0.0 for pid in load_pids)
    pg_cpu = 0.0
    if hubs.backend != "sqlite":
        pids1 = backend_pids(hubs.admin_url, hubs.database)
        for pid in pids1:
            after = cpu_seconds(pid)
            # A backend that started inside the window spent all its CPU in it; one that ended took its CPU with it.
            pg_cpu += (after or 0.0) - (pg0.get(pid) or 0.0)
        result["pg_backends"] = {"at_start": len(pg0), "at_end": len(pids1), "ended": len(set(pg0) - set(pids1))}
    if watch is not None:
        result["pg_activity"] = watch.stop()
    probe_conn.send("stop")
    result["noise"] = probe_conn.recv() if probe_conn.poll(10) else None
    sent = expect(agents_conn, "sent", 60 + load.seconds + load.warmup, f"{name}: changes")

    for conn in browser_conns:
        conn.send(("converge", (sent["final"], time.time() + load.drain)))
    pending = sum(expect(conn, "converged", load.drain + 60, f"{name}: drain") for conn in browser_conns)
    drain_s = time.time() - w1
    rows: list[dict[str, Any]] = []
    for conn in browser_conns:
        conn.send(("collect", None))
        rows.extend(expect(conn, "rows", 120, f"{name}: collect"))
    agents_conn.send(("close", None))
    with contextlib.suppress(TimeoutError, RuntimeError):
        expect(agents_conn, "closed", 30, f"{name}: agents close")
    stop_child(agents)
    alive = [p.poll() is None for p in hubs.procs]

    matched = analyse(sent, rows, hub_of_camera, w0, w1)
    sent_ns = array("q")
    sent_ns.frombytes(sent["ns"])
    in_window = sum(1 for t in sent_ns if w0 * 1e9 <= t < w1 * 1e9)
    hub_cpu = [round(b - a, 2) for a, b in zip(h0, h1, strict=True)]
    deliveries = matched["deliveries"]
    total_hub = sum(hub_cpu)
    result.update(
        changes_sent=len(sent_ns),
        changes_in_window=in_window,
        achieved_rate=round(in_window / load.seconds, 1),
        late_sends=sent["late"],
        expected_deliveries=in_window * load.browsers,
        **matched,
        deliveries_per_s=round(deliveries / load.seconds, 1),
        missed=sum(sum(a != b for a, b in zip(r["state"], sent["final"], strict=True)) for r in rows),
        missed_browsers=pending,
        drain_s=round(drain_s, 2),
        browser_drops=sum(r["drops"] for r in rows),
        hub_cpu_s=hub_cpu,
        hub_cpu_pct=[round(100 * c / load.seconds, 1) for c in hub_cpu],
        hub_us_per_delivery=round(total_hub * 1e6 / deliveries, 2) if deliveries else None,
        pg_backend_cpu_s=round(pg_cpu, 2) if hubs.backend != "sqlite" else None,
        total_us_per_delivery=round((total_hub + pg_cpu) * 1e6 / deliveries, 2) if deliveries else None,
        load_cpu_pct=round(100 * (l1 - l0) / load.seconds, 1),
        hub_rss_mb=[rss_mb(p) for p in hub_pids],
        hubs_alive=all(alive),
        wall_s=round(time.monotonic() - begun, 1),
    )
    if not all(alive):
        result["hub_logs"] = [hubs.log(n) for n, ok in enumerate(alive) if not ok]
    return result


# -- report --------------------------------------------------------------------------------------------------------


def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, list):
        return " + ".join(fmt(v) for v in value)
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


TABLE: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("changes sent in the window (per s)", lambda r: f"{fmt(r['changes_in_window'])} ({fmt(r['achieved_rate'])}/s)"),
    (
        "deliveries received in the window (changes sent in it × browsers)",
        lambda r: f"{fmt(r['deliveries'])} ({fmt(r['expected_deliveries'])})",
    ),
    ("**deliveries/s**", lambda r: f"**{fmt(r['deliveries_per_s'])}**"),
    ("latency p50 / p90 ms", lambda r: f"{fmt(r['latency_ms']['p50'])} / {fmt(r['latency_ms']['p90'])}"),
    ("**latency p99 ms** (max)", lambda r: f"**{fmt(r['latency_ms']['p99'])}** ({fmt(r['latency_ms']['max'])})"),
    (
        "p99 ms, agent and browser on the same hub / on different hubs",
        lambda r: (
            f"{fmt(r['latency_same_hub_ms']['p99'])} / {fmt(r['latency_other_hub_ms']['p99'])}"
            if r["hubs"] > 1
            else fmt(r["latency_same_hub_ms"]["p99"])
        ),
    ),
    ("hub CPU s in the window (% of a core)", lambda r: f"{fmt(r['hub_cpu_s'])} ({fmt(r['hub_cpu_pct'])} %)"),
    ("PostgreSQL backends' CPU s (this database)", lambda r: fmt(r["pg_backend_cpu_s"])),
    ("hub CPU µs per delivery", lambda r: fmt(r["hub_us_per_delivery"])),
    ("**hub + database CPU µs per delivery**", lambda r: f"**{fmt(r['total_us_per_delivery'])}**"),
    ("PostgreSQL transactions per change (hubs' reads included)", lambda r: _per_change(r, "xact_commit")),
    ("PostgreSQL rows read per change (returned + fetched)", lambda r: _per_change(r, "tup_returned", "tup_fetched")),
    ("busy backends: waiting on a lock / idle in transaction / on CPU (% of samples)", lambda r: _activity(r)),
    ("age of the open transactions seen, p50 / p99 ms", lambda r: _ages(r)),
    ("tables read most: rows read per change (sequential scans per change)", lambda r: _tables(r)),
    ("load generators' CPU (% of a core)", lambda r: fmt(r["load_cpu_pct"])),
    ("missed (browser × camera wrong after the drain)", lambda r: fmt(r["missed"])),
    ("undelivered / superseded / duplicates", lambda r: f"{r['undelivered']} / {r['superseded']} / {r['duplicates']}"),
    ("browser reconnects, failed connects", lambda r: f"{r['browser_drops']}, {r['browsers_failed']}"),
    ("hub RSS MB", lambda r: fmt(r["hub_rss_mb"])),
    ("machine noise: longest 5 ms-sleeper stall ms", lambda r: fmt((r["noise"] or {}).get("max_stall_ms"))),
]


def _per_change(r: dict[str, Any], *keys: str) -> str:
    counters = r.get("pg_activity", {}).get("counters")
    if not counters or not r["changes_in_window"]:
        return "–"
    return fmt(round(sum(counters[k] for k in keys) / r["changes_in_window"], 1))


def _activity(r: dict[str, Any]) -> str:
    busy = r.get("pg_activity", {}).get("busy_samples_pct")
    if busy is None:
        return "–"
    lock = sum(v for k, v in busy.items() if "Lock/" in k and "LWLock" not in k)
    idle = sum(v for k, v in busy.items() if k.startswith("idle in transaction"))
    cpu = sum(v for k, v in busy.items() if k == "active: on CPU")
    return f"{lock:.0f} / {idle:.0f} / {cpu:.0f}"


def _tables(r: dict[str, Any]) -> str:
    tables = r.get("pg_activity", {}).get("tables")
    n = r["changes_in_window"]
    if not tables or not n:
        return "–"
    return ", ".join(
        f"{name} {(t['seq_tup_read'] + t['idx_tup_fetch']) / n:,.0f} ({t['seq_scan'] / n:.1f})"
        for name, t in list(tables.items())[:3]
    )


def _ages(r: dict[str, Any]) -> str:
    ages = r.get("pg_activity", {}).get("open_transaction_age_ms")
    return f"{fmt(ages['p50'])} / {fmt(ages['p99'])}" if ages else "–"


LABELS = {"sqlite-1": "1 hub, SQLite", "pg-1": "1 hub, PostgreSQL", "pg-2": "2 hubs, one PostgreSQL database"}


def markdown(report: dict[str, Any]) -> str:
    runs = report["runs"]
    several = len(report["rates"]) > 1
    head = "| | " + " | ".join(LABELS[r["config"]] + (f" @ {r['rate']:g}/s" if several else "") for r in runs) + " |\n"
    head += "| --- |" + " ---: |" * len(runs) + "\n"
    body = "".join(f"| {label} | " + " | ".join(cell(r) for r in runs) + " |\n" for label, cell in TABLE)
    lines = [f"Command: `{report['command']}`", "", f"Load: {report['load_text']}.", ""]
    lines += [
        f"Machine: {report['machine']['cpu']}, {report['machine']['cores']}, {report['machine']['ram']} RAM, "
        f"kernel {report['machine']['kernel']}, Python {report['machine']['python']}; {report['pinning']}."
    ]
    lines += ["", f"Hubs: nvrmon from {report['hub_source']}."]
    if report.get("postgres"):
        settings = ", ".join(f"{k} {v}" for k, v in report["postgres"].items())
        lines += ["", f"PostgreSQL (the machine's shared server): {settings}."]
    for skipped, why in report.get("skipped", {}).items():
        lines += ["", f"Not run: {skipped} ({why})."]
    return "\n".join(lines) + "\n\n" + head + body


def write_markdown(path: Path, text: str) -> None:
    """Put the figures between the file's markers (the prose around them stays), or write them alone."""
    begin, end = "<!-- figures: bench/cluster.py writes between these markers -->", "<!-- end of figures -->"
    old = path.read_text() if path.exists() else ""
    if begin in old and end in old:
        text = old.split(begin, 1)[0] + begin + "\n" + text + end + old.split(end, 1)[1]
    else:
        text = begin + "\n" + text + end + "\n"
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = Load()
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, of {', '.join(CONFIGS)}")
    parser.add_argument("-S", "--agents", type=int, default=d.agents)
    parser.add_argument("--cameras", type=int, default=d.cameras, help="cameras per agent")
    parser.add_argument(
        "-R",
        "--rate",
        default=f"{d.rate:g}",
        help="camera changes per second, fleet-wide; a comma-separated list runs every configuration "
        "at each rate (e.g. 100,300)",
    )
    parser.add_argument("-B", "--browsers", type=int, default=d.browsers)
    parser.add_argument("--seconds", type=float, default=d.seconds, help="measured window per configuration")
    parser.add_argument("--warmup", type=float, default=d.warmup)
    parser.add_argument("--drain", type=float, default=d.drain, help="most seconds to wait for browsers to converge")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--workers", type=int, default=0, help="browser processes (0: 1 below 100 browsers, else 2)")
    parser.add_argument("--tiny", action="store_true", help="a few seconds per configuration (the test's size)")
    parser.add_argument("--pin", action="store_true", help="pin hub i to CPU i (default: the scheduler places them)")
    parser.add_argument("--hub-src", type=Path, default=ROOT, help="the checkout whose nvrmon the hubs run")
    parser.add_argument("--postgres", default=ADMIN_URL, help="admin URL of the PostgreSQL server (databases are made)")
    parser.add_argument("--require-postgres", action="store_true", help="fail instead of skipping the PG configs")
    parser.add_argument("--json", type=Path, help="write the report here")
    parser.add_argument("--markdown", type=Path, help="write the figures into this file (between its markers)")
    args = parser.parse_args()
    rates = [float(r) for r in str(args.rate).split(",") if r.strip()]
    load = Load(args.agents, args.cameras, rates[0], args.browsers, args.seconds, args.warmup, args.drain, args.seed)
    if args.tiny:
        load, rates = (
            Load(agents=4, cameras=4, rate=10, browsers=4, seconds=2, warmup=1, drain=10, seed=args.seed),
            [10],
        )
    if load.agents * load.cameras > 1000:
        parser.error("agents x cameras must be at most 1,000: the browsers watch one cameras page of per=1000")
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown configuration(s) {unknown}; known: {list(CONFIGS)}")
    raise_fd_limit(2 * (load.agents + load.browsers) + 1024)
    hub_src = args.hub_src.resolve()
    report: dict[str, Any] = {
        "command": shlex.join(["python3", "bench/cluster.py", *sys.argv[1:]]),
        "load": asdict(load),
        "load_text": load.describe(rates),
        "machine": machine(),
        "runs": [],
        "skipped": {},
    }
    commit = subprocess.run(
        ["git", "-C", str(hub_src), "log", "-1", "--format=%h %s"], capture_output=True, text=True, check=False
    ).stdout.strip()
    report["hub_source"] = f"{hub_src}" + (f" at {commit}" if commit else "")
    cpus = len(os.sched_getaffinity(0))
    report["pinning"] = (
        "hub i pinned to CPU i mod " + str(cpus) + "; agents, browsers and PostgreSQL not pinned"
        if args.pin and cpus > 1
        else "nothing pinned (hubs, agents, browsers and PostgreSQL where the scheduler puts them)"
    )
    why = postgres_unavailable(hub_src, args.postgres) if any(CONFIGS[c][0] == "postgresql" for c in configs) else ""
    if why and args.require_postgres:
        sys.exit(f"PostgreSQL configurations required but unavailable: {why}")
    if not why and any(CONFIGS[c][0] == "postgresql" for c in configs):
        report["postgres"] = pg_settings(args.postgres)
    print(f"== {load.describe(rates)}; {report['pinning']}", flush=True)
    report["rates"] = rates
    for name, rate in [(name, rate) for rate in rates for name in configs]:
        if CONFIGS[name][0] == "postgresql" and why:
            if name not in report["skipped"]:
                report["skipped"][name] = why
                print(f"  {name}: skipped ({why})", flush=True)
            continue
        run = run_config(name, replace(load, rate=rate), hub_src, args.postgres, args.pin, args.workers)
        run["rate"] = rate
        report["runs"].append(run)
        lat = run["latency_ms"]
        print(
            f"  {name:<8} {fmt(run['deliveries_per_s'])} deliveries/s  latency ms p50 {lat['p50']} p99 {lat['p99']}"
            f"  hub CPU {fmt(run['hub_cpu_s'])} s  pg {fmt(run['pg_backend_cpu_s'])} s  "
            f"{fmt(run['total_us_per_delivery'])} µs/delivery  missed {run['missed']}  load CPU {run['load_cpu_pct']}%",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    if args.markdown:
        write_markdown(args.markdown, markdown(report))
    if not report["runs"]:
        sys.exit("no configuration ran")


if __name__ == "__main__":
    main()
