"""Fleet-scale benchmark: the real hub against a plain-asyncio reference broadcaster, under the same load.

    python3 bench/run.py                       # one run: 1,000 subscribers x 100 changes/s, both implementations
    python3 bench/run.py --matrix              # M x R grid + burst, idle and first-paint scenarios -> bench/RESULTS.md
    python3 bench/run.py --burst 500           # K cameras offline at once: convergence time, messages per browser
    python3 bench/run.py --idle --first-paint  # 2,000 agents + 1,000 subscribers at rest; page timings at 30k cameras
    python3 bench/run.py --smoke --json OUT    # a few seconds; what tests/test_bench.py runs

See bench/README.md for what is measured and how.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from dataclasses import asdict, dataclass, replace
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from benchutil import (
    COOKIE_ENV,
    CpuPlan,
    free_port,
    http_get,
    login,
    machine,
    percentile,
    pin_self,
    raise_fd_limit,
    sample,
    spawn_pinned,
    stall_probe,
)
from load import FleetSpec, Schedule, agents_main, api_cameras
from sse_client import STATUS_CODES, WorkerSpec, worker_main

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TOKEN = "bench-agent-token"
BENCH_USER, BENCH_PASSWORD = "bench", "bench-viewer-password"
IMPLS = ("nvrmon", "reference")
CTX = mp.get_context("fork")  # children start from this process's state (no re-import, no event loop running)


@dataclass(frozen=True)
class RunConfig:
    agents: int = 50
    cameras: int = 16
    subscribers: int = 1000
    rate: float = 100.0
    seconds: float = 10.0
    warmup: float = 2.0
    drain: float = 10.0
    drain_extra: float = 50.0  # past `drain`, keep waiting as long as subscribers are still converging
    workers: int = 0  # 0: automatic
    burst: int = 0
    first_paint: bool = False
    paint_repeats: int = 7
    cursor: bool = True
    heartbeat: float | None = None
    seed: int = 1
    connect_concurrency: int = 64
    gc_stats: bool = True
    pause_subscribers: float = 0.0  # freeze one subscriber worker this long, a third into the window
    storm: int = 0  # after the run: drop every stream, flip this many cameras, reopen all with Last-Event-ID at once

    def describe(self) -> str:
        parts = [f"{self.agents} agents x {self.cameras} cameras", f"{self.subscribers} subscribers",
                 f"{self.rate:g} changes/s", f"{self.warmup:g}+{self.seconds:g} s"]  # fmt: skip
        if self.burst:
            parts.append(f"burst {self.burst}")
        if self.storm:
            parts.append(f"then a reconnect storm ({self.storm} cameras changed while away)")
        if self.pause_subscribers:
            parts.append(f"one worker's subscribers frozen for {self.pause_subscribers:g} s")
        return ", ".join(parts)


# -- processes ------------------------------------------------------------------------------------------------------


class Processes:
    """Everything this invocation started, so that it (and only it) can be stopped by pid whatever happens."""

    def __init__(self) -> None:
        self.popen: list[subprocess.Popen[bytes]] = []
        self.children: list[BaseProcess] = []

    def stop_all(self) -> None:
        for child in self.children:
            if child.is_alive():
                child.terminate()
                child.join(5)
                if child.is_alive():
                    child.kill()
                    child.join(5)
        self.children.clear()
        for proc in self.popen:
            stop_popen(proc)
        self.popen.clear()


def stop_popen(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass
class Server:
    impl: str
    proc: subprocess.Popen[bytes]
    port: int
    ws_url: str
    log_path: Path
    gc_file: Path | None = None

    def gc_stats(self) -> dict[str, Any] | None:
        if self.gc_file is None:
            return None
        try:
            return dict(json.loads(self.gc_file.read_text()))
        except (OSError, ValueError):
            return None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_server(
    impl: str, tmp: Path, plan: CpuPlan, procs: Processes, hub_src: Path | None, gc_stats: bool = True
) -> Server:
    port = free_port()
    log_path = tmp / f"{impl}-{port}.log"
    # Every simulated browser and agent shares 127.0.0.1 and the browsers one session: lift the per-address
    # connection cap and the per-session/-address stream caps for the benchmark (a hub's own env may still set them).
    env = {
        "NVRMON_MAX_CONNECTIONS_PER_ADDRESS": "0",
        "NVRMON_MAX_STREAMS_PER_SESSION": "0",
        "NVRMON_MAX_STREAMS_PER_ADDRESS": "0",
        **os.environ,
        "NVRMON_AGENT_TOKEN": TOKEN,
    }
    gc_file = None
    if impl == "nvrmon":
        src = hub_src or ROOT
        env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        db = tmp / f"bench-{port}.db"
        # `python -m nvrmon.cli serve …`, or the same through hubwrap.py, which only adds a GC-pause recorder.
        launcher = [str(BENCH / "hubwrap.py")] if gc_stats else ["-m", "nvrmon.cli"]
        if gc_stats:
            gc_file = tmp / f"gc-{port}.json"
            env["NVRMON_BENCH_GC_FILE"] = str(gc_file)
        cmd = [sys.executable, *launcher, "serve", "--port", str(port), "--db", str(db), "--log-level", "warning"]
        ws_url, cwd = f"ws://127.0.0.1:{port}/ws/agent", src
        # Pages, /api and /events need a login: a viewer account, created the way an operator would.
        account = subprocess.run(
            [sys.executable, "-m", "nvrmon.cli", "user", "add", BENCH_USER, "--role", "viewer", "--db", str(db)],
            input=BENCH_PASSWORD + "\n", env=env, cwd=src, capture_output=True, text=True, check=False,
        )  # fmt: skip
        with_login = account.returncode == 0  # a hub source from before accounts has no `user` command
    else:
        ws_port = free_port()
        cmd = [sys.executable, str(BENCH / "reference.py"), "--port", str(port), "--ws-port", str(ws_port),
               "--token", TOKEN]  # fmt: skip
        ws_url, cwd = f"ws://127.0.0.1:{ws_port}/ws/agent", BENCH
        with_login = False
    with log_path.open("ab") as log:
        proc = spawn_pinned(cmd, plan.server, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    procs.popen.append(proc)
    server = Server(impl, proc, port, ws_url, log_path, gc_file)
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{impl} exited during start-up:\n{server.log_tail()}")
        with contextlib.suppress(OSError):
            if http_get(port, "/healthz", timeout=2)[0] == 200:
                # Every later request of this run, and the forked agent and subscriber processes, send the cookie.
                os.environ[COOKIE_ENV] = login(port, BENCH_USER, BENCH_PASSWORD) if with_login else ""
                return server
        if time.monotonic() > deadline:
            raise RuntimeError(f"{impl} did not answer /healthz in 30 s:\n{server.log_tail()}")
        time.sleep(0.05)


def expect(conn: Connection, kind: str, timeout: float, what: str) -> Any:
    if not conn.poll(timeout):
        raise TimeoutError(f"{what}: no '{kind}' within {timeout:.0f} s")
    got, payload = conn.recv()
    if got == "error":
        raise RuntimeError(f"{what}: {payload}")
    if got != kind:
        raise RuntimeError(f"{what}: expected '{kind}', got '{got}'")
    return payload


def expect_plain(conn: Connection, timeout: float) -> Any:
    return conn.recv() if conn.poll(timeout) else None


def sleep_until(wall: float) -> None:
    delay = wall - time.time()
    if delay > 0:
        time.sleep(delay)


# -- one run ----------------------------------------------------------------------------------------------------------


def first_paint(port: int, repeats: int) -> dict[str, Any]:
    """GET each page `repeats` times (after one unmeasured warm-up) over fresh loopback connections."""
    pages: dict[str, Any] = {}
    for path in ("/", "/nvrs", "/cameras"):
        status, body, _, cold = http_get(port, path, timeout=120)
        ttfb, total = [], []
        for _ in range(repeats):
            status, body, headers_at, done = http_get(port, path, timeout=120)
            ttfb.append(headers_at * 1000)
            total.append(done * 1000)
        pages[path] = {
            "status": status,
            "bytes": len(body),
            "cold_ms": round(cold * 1000, 1),
            "median_ms": round(statistics.median(total), 1),
            "median_ttfb_ms": round(statistics.median(ttfb), 1),
            "max_ms": round(max(total), 1),
        }
    return pages


def run_once(impl: str, cfg: RunConfig, plan: CpuPlan, tmp: Path, hub_src: Path | None) -> dict[str, Any]:
    procs = Processes()
    try:
        return _run_once(impl, cfg, plan, tmp, hub_src, procs)
    finally:
        procs.stop_all()


def _run_once(
    impl: str, cfg: RunConfig, plan: CpuPlan, tmp: Path, hub_src: Path | None, procs: Processes
) -> dict[str, Any]:
    started = time.monotonic()
    server = start_server(impl, tmp, plan, procs, hub_src, cfg.gc_stats)
    pid = server.proc.pid
    result: dict[str, Any] = {"impl": impl, "config": asdict(cfg)}

    # Agents: connect, hello, learn camera db ids; heartbeats run from here on.
    agents_conn, child = CTX.Pipe()
    spec = FleetSpec(server.ws_url, server.port, TOKEN, cfg.agents, cfg.cameras, cfg.seed, cfg.heartbeat)
    agents = CTX.Process(target=agents_main, args=(child, spec), name="bench-agents", daemon=True)
    agents.start()
    procs.children.append(agents)
    ready = expect(agents_conn, "ready", 120 + cfg.agents / 10, f"{impl}: agents")
    initial: bytes = ready["status"]
    result.update(cameras_total=ready["cameras"], agents_setup_s=round(ready["setup_s"], 2))

    if cfg.first_paint and impl == "nvrmon":
        result["first_paint"] = first_paint(server.port, cfg.paint_repeats)

    # Subscribers: connect with the current cursor (as a page rendered now would), so nothing is missed in between.
    health = json.loads(http_get(server.port, "/healthz")[1])
    path = "/events?view=cameras&id=per%3D1000" + (f"&since={health['epoch']}-{health['seq']}" if cfg.cursor else "")
    before_connect = sample(pid)
    workers: list[Connection] = []
    worker_procs: list[BaseProcess] = []
    worker_sizes: list[int] = []
    n_workers = cfg.workers or (1 if cfg.subscribers < 200 else 2)
    n_workers = max(1, min(n_workers, cfg.subscribers)) if cfg.subscribers else 0
    for w in range(n_workers):
        count = cfg.subscribers // n_workers + (w < cfg.subscribers % n_workers)
        first = w * (cfg.subscribers // n_workers) + min(w, cfg.subscribers % n_workers)
        parent, child = CTX.Pipe()
        wspec = WorkerSpec(
            server.port, path, count, first, initial, cfg.connect_concurrency, count_messages=cfg.burst > 0
        )
        proc = CTX.Process(target=worker_main, args=(child, wspec), name=f"bench-subs-{w}", daemon=True)
        proc.start()
        procs.children.append(proc)
        workers.append(parent)
        worker_procs.append(proc)
        worker_sizes.append(count)
    connect_ms: list[float] = []
    failed = 0
    failures: list[str] = []
    spans: list[list[int]] = []
    for conn in workers:
        info = expect(conn, "connected", 120 + cfg.subscribers / 20, f"{impl}: subscribers")
        connect_ms.extend(info["connect_ms"])
        failed += info["failed"]
        failures.extend(info["failures"])
        spans.append(info["span_ns"])
    connected = sample(pid)
    connect_ms.sort()
    result["connect_ms"] = {
        "p50": round(percentile(connect_ms, 50), 2),
        "p99": round(percentile(connect_ms, 99), 2),
        "max": round(connect_ms[-1], 2) if connect_ms else 0.0,
        "failed": failed,
        "errors": failures[:3],
        # Wall time from the first connect to the last stream answering (the workers open theirs in parallel), and
        # the server CPU spent meanwhile (its agents heartbeat meanwhile too; that is noise at this scale).
        "all_s": round((max(e for _, e in spans) - min(b for b, _ in spans)) / 1e9, 3) if spans else 0.0,
        "cpu_s": round(connected.cpu_s - before_connect.cpu_s, 3),
    }
    time.sleep(0.5)
    before = sample(pid)
    result["rss_before_mb"] = round(before.rss_kb / 1024, 1)

    # The measured load.
    t0 = time.time() + 0.3
    log_path = str(tmp / f"sendlog-{impl}-{os.getpid()}-{int(t0)}.bin")
    burst_at = cfg.warmup + min(1.0, cfg.seconds / 4)
    schedule = Schedule(int(t0 * 1e9), cfg.warmup, cfg.seconds, cfg.rate, log_path, cfg.burst, burst_at)
    agents_conn.send(("go", schedule))
    w0, w1 = t0 + cfg.warmup, t0 + cfg.warmup + cfg.seconds
    load_pids = [c.pid for c in procs.children if c.pid is not None]
    probes = []
    for name, cpus in (("server_cpu", plan.server), ("load_cpu", plan.load)):
        parent, child = CTX.Pipe()
        probe = CTX.Process(target=stall_probe, args=(child, cpus), name=f"bench-probe-{name}", daemon=True)
        probe.start()
        procs.children.append(probe)
        probes.append((name, parent))
    sleep_until(w0)
    s0 = sample(pid)
    gc0 = server.gc_stats()
    l0 = sum(sample(p).cpu_s for p in load_pids)
    if cfg.pause_subscribers > 0 and worker_procs:
        # Slow consumers: freeze the first worker's subscribers (their sockets stop being read), then let them go.
        frozen = worker_procs[0].pid
        assert frozen is not None
        sleep_until(w0 + cfg.seconds / 3)
        os.kill(frozen, signal.SIGSTOP)
        try:
            time.sleep(min(cfg.pause_subscribers, max(0.0, w1 - time.time())))
        finally:
            os.kill(frozen, signal.SIGCONT)
        result["paused_subscribers"] = {"count": worker_sizes[0], "seconds": cfg.pause_subscribers}
    sleep_until(w1)
    s1 = sample(pid)
    gc1 = server.gc_stats()
    l1 = sum(sample(p).cpu_s for p in load_pids)
    noise = {}
    for name, conn in probes:
        conn.send("stop")
        noise[name] = expect_plain(conn, 10)
    result["noise"] = noise
    sent = expect(agents_conn, "sent", 60 + cfg.seconds, f"{impl}: change generator")

    # Drain: until every subscriber shows the last status sent for every camera, or --drain seconds.
    soft, hard = time.time() + cfg.drain, time.time() + cfg.drain + cfg.drain_extra
    pending = 0
    converged_at = time.time()
    for conn in workers:
        conn.send(("converge", (sent["final"], soft, hard)))
    for conn in workers:
        info = expect(conn, "converged", cfg.drain + cfg.drain_extra + 120, f"{impl}: drain")
        pending += info["pending"]
        converged_at = max(converged_at, info["t"])
    s2 = sample(pid)
    burst = sent["burst"]
    analysis_args = {"log_path": log_path, "w0_ns": int(w0 * 1e9), "w1_ns": int(w1 * 1e9), "final": sent["final"],
                     "burst_cams": burst.get("cameras"), "burst_t0_ns": burst.get("t0_ns", 0)}  # fmt: skip
    for conn in workers:
        conn.send(("analyse", analysis_args))
    parts = [expect(conn, "result", 600, f"{impl}: analysis") for conn in workers]
    if cfg.storm:
        result["storm"] = reconnect_storm(server, cfg, agents_conn, workers)
    agents_conn.send(("close", None))
    with contextlib.suppress(TimeoutError, RuntimeError):
        expect(agents_conn, "closed", 30, f"{impl}: agents close")
    alive = server.proc.poll() is None
    if not alive:
        result["server_crashed"] = server.log_tail()

    latencies = array("i")
    for part in parts:
        latencies.frombytes(part["latencies_us"])
    lat = sorted(latencies)
    deliveries = sum(p["delivered_in_window"] for p in parts)
    cpu = s1.cpu_s - s0.cpu_s
    expected = sent["sent_in_window"] * cfg.subscribers
    result.update(
        changes_sent=sent["sent"],
        changes_in_window=sent["sent_in_window"],
        achieved_rate=round(sent["achieved_rate"], 1),
        late_sends=sent["late_sends"],
        agent_errors=sent["agent_errors"],
        expected_deliveries=expected,
        deliveries=deliveries,
        deliveries_per_s=round(deliveries / cfg.seconds, 1),
        latency_ms={
            "count": len(lat),
            "p50": round(percentile(lat, 50) / 1000, 2),
            "p90": round(percentile(lat, 90) / 1000, 2),
            "p99": round(percentile(lat, 99) / 1000, 2),
            "max": round(lat[-1] / 1000, 2) if lat else 0.0,
        },
        missed=sum(p["missed"] for p in parts),
        missed_subscribers=sum(p["missed_subscribers"] for p in parts),
        undelivered=sum(p["undelivered"] for p in parts),
        superseded=sum(p["superseded"] for p in parts),
        duplicates=sum(p["duplicates"] for p in parts),
        unmatched_rows=sum(p["unmatched"] for p in parts),
        rows_received=sum(p["rows"] for p in parts),
        sse_messages=sum(p["messages"] for p in parts),
        bytes_per_row=round(sum(p["bytes"] for p in parts) / max(1, sum(p["rows"] for p in parts)), 1),
        subscriber_drops=sum(p["drops"] for p in parts),
        drain_pending_subscribers=pending,
        drain_s=round(max(0.0, converged_at - w1), 2),
        hub_cpu_s=round(cpu, 3),
        hub_cpu_ticks_s=round(s1.cpu_ticks_s - s0.cpu_ticks_s, 2),
        hub_cpu_pct=round(100 * cpu / cfg.seconds, 1),
        cpu_us_per_delivery=round(cpu * 1e6 / deliveries, 2) if deliveries else None,
        deliveries_per_cpu_s=round(deliveries / cpu) if cpu > 0 else None,
        # If this is near 100, the load generators (one CPU) were the bottleneck, not the server.
        load_cpu_pct=round(100 * (l1 - l0) / cfg.seconds, 1),
        rss_mb=round(s1.rss_kb / 1024, 1),
        rss_peak_mb=round(s2.hwm_kb / 1024, 1),
        rss_after_drain_mb=round(s2.rss_kb / 1024, 1),
        server_alive=alive,
        wall_s=round(time.monotonic() - started, 1),
    )
    if "paused_subscribers" in result and len(parts) > 1:
        # The subscribers that kept reading: does one slow half hold the other half back?
        others = array("i")
        for part in parts[1:]:
            others.frombytes(part["latencies_us"])
        rest = sorted(others)
        result["latency_unpaused_ms"] = {
            "count": len(rest),
            "p50": round(percentile(rest, 50) / 1000, 2),
            "p99": round(percentile(rest, 99) / 1000, 2),
            "max": round(rest[-1] / 1000, 2) if rest else 0.0,
        }
    if gc0 is not None and gc1 is not None:
        result["gc"] = gc_window(gc0, gc1, w0, w1)
    if cfg.burst:
        conv = sorted(c for p in parts for c in p["burst_converge_ms"])
        msgs = sorted(m for p in parts for m in p["burst_messages"])
        result["burst"] = {
            "cameras": len(burst.get("cameras", [])),
            "send_span_ms": round((burst.get("last_ns", 0) - burst.get("t0_ns", 0)) / 1e6, 2),
            "converged_subscribers": len(conv),
            "not_converged_subscribers": sum(p["burst_not_converged"] for p in parts),
            "converge_ms_p50": round(percentile(conv, 50), 1),
            "converge_ms_max": round(conv[-1], 1) if conv else None,
            "messages_per_subscriber_p50": percentile(msgs, 50),
            "messages_per_subscriber_max": msgs[-1] if msgs else None,
            "bytes_per_subscriber_p50": percentile(sorted(b for p in parts for b in p["burst_bytes"]), 50),
        }
    with contextlib.suppress(OSError):
        os.unlink(log_path)
    return result


def reconnect_storm(
    server: Server, cfg: RunConfig, agents_conn: Connection, workers: list[Connection]
) -> dict[str, Any]:
    """Every stream is closed by now (the analysis closed them, as a hub restart would). Change `cfg.storm` cameras
    while they are away, then reopen them all at once with their Last-Event-ID: how long until every subscriber
    shows the new state (its catch-up arrived), the server CPU that took, and whether what a sample of them shows
    equals what /api says."""
    pid = server.proc.pid
    agents_conn.send(("flip", cfg.storm))
    want: bytes = expect(agents_conn, "flipped", 60, "storm: flips")
    time.sleep(1.0)  # committed (and published to nobody) before anyone is back
    before = sample(pid)
    deadline = time.time() + 60
    for conn in workers:
        conn.send(("storm", (want, deadline, 3)))
    infos = [expect(conn, "stormed", 120, "storm") for conn in workers]
    after = sample(pid)
    starts = [i["started_ns"] for i in infos]
    converge = sorted(ms + (i["started_ns"] - min(starts)) / 1e6 for i in infos for ms in i["converge_ms"])
    statuses = {int(c["id"]): STATUS_CODES.get(str(c["status"]).encode(), 4) for c in api_cameras(server.port)}
    samples = [sample_state for i in infos for sample_state in i["samples"]]
    equal = sum(all(cam < len(st) and st[cam] == code for cam, code in statuses.items()) for st in samples)
    return {
        "changed": cfg.storm,
        "subscribers": cfg.subscribers,
        "converged": len(converge),
        "not_converged": sum(i["not_converged"] for i in infos),
        "failed": sum(i["failed"] for i in infos),
        "converge_ms_p50": round(percentile(converge, 50), 1),
        "converge_ms_max": round(converge[-1], 1) if converge else None,
        "cpu_s": round(after.cpu_s - before.cpu_s, 3),
        "bytes_per_subscriber": round(sum(i["bytes"] for i in infos) / max(1, cfg.subscribers)),
        "sampled": len(samples),
        "sample_equal_api": equal,
    }


def gc_window(before: dict[str, Any], after: dict[str, Any], w0: float, w1: float) -> dict[str, Any]:
    """The hub's garbage-collector activity inside the window (from hubwrap.py's cumulative stats)."""
    gens = {}
    for g in ("0", "1", "2"):
        a, b = before["generations"][g], after["generations"][g]
        gens[f"gen{g}_count"] = b["count"] - a["count"]
        gens[f"gen{g}_ms"] = round((b["total_s"] - a["total_s"]) * 1000, 1)
    full = [pause for end, pause in after["full"] if w0 <= end <= w1 + 0.5]
    gens["full_max_ms"] = round(max(full) * 1000, 1) if full else 0.0
    return gens


# -- reporting --------------------------------------------------------------------------------------------------------


def ratio(ours: float | None, ref: float | None) -> float | None:
    if ours is None or ref is None or ref == 0:
        return None
    return round(ours / ref, 2)


def ratios(runs: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    if not all(i in runs for i in IMPLS):
        return {}
    ours, ref = runs["nvrmon"], runs["reference"]
    return {
        "latency_p99": ratio(ours["latency_ms"]["p99"], ref["latency_ms"]["p99"]),
        "cpu_us_per_delivery": ratio(ours["cpu_us_per_delivery"], ref["cpu_us_per_delivery"]),
        "deliveries_per_s": ratio(ours["deliveries_per_s"], ref["deliveries_per_s"]),
        "deliveries_per_cpu_s": ratio(ours["deliveries_per_cpu_s"], ref["deliveries_per_cpu_s"]),
        "connect_all_s": ratio(ours["connect_ms"].get("all_s"), ref["connect_ms"].get("all_s")),
        "rss_mb": ratio(ours["rss_mb"], ref["rss_mb"]),
        "storm_converge_ms": ratio(
            ours.get("storm", {}).get("converge_ms_max"), ref.get("storm", {}).get("converge_ms_max")
        ),
    }


def fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        text = f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = str(value)
    return text + unit


def print_run(r: dict[str, Any]) -> None:
    lat = r["latency_ms"]
    print(
        f"  {r['impl']:<9} sent {r['changes_in_window']:,} ({r['achieved_rate']:g}/s)  deliveries {r['deliveries']:,}"
        f" of ≤{r['expected_deliveries']:,} ({fmt(r['deliveries_per_s'])}/s)\n"
        f"            latency ms p50 {lat['p50']} p90 {lat['p90']} p99 {lat['p99']} max {lat['max']}"
        f"  | missed {r['missed']} undelivered {r['undelivered']} superseded {r['superseded']}"
        f" duplicates {r['duplicates']} drops {r['subscriber_drops']}\n"
        f"            server CPU {r['hub_cpu_s']} s ({r['hub_cpu_pct']}%)  {fmt(r['cpu_us_per_delivery'])} µs/delivery"
        f"  {fmt(r['deliveries_per_cpu_s'])} deliveries/CPU-s  RSS {r['rss_mb']} MB (peak {r['rss_peak_mb']})"
        f"  load CPU {r['load_cpu_pct']}%"
        f"  connect p50 {r['connect_ms']['p50']} p99 {r['connect_ms']['p99']} ms"
        f" (failed {r['connect_ms']['failed']}; all in {r['connect_ms'].get('all_s')} s,"
        f" {r['connect_ms'].get('cpu_s')} s server CPU)  drain {r['drain_s']} s"
    )
    if "storm" in r:
        st = r["storm"]
        print(
            f"            reconnect storm ({st['subscribers']:,} streams, {st['changed']} cameras changed while away):"
            f" all converged after {fmt(st['converge_ms_max'])} ms (p50 {st['converge_ms_p50']} ms,"
            f" {st['not_converged']} never, {st['failed']} failed), server CPU {st['cpu_s']} s,"
            f" {fmt(st['bytes_per_subscriber'])} bytes/subscriber; sample equal to /api: {st['sample_equal_api']}"
            f" of {st['sampled']}"
        )
    if "latency_unpaused_ms" in r:
        u = r["latency_unpaused_ms"]
        print(
            f"            subscribers not frozen ({r['config']['subscribers'] - r['paused_subscribers']['count']:,}):"
            f" latency ms p50 {u['p50']} p99 {u['p99']} max {u['max']}"
        )
    gcs = r.get("gc")
    if gcs:
        print(
            f"            hub GC in window: {gcs['gen2_count']} full collections, {gcs['gen2_ms']} ms total, longest "
            f"{gcs['full_max_ms']} ms; gen0 {gcs['gen0_count']} in {gcs['gen0_ms']} ms, gen1 {gcs['gen1_count']} in "
            f"{gcs['gen1_ms']} ms"
        )
    noise = r.get("noise", {})
    if noise:
        print(
            "            machine noise (longest stall of a 5 ms sleeper): "
            + ", ".join(
                f"{k} {v['max_stall_ms']} ms ({v['stalls_over_20ms']} over 20 ms)" for k, v in noise.items() if v
            )
        )
    if "burst" in r:
        b = r["burst"]
        print(
            f"            burst {b['cameras']} cameras (sent in {b['send_span_ms']} ms): converged p50 "
            f"{b['converge_ms_p50']} ms, all {fmt(b['converge_ms_max'])} ms ({b['not_converged_subscribers']} never);"
            f" messages/subscriber p50 {b['messages_per_subscriber_p50']:g} max {fmt(b['messages_per_subscriber_max'])}"
            f" ({fmt(b['bytes_per_subscriber_p50'] / 1024)} KiB p50)"
        )
    if "first_paint" in r:
        for path, page in r["first_paint"].items():
            print(
                f"            GET {path:<8} median {page['median_ms']} ms (headers {page['median_ttfb_ms']} ms, "
                f"cold {page['cold_ms']} ms, {page['bytes']:,} bytes, HTTP {page['status']})"
            )
    if not r["server_alive"]:
        print(f"            SERVER DIED:\n{r.get('server_crashed', '')}")


def print_ratios(rat: dict[str, float | None]) -> None:
    if rat:
        keys = ("latency_p99", "cpu_us_per_delivery", "deliveries_per_s", "deliveries_per_cpu_s")
        latency, cpu, rate, capacity = (fmt(rat[k]) for k in keys)
        print(
            f"  ours/ceiling: latency p99 x{latency}  CPU µs/delivery x{cpu}  deliveries/s x{rate}"
            f"  deliveries per CPU-second x{capacity}  connect all x{fmt(rat.get('connect_all_s'))}"
            f"  RSS x{fmt(rat.get('rss_mb'))}"
            + (f"  storm converged x{fmt(rat['storm_converge_ms'])}" if rat.get("storm_converge_ms") else "")
        )


def compare(impls: list[str], cfg: RunConfig, plan: CpuPlan, tmp: Path, hub_src: Path | None) -> dict[str, Any]:
    print(f"== {cfg.describe()}", flush=True)
    runs: dict[str, dict[str, Any]] = {}
    for impl in impls:
        runs[impl] = run_once(impl, cfg, plan, tmp, hub_src)
        print_run(runs[impl])
        sys.stdout.flush()
    rat = ratios(runs)
    print_ratios(rat)
    return {"subscribers": cfg.subscribers, "rate": cfg.rate, "config": asdict(cfg), "runs": runs, "ratios": rat}


# -- targets (from the "Fast at fleet scale" issue) -------------------------------------------------------------------


def targets(
    cells: list[dict[str, Any]], scenarios: dict[str, Any], saturation: bool = False
) -> list[tuple[str, str, str, str]]:
    """(target, nvrmon's figure, the reference's figure, verdict for nvrmon) for every target the runs cover."""
    ours = _measure(cells, scenarios, saturation, "nvrmon")
    ref = {name: text for name, text, _ in _measure(cells, scenarios, saturation, "reference")}
    return [(name, text, ref.get(name, "–"), verdict) for name, text, verdict in ours] + relative_targets(
        cells, scenarios
    )


def relative_targets(cells: list[dict[str, Any]], scenarios: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The targets of the "past the Python ceiling" issue: ours ÷ the reference's, in the same run."""
    rows: list[tuple[str, str, str, str]] = []

    def verdict(ok: bool) -> str:
        return "meets" if ok else "MISSES"

    both = [c for c in cells if all(i in c["runs"] for i in IMPLS) and c["subscribers"] <= 5000 and c["rate"] <= 100]
    for c in both:
        ours, ref = c["runs"]["nvrmon"], c["runs"]["reference"]
        where = f"{c['subscribers']:,} x {c['rate']:g}/s"
        rat = c["ratios"].get("cpu_us_per_delivery")
        rows.append(
            (
                f"{where}: CPU per delivery ≤ 1.1x the reference",
                f"{fmt(ours['cpu_us_per_delivery'])} µs (x{fmt(rat)})",
                f"{fmt(ref['cpu_us_per_delivery'])} µs",
                verdict(rat is not None and rat <= 1.1),
            )
        )
        if c["subscribers"] == 5000 and c["rate"] == 10:
            rat = c["ratios"].get("latency_p99")
            rows.append(
                (
                    f"{where}: p99 ≤ 1.2x the reference",
                    f"{fmt(ours['latency_ms']['p99'])} ms (x{fmt(rat)})",
                    f"{fmt(ref['latency_ms']['p99'])} ms",
                    verdict(rat is not None and rat <= 1.2),
                )
            )
        if c["subscribers"] == 5000:
            rat = c["ratios"].get("connect_all_s")
            rows.append(
                (
                    f"{where}: connecting 5,000 streams ≤ 2x the reference's time",
                    f"{fmt(ours['connect_ms'].get('all_s'))} s (x{fmt(rat)})",
                    f"{fmt(ref['connect_ms'].get('all_s'))} s",
                    verdict(rat is not None and rat <= 2),
                )
            )
            rows.append(
                (
                    f"{where}: RSS with 5,000 streams ≤ 100 MB",
                    f"{fmt(ours['rss_mb'])} MB",
                    f"{fmt(ref['rss_mb'])} MB",
                    verdict(ours["rss_mb"] <= 100),
                )
            )
    storm = scenarios.get("storm", {}).get("runs", {})
    if "nvrmon" in storm and "storm" in storm["nvrmon"]:
        st = storm["nvrmon"]["storm"]
        ref_st = storm.get("reference", {}).get("storm", {})
        ok = (st["not_converged"] == 0 and st["converge_ms_max"] is not None and st["converge_ms_max"] <= 2000
              and st["sample_equal_api"] == st["sampled"])  # fmt: skip
        rows.append(
            (
                f"{st['subscribers']:,}-stream reconnect storm converged (sample equal to /api) ≤ 2 s",
                f"{fmt(st['converge_ms_max'])} ms, CPU {st['cpu_s']} s, {st['sample_equal_api']}/{st['sampled']} equal",
                f"{fmt(ref_st.get('converge_ms_max'))} ms, CPU {ref_st.get('cpu_s')} s",
                verdict(ok),
            )
        )
    return rows


def _measure(
    cells: list[dict[str, Any]], scenarios: dict[str, Any], saturation: bool, impl: str
) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []

    def cell(m: int, r: float) -> dict[str, Any] | None:
        for c in cells:
            if c["subscribers"] == m and c["rate"] == r and impl in c["runs"]:
                return dict(c["runs"][impl])
        return None

    def verdict(ok: bool | None) -> str:
        return "not run" if ok is None else ("meets" if ok else "MISSES")

    c = cell(1000, 100)
    rows.append(("1,000 subs x 100 changes/s: p99 ≤ 50 ms", fmt(c and c["latency_ms"]["p99"], " ms"),
                 verdict(None if c is None else c["latency_ms"]["p99"] <= 50)))  # fmt: skip
    rows.append(("1,000 subs x 100 changes/s: zero missed", fmt(c and c["missed"]),
                 verdict(None if c is None else c["missed"] == 0)))  # fmt: skip
    cpu = c["cpu_us_per_delivery"] if c else None
    rows.append(("1,000 subs x 100 changes/s: ≤ 3 µs hub CPU per delivered change", fmt(cpu, " µs"),
                 verdict(None if c is None else cpu is not None and cpu <= 3)))  # fmt: skip
    c = cell(5000, 10)
    rows.append(("5,000 subs x 10 changes/s: p99 ≤ 150 ms", fmt(c and c["latency_ms"]["p99"], " ms"),
                 verdict(None if c is None else c["latency_ms"]["p99"] <= 150)))  # fmt: skip
    runs = [(c, c["runs"][impl]) for c in cells if impl in c["runs"]]
    if runs and saturation:
        # Only cells that kept up count: a cell that delivers fast but seconds late is a backlog, not a rate.
        kept = [(c, r) for c, r in runs if r["latency_ms"]["p99"] <= 1000 and r["missed"] == 0 and r["deliveries"]]
        name = "≥ 500k deliveries/s on one core: best cell with p99 ≤ 1 s and nothing missed"
        name2 = "… deliveries per server CPU-second in such a cell (one saturated core at that batching)"
        if kept:
            c, r = max(kept, key=lambda cr: cr[1]["deliveries_per_s"])
            where = f" (M={c['subscribers']:,}, R={c['rate']:g}; p99 {fmt(r['latency_ms']['p99'])} ms)"
            rows.append((name, fmt(r["deliveries_per_s"], "/s") + where, verdict(r["deliveries_per_s"] >= 500_000)))
            c, r = max(kept, key=lambda cr: cr[1]["deliveries_per_cpu_s"] or 0)
            capacity = r["deliveries_per_cpu_s"] or 0
            where = f" (M={c['subscribers']:,}, R={c['rate']:g})"
            rows.append((name2, fmt(capacity, "/s") + where, verdict(capacity >= 500_000)))
        else:
            rows.append((name, "no cell kept up", "MISSES"))
            rows.append((name2, "–", "MISSES"))
        c, r = max(runs, key=lambda cr: cr[1]["deliveries_per_s"])
        rows.append(("(highest deliveries/s of any cell, whatever its latency)",
                     f"{fmt(r['deliveries_per_s'])}/s (M={c['subscribers']:,}, R={c['rate']:g}; p99 "
                     f"{fmt(r['latency_ms']['p99'])} ms, load CPU {r['load_cpu_pct']}%)", "–"))  # fmt: skip
    else:
        rows.append(("≥ 500k deliveries/s at saturation on one core", "–", "not run (--matrix only)"))
    idle = scenarios.get("idle", {}).get("runs", {}).get(impl)
    rows.append(("2,000 agents + 1,000 subs: hub RSS ≤ 300 MB", fmt(idle and idle["rss_peak_mb"], " MB (peak)"),
                 verdict(None if idle is None else idle["rss_peak_mb"] <= 300)))  # fmt: skip
    rows.append(("2,000 agents + 1,000 subs: idle CPU ≤ 10%", fmt(idle and idle["hub_cpu_pct"], " %"),
                 verdict(None if idle is None else idle["hub_cpu_pct"] <= 10)))  # fmt: skip
    b = scenarios.get("burst", {}).get("runs", {}).get(impl, {}).get("burst")
    ok_conv = None if b is None else (b["converge_ms_max"] is not None and b["converge_ms_max"] <= 300)
    rows.append(("500-camera burst converged ≤ 300 ms", fmt(b and b["converge_ms_max"], " ms"), verdict(ok_conv)))
    ok_msgs = None if b is None else (b["messages_per_subscriber_max"] or 10**9) <= 5
    rows.append(("500-camera burst: ≤ 5 messages per browser", fmt(b and b["messages_per_subscriber_max"], " (max)"),
                 verdict(ok_msgs)))  # fmt: skip
    paint = (scenarios.get("first_paint") or scenarios.get("idle") or {}).get("runs", {}).get(impl, {})
    pages = paint.get("first_paint")
    name = "first paint ≤ 100 ms at 2,000 NVRs / 30,000 cameras (worst page median)"
    if pages:
        worst = max(p["median_ms"] for p in pages.values())
        ok = all(p["status"] == 200 for p in pages.values()) and worst <= 100
        rows.append((name, fmt(worst, " ms"), verdict(ok)))
    else:
        rows.append((name, "–", "not run" if impl == "nvrmon" else "–"))
    return rows


def gc_cell(r: dict[str, Any]) -> str:
    gcs = r.get("gc")
    return f"{gcs['gen2_count']} ({fmt(gcs['full_max_ms'])})" if gcs else "–"


NOISY_STALLS = 15  # stalls over 20 ms on either CPU within one window: the figures are the neighbours' as much as ours


def stall_cell(r: dict[str, Any]) -> str:
    noise = [v for v in r.get("noise", {}).values() if v]
    if not noise:
        return "–"
    stalls = max(v["stalls_over_20ms"] for v in noise)
    text = f"{fmt(max(v['max_stall_ms'] for v in noise))} ({stalls})"
    return text + (" noisy" if stalls >= NOISY_STALLS else "")


def markdown(report: dict[str, Any]) -> str:
    out = ["# nvrmon fleet-scale benchmark results", ""]
    out.append("Generated by `bench/run.py` (see bench/README.md for method). Do not edit by hand.")
    out.append("")
    out.append("## Machine")
    out.append("")
    out.extend(f"- {k}: {v}" for k, v in report["machine"].items())
    out.append(f"- pinning: {report['pinning']}")
    out.append(f"- hub source: {report['hub_src']}")
    out.append(f"- date: {report['date']}")
    out.append("")
    out.append("## Command")
    out.append("")
    out.append(f"```\n{report['command']}\n```")
    out.append("")
    cells = report.get("cells", [])
    if cells:
        cfg = cells[0]["config"]
        out.append("## Matrix: M subscribers x R changes/s")
        out.append("")
        out.append(
            f"{cfg['agents']} agents x {cfg['cameras']} cameras, {cfg['warmup']:g} s warm-up + {cfg['seconds']:g} s "
            f"measured, drain {cfg['drain']:g} s (+ up to {cfg.get('drain_extra', 0):g} s while still converging). "
            "Latency: agent send → subscriber receive per (change, subscriber) delivery, for changes sent inside "
            "the window. CPU: on-CPU time of all the server's threads over the "
            "window. Full GCs: the hub's generation-2 collections in the window (longest pause). Load CPU: agents and "
            "subscriber workers (near 100 = client-bound). Stall: longest oversleep of a 5 ms sleeper on either CPU "
            f"and how many exceeded 20 ms (machine noise; 'noisy' from {NOISY_STALLS}: repeat that cell before "
            "trusting its latency or CPU figures)."
        )
        out.append("")
        head = ("M", "R", "impl", "sent/s", "deliveries/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "missed",
                "undeliv.", "supers.", "dup", "drops", "CPU %", "µs/deliv.", "deliv./CPU-s", "RSS peak MB",
                "connect p50/p99 ms", "full GCs (max ms)", "load CPU %", "stall max ms (n > 20 ms)")  # fmt: skip
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        for c in cells:
            for impl, r in c["runs"].items():
                lat = r["latency_ms"]
                out.append(
                    "| "
                    + " | ".join(
                        [
                            fmt(c["subscribers"]),
                            f"{c['rate']:g}",
                            impl,
                            fmt(r["achieved_rate"]),
                            fmt(r["deliveries_per_s"]),
                            fmt(lat["p50"]),
                            fmt(lat["p90"]),
                            fmt(lat["p99"]),
                            fmt(lat["max"]),
                            fmt(r["missed"]),
                            fmt(r["undelivered"]),
                            fmt(r["superseded"]),
                            fmt(r["duplicates"]),
                            fmt(r["subscriber_drops"]),
                            fmt(r["hub_cpu_pct"]),
                            fmt(r["cpu_us_per_delivery"]),
                            fmt(r["deliveries_per_cpu_s"]),
                            fmt(r["rss_peak_mb"]),
                            f"{fmt(r['connect_ms']['p50'])} / {fmt(r['connect_ms']['p99'])}",
                            gc_cell(r),
                            fmt(r["load_cpu_pct"]),
                            stall_cell(r),
                        ]
                    )
                    + " |"
                )
        out.append("")
        out.append("### Ours / ceiling (nvrmon ÷ reference; >1 means the hub is slower or costlier)")
        out.append("")
        out.append(
            "| M | R | latency p99 | CPU µs per delivery | deliveries/s | deliveries per CPU-second | "
            "connect all | RSS |"
        )
        out.append("|---|---|---|---|---|---|---|---|")
        for c in cells:
            rat = c["ratios"]
            if rat:
                out.append(
                    f"| {fmt(c['subscribers'])} | {c['rate']:g} | {fmt(rat['latency_p99'])} | "
                    f"{fmt(rat['cpu_us_per_delivery'])} | {fmt(rat['deliveries_per_s'])} | "
                    f"{fmt(rat['deliveries_per_cpu_s'])} | {fmt(rat.get('connect_all_s'))} | {fmt(rat.get('rss_mb'))} |"
                )
        out.append("")
        out.append("### Connecting and holding the streams")
        out.append("")
        out.append(
            "All M streams opened with the current cursor, at most 64 connects in flight per worker: wall time "
            "from the first connect to the last stream's headers, the server's CPU meanwhile, and its RSS "
            "with every stream open (at the end of the window)."
        )
        out.append("")
        out.append("| M | R | impl | connect all s | connect CPU s | RSS MB |")
        out.append("|---|---|---|---|---|---|")
        for c in cells:
            for impl, r in c["runs"].items():
                cm = r["connect_ms"]
                out.append(f"| {fmt(c['subscribers'])} | {c['rate']:g} | {impl} | {fmt(cm.get('all_s'))} | "
                           f"{fmt(cm.get('cpu_s'))} | {fmt(r['rss_mb'])} |")  # fmt: skip
        best = {
            impl: max((c["runs"][impl]["deliveries_per_s"] for c in cells if impl in c["runs"]), default=0)
            for impl in IMPLS
        }
        out.append("")
        out.append(
            f"Max measured deliveries/s: nvrmon {fmt(best['nvrmon'])}, reference {fmt(best['reference'])}"
            f" (ratio {fmt(ratio(best['nvrmon'], best['reference']))})."
        )
        out.append("")
    scenarios = report.get("scenarios", {})
    for name, title in (("burst", "Burst"), ("storm", "Reconnect storm"), ("idle", "Idle fleet"),
                        ("first_paint", "First paint")):  # fmt: skip
        sc = scenarios.get(name)
        if not sc:
            continue
        out.append(f"## {title}: {sc['description']}")
        out.append("")
        for impl, r in sc["runs"].items():
            if name == "burst" and "burst" in r:
                b = r["burst"]
                out.append(
                    f"- {impl}: {b['cameras']} `offline` frames sent in {b['send_span_ms']} ms; every subscriber "
                    f"converged after {fmt(b['converge_ms_max'])} ms (p50 {b['converge_ms_p50']} ms, "
                    f"{b['not_converged_subscribers']} never); SSE messages per subscriber until converged: p50 "
                    f"{b['messages_per_subscriber_p50']:g}, max {fmt(b['messages_per_subscriber_max'])} "
                    f"({fmt(b['bytes_per_subscriber_p50'] / 1024)} KiB p50); missed "
                    f"{r['missed']}; server CPU {r['hub_cpu_s']} s"
                )
            elif name == "storm" and "storm" in r:
                st = r["storm"]
                out.append(
                    f"- {impl}: every stream converged after {fmt(st['converge_ms_max'])} ms (p50 "
                    f"{st['converge_ms_p50']} ms; {st['not_converged']} never, {st['failed']} failed); server CPU "
                    f"{st['cpu_s']} s; {fmt(st['bytes_per_subscriber'])} bytes per stream; a sample of "
                    f"{st['sampled']} equal to /api: {st['sample_equal_api']}"
                )
            elif name == "idle":
                out.append(
                    f"- {impl}: RSS {r['rss_mb']} MB (peak {r['rss_peak_mb']} MB), CPU {r['hub_cpu_pct']} % of one "
                    f"core over {r['config']['seconds']:g} s, agent set-up {r['agents_setup_s']} s, subscriber "
                    f"connect p50/p99 {r['connect_ms']['p50']}/{r['connect_ms']['p99']} ms "
                    f"({r['connect_ms']['failed']} failed)"
                )
            if "first_paint" in r:
                for path, page in r["first_paint"].items():
                    out.append(
                        f"- {impl} GET `{path}`: median {page['median_ms']} ms (headers after "
                        f"{page['median_ttfb_ms']} ms; cold {page['cold_ms']} ms; max {page['max_ms']} ms), "
                        f"{page['bytes']:,} bytes, HTTP {page['status']}"
                    )
        out.append("")
    out.append("## Targets")
    out.append("")
    out.append("| target | nvrmon | reference (ceiling, same load) | verdict (nvrmon) |")
    out.append("|---|---|---|---|")
    for target, measured, ceiling, verdict in report.get("targets", []):
        out.append(f"| {target} | {measured} | {ceiling} | {verdict} |")
    out.append("")
    return "\n".join(out)


# -- command line -----------------------------------------------------------------------------------------------------


def describe_source(src: Path) -> str:
    try:
        rev = subprocess.run(["git", "-C", str(src), "describe", "--always", "--dirty"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return str(src)
    return f"{src} (git {rev})"


def parse_list(text: str, kind: type) -> list[Any]:
    return [kind(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="nvrmon fleet-scale benchmark (hub vs plain-asyncio reference).")
    p.add_argument("--impl", choices=["both", *IMPLS], default="both", help="which server(s) to run")
    p.add_argument("--agents", type=int, help="simulated NVR agents (default 50; 2000 with --idle/--first-paint)")
    p.add_argument("--cameras", type=int, help="cameras per agent (default 16; 15 with --idle/--first-paint)")
    p.add_argument("--subscribers", "-M", type=int, help="SSE subscribers (default 1000)")
    p.add_argument("--rate", "-R", type=float, help="camera status changes per second, fleet-wide (default 100)")
    p.add_argument("--seconds", type=float, help="measured window (default 10; 5 per matrix cell)")
    p.add_argument("--warmup", type=float, help="load before the window starts (default 2; 1 per matrix cell)")
    p.add_argument("--drain", type=float, default=10.0,
                   help="wait this long for subscribers to converge after the load (up to 50 s more while they still "
                        "make progress)")  # fmt: skip
    p.add_argument("--workers", type=int, default=0, help="subscriber worker processes (default: 1 or 2)")
    p.add_argument("--burst", type=int, default=0, metavar="K", help="K cameras go offline at once in the window")
    p.add_argument("--idle", action="store_true", help="2,000 agents + 1,000 subscribers, no changes: RSS, idle CPU")
    p.add_argument("--first-paint", action="store_true", help="2,000 NVRs x 15 cameras: time GET /, /nvrs, /cameras")
    p.add_argument("--matrix", action="store_true", help="run the M x R grid (+ scenarios) and write RESULTS.md")
    p.add_argument("--subs-list", default="100,1000,5000", help="matrix M values")
    p.add_argument("--rates", default="10,100,1000", help="matrix R values")
    p.add_argument("--no-scenarios", action="store_true", help="with --matrix: skip burst, idle and first paint")
    p.add_argument("--smoke", action="store_true", help="tiny run (5 agents, 20 subscribers, 2 s) for the tests")
    p.add_argument("--pause-subscribers", type=float, default=0.0, metavar="S",
                   help="slow consumers: a third into the window, stop reading on the first worker's subscribers "
                        "(half of them) for S seconds")  # fmt: skip
    p.add_argument("--storm", type=int, default=0, metavar="K",
                   help="after the run: close every stream, change K cameras, reopen all at once with Last-Event-ID "
                        "(a hub restart's reconnect storm); with --matrix: the storm scenario's K (default 200)",
                   )  # fmt: skip
    p.add_argument("--no-cursor", action="store_true", help="subscribe without ?since= (full refresh per subscriber)")
    p.add_argument("--no-pin", action="store_true", help="don't pin server and load to separate CPUs")
    p.add_argument("--no-gc-stats", action="store_true", help="start the hub with -m nvrmon.cli, not via hubwrap.py")
    p.add_argument("--hub-src", type=Path, help="run the hub from this source tree (default: this checkout)")
    p.add_argument("--label", default="", help="free-form note on what was measured (e.g. the hub's commit)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", type=Path, metavar="OUT", help="write the full report as JSON")
    p.add_argument("--results", type=Path, default=BENCH / "RESULTS.md", help="markdown output of --matrix")
    args = p.parse_args(argv)

    plan = CpuPlan.default(not args.no_pin)
    host = machine()  # before pinning, so it sees every usable CPU
    pin_self(plan.load)
    raise_fd_limit(1 << 20)
    impls = list(IMPLS) if args.impl == "both" else [args.impl]
    hub_src = args.hub_src.resolve() if args.hub_src else None
    report: dict[str, Any] = {
        "machine": host,
        "pinning": plan.describe(),
        "hub_src": describe_source(hub_src or ROOT) + (f" — {args.label}" if args.label else ""),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": "python3 bench/run.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
    }
    big = args.idle or args.first_paint
    base = RunConfig(
        agents=args.agents or (2000 if big else 50),
        cameras=args.cameras or (15 if big else 16),
        subscribers=args.subscribers if args.subscribers is not None else 1000,
        rate=args.rate if args.rate is not None else (0.0 if big else 100.0),
        seconds=args.seconds or (5.0 if args.matrix else 10.0),
        warmup=args.warmup if args.warmup is not None else (1.0 if args.matrix else 2.0),
        drain=args.drain,
        workers=args.workers,
        burst=args.burst,
        first_paint=args.first_paint,
        cursor=not args.no_cursor,
        seed=args.seed,
        gc_stats=not args.no_gc_stats,
        pause_subscribers=args.pause_subscribers,
        storm=0 if args.matrix else args.storm,
    )
    if args.smoke:
        base = replace(base, agents=args.agents or 5, cameras=args.cameras or 4, subscribers=args.subscribers or 20,
                       rate=args.rate or 20.0, seconds=args.seconds or 2.0, warmup=0.5, drain=min(args.drain, 5.0),
                       drain_extra=10.0, workers=1)  # fmt: skip
    print(f"machine: {report['machine']['cpu']}, {report['machine']['cores']}; {plan.describe()}", flush=True)

    with tempfile.TemporaryDirectory(prefix="nvrmon-bench-") as tmpdir:
        tmp = Path(tmpdir)
        if args.matrix:
            cells = []
            for m in parse_list(args.subs_list, int):
                for r in parse_list(args.rates, float):
                    cells.append(compare(impls, replace(base, subscribers=m, rate=r), plan, tmp, hub_src))
            report["cells"] = cells
            scenarios: dict[str, Any] = {}
            if not args.no_scenarios:
                k = args.burst or 500
                burst_cfg = replace(base, subscribers=1000, rate=10.0, burst=k, seconds=max(base.seconds, 3.0))
                scenarios["burst"] = compare(impls, burst_cfg, plan, tmp, hub_src)
                scenarios["burst"]["description"] = f"{k} cameras offline at once, 1,000 subscribers, 10 changes/s"
                idle_cfg = replace(base, agents=2000, cameras=15, subscribers=1000, rate=0.0, seconds=20.0,
                                   warmup=2.0, first_paint=True)  # fmt: skip
                k = args.storm or 200
                storm_subs = max(parse_list(args.subs_list, int))
                storm_cfg = replace(base, subscribers=storm_subs, rate=10.0, storm=k)
                scenarios["storm"] = compare(impls, storm_cfg, plan, tmp, hub_src)
                scenarios["storm"]["description"] = (
                    f"{storm_subs:,} streams dropped at once, {k} cameras changed while away, all reopened with their "
                    "Last-Event-ID"
                )
                scenarios["idle"] = compare(impls, idle_cfg, plan, tmp, hub_src)
                scenarios["idle"]["description"] = (
                    "2,000 agents (15 cameras each, heartbeats every 10 s) + 1,000 subscribers, no changes, 20 s; "
                    "first paint timed on the same fleet before the subscribers connect"
                )
            report["scenarios"] = scenarios
            report["targets"] = targets(cells, scenarios, saturation=True)
            args.results.write_text(markdown(report))
            print(f"wrote {args.results}")
        else:
            result = compare(impls, base, plan, tmp, hub_src)
            report.update(config=asdict(base), runs=result["runs"], ratios=result["ratios"])
            name = "burst" if base.burst else "idle" if args.idle else "first_paint" if args.first_paint else ""
            cells = [result] if not name else []
            single = {name: result} if name else {}
            if base.storm:
                single["storm"] = result
            report["targets"] = targets(cells, single)
        for target, measured, ceiling, verdict in report["targets"]:
            if not verdict.startswith("not run") and verdict != "–":
                print(f"  target: {target}: {measured} (reference {ceiling}) → {verdict}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
