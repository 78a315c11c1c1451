"""Soak: the hub's memory, file descriptors and threads over a long run with browser reconnect churn.

    python3 bench/soak.py                      # 1 hour: 300 agents x 16 cameras, 200 browsers on 7 views,
                                               # 20 reconnects/min with Last-Event-ID, one long-poll client
    python3 bench/soak.py --seconds 600 --reconnects 200   # the same churn as an hour's, in 10 minutes x 10
    python3 bench/soak.py --smoke --json OUT   # a few seconds; what tests/test_soak.py runs

Samples VmRSS, the fd count and the thread count of the hub every --sample seconds; prints a row per --every seconds
(default 5 min) with the RSS change extrapolated to an hour; ends with the least-squares slope over the whole run
(MB/h, KB per reconnect) and the RSS once every browser has left (after --settle s) and once the agents have too.
Stops by itself after --seconds. See bench/README.md ("Soak").
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchutil import CpuPlan, http_get, pin_self, raise_fd_limit
from load import FleetSpec, Schedule, agents_main
from run import CTX, ROOT, TOKEN, Processes, describe_source, expect, start_server
from soak_clients import ClientSpec, clients_main


def hub_sample(pid: int) -> dict[str, float]:
    """RSS and peak RSS (MB), open file descriptors and threads of the hub, from /proc."""
    out = {"t": time.monotonic(), "rss_mb": 0.0, "hwm_mb": 0.0, "threads": 0.0, "fds": 0.0}
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmRSS:"):
                out["rss_mb"] = int(line.split()[1]) / 1024
            elif line.startswith(b"VmHWM:"):
                out["hwm_mb"] = int(line.split()[1]) / 1024
            elif line.startswith(b"Threads:"):
                out["threads"] = int(line.split()[1])
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) points, in MB per hour; 0 for fewer than two points."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    var = sum((t - mx) ** 2 for t, _ in points)
    return 0.0 if var == 0 else 3600 * sum((t - mx) * (v - my) for t, v in points) / var


def soak_views(port: int) -> dict[str, str]:
    """Seven views a fleet's browsers would have open: name -> /events query (view=…&id=…)."""
    status, body, _, _ = http_get(port, "/api/cameras", timeout=120)
    if status != 200:
        raise RuntimeError(f"/api/cameras answered {status}")
    cameras = json.loads(body)["cameras"]
    camera, nvr = int(cameras[0]["id"]), int(cameras[0]["nvr_id"])
    return {
        "dashboard": "view=dashboard",
        "nvrs": "view=nvrs",
        "cameras (per=1000)": "view=cameras&id=per%3D1000",
        "cameras offline": "view=cameras&id=status%3Doffline",
        "nvrs North": "view=nvrs&id=region%3DNorth",
        "nvr detail": f"view=nvr&id={nvr}",
        "camera detail": f"view=camera&id={camera}",
    }


def run_soak(args: argparse.Namespace, plan: CpuPlan, tmp: Path) -> dict[str, Any]:
    procs = Processes()
    try:
        return _run_soak(args, plan, tmp, procs)
    finally:
        procs.stop_all()


def _run_soak(args: argparse.Namespace, plan: CpuPlan, tmp: Path, procs: Processes) -> dict[str, Any]:
    server = start_server("nvrmon", tmp, plan, procs, args.hub_src, gc_stats=False)
    pid = server.proc.pid
    started = hub_sample(pid)
    agents_conn, child = CTX.Pipe()
    spec = FleetSpec(server.ws_url, server.port, TOKEN, args.agents, args.cameras, args.seed)
    agents = CTX.Process(target=agents_main, args=(child, spec), name="soak-agents", daemon=True)
    agents.start()
    procs.children.append(agents)
    ready = expect(agents_conn, "ready", 120 + args.agents / 10, "agents")
    t0 = time.time() + 0.2
    agents_conn.send(("go", Schedule(int(t0 * 1e9), 0.0, args.seconds, args.rate, str(tmp / "soak-sendlog.bin"))))

    health = json.loads(http_get(server.port, "/healthz")[1])
    since = f"&since={health['epoch']}-{health['seq']}"
    views = soak_views(server.port)
    paths = [f"/events?{query}{since}" for query in views.values()]
    poll = f"/poll?view=cameras&since={health['epoch']}-{health['seq']}" if args.long_poll else ""
    clients_conn, child = CTX.Pipe()
    cspec = ClientSpec(server.port, paths, args.subscribers, args.reconnects, poll, args.reconnect_delay, args.seed)
    clients = CTX.Process(target=clients_main, args=(child, cspec), name="soak-browsers", daemon=True)
    clients.start()
    procs.children.append(clients)
    expect(clients_conn, "ready", 120 + args.subscribers / 20, "browsers")

    begin = hub_sample(pid)
    samples = [begin]
    rows: list[dict[str, Any]] = []
    end = begin["t"] + args.seconds
    next_row = begin["t"] + args.every
    print(f"hub pid {pid}: {ready['cameras']} cameras, {args.subscribers} browsers on {len(views)} views, "
          f"{args.reconnects:g} reconnects/min, long-poll {'on' if poll else 'off'}, {args.seconds:g} s; "
          f"RSS {begin['rss_mb']:.1f} MB at start", flush=True)  # fmt: skip
    print(f"{'min':>7} {'RSS MB':>8} {'Δ MB':>7} {'MB/h (this row)':>15} {'fds':>5} {'threads':>7} {'reconnects':>10}")
    last_row = begin
    while True:
        now = time.monotonic()
        if now >= end:
            break
        time.sleep(min(args.sample, end - now))
        if server.proc.poll() is not None:
            raise RuntimeError(f"the hub exited during the soak:\n{server.log_tail()}")
        s = hub_sample(pid)
        samples.append(s)
        if s["t"] >= next_row - 0.01 or s["t"] >= end - 0.01:
            next_row += args.every
            clients_conn.send(("stats", None))
            stats = expect(clients_conn, "stats", 30, "browsers")
            span = s["t"] - last_row["t"]
            row = {
                "minute": round((s["t"] - begin["t"]) / 60, 2),
                "rss_mb": round(s["rss_mb"], 1),
                "delta_mb": round(s["rss_mb"] - begin["rss_mb"], 1),
                "mb_per_hour": round((s["rss_mb"] - last_row["rss_mb"]) * 3600 / span, 1) if span > 0 else 0.0,
                "fds": int(s["fds"]),
                "threads": int(s["threads"]),
                "reconnects": stats["churned"],
                "open_streams": stats["open"],
            }
            rows.append(row)
            last_row = s
            print(f"{row['minute']:7.1f} {row['rss_mb']:8.1f} {row['delta_mb']:+7.1f} {row['mb_per_hour']:+15.1f} "
                  f"{row['fds']:5d} {row['threads']:7d} {row['reconnects']:10d}", flush=True)  # fmt: skip

    during = hub_sample(pid)
    clients_conn.send(("stop", None))
    counters = expect(clients_conn, "stopped", 60, "browsers")
    time.sleep(args.settle)
    after_browsers = hub_sample(pid)
    expect(agents_conn, "sent", 60, "change generator")
    agents_conn.send(("close", None))
    expect(agents_conn, "closed", 60, "agents")
    time.sleep(min(args.settle, 5.0))
    after_agents = hub_sample(pid)
    # Past the first sample interval only: start-up (imports, first renders, page cache) is not growth.
    warm = [(s["t"] - begin["t"], s["rss_mb"]) for s in samples if s["t"] - begin["t"] >= min(60.0, args.seconds / 4)]
    slope = slope_per_hour(warm)
    minutes = args.seconds / 60
    reconnects = counters["churned"]
    return {
        "hub_pid": pid,
        "cameras": ready["cameras"],
        "views": views,
        "rss_mb": {
            "after_start": round(started["rss_mb"], 1),
            "with_clients": round(begin["rss_mb"], 1),
            "end": round(during["rss_mb"], 1),
            "peak": round(after_agents["hwm_mb"], 1),
            "browsers_gone": round(after_browsers["rss_mb"], 1),
            "agents_gone": round(after_agents["rss_mb"], 1),
        },
        "growth_mb": round(during["rss_mb"] - begin["rss_mb"], 1),
        "slope_mb_per_hour": round(slope, 1),
        "kb_per_reconnect": round(slope * 1024 / (60 * args.reconnects), 1) if args.reconnects else None,
        "reconnects": reconnects,
        "reconnects_per_min": round(reconnects / minutes, 1) if minutes else 0.0,
        "fds": {"start": int(begin["fds"]), "end": int(during["fds"]), "browsers_gone": int(after_browsers["fds"])},
        "threads": {
            "start": int(begin["threads"]),
            "end": int(during["threads"]),
            "max": int(max(s["threads"] for s in samples)),
        },  # fmt: skip
        "clients": counters,
        "rows": rows,
        "samples": [(round(s["t"] - begin["t"], 1), round(s["rss_mb"], 2)) for s in samples],
        "server_alive": server.proc.poll() is None,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="nvrmon soak: hub RSS, fds and threads over time under reconnect churn.")
    p.add_argument("--seconds", type=float, default=3600.0, help="how long the load runs (default 1 hour)")
    p.add_argument("--agents", type=int, default=300, help="simulated NVR agents")
    p.add_argument("--cameras", type=int, default=16, help="cameras per agent")
    p.add_argument("--subscribers", "-M", type=int, default=200, help="SSE browsers, spread over 7 views")
    p.add_argument("--reconnects", "-K", type=float, default=20.0,
                   help="browser reconnects with Last-Event-ID per minute, fleet-wide")  # fmt: skip
    p.add_argument(
        "--reconnect-delay",
        type=float,
        default=1.0,
        help="seconds a dropped browser waits before reconnecting (EventSource's retry, default 1)",
    )
    p.add_argument("--rate", "-R", type=float, default=2.0, help="camera status changes per second, fleet-wide")
    p.add_argument("--no-long-poll", dest="long_poll", action="store_false", help="leave out the long-poll client")
    p.add_argument("--sample", type=float, default=5.0, help="seconds between /proc samples")
    p.add_argument("--every", type=float, default=300.0, help="seconds between printed rows (default 5 min)")
    p.add_argument("--settle", type=float, default=30.0, help="seconds to wait after the browsers leave")
    p.add_argument("--hub-env", action="append", default=[], metavar="NAME=VALUE",
                   help="extra environment for the hub (e.g. MALLOC_ARENA_MAX=2); repeatable")  # fmt: skip
    p.add_argument("--hub-src", type=Path, help="run the hub from this source tree (default: this checkout)")
    p.add_argument("--no-pin", action="store_true", help="don't pin the hub and the load to separate CPUs")
    p.add_argument("--smoke", action="store_true", help="a few seconds on a tiny fleet (what tests/test_soak.py runs)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", type=Path, metavar="OUT", help="write the report as JSON")
    args = p.parse_args(argv)
    if args.smoke:
        args.seconds, args.agents, args.cameras, args.subscribers = 6.0, 4, 4, 14
        args.reconnects, args.rate, args.sample, args.every, args.settle = 120.0, 5.0, 1.0, 3.0, 1.0
    for item in args.hub_env:
        name, _, value = item.partition("=")
        os.environ[name] = value  # the hub's environment is this process's (start_server copies it)
    args.hub_src = args.hub_src.resolve() if args.hub_src else None
    plan = CpuPlan.default(not args.no_pin)
    pin_self(plan.load)
    raise_fd_limit(1 << 16)
    report: dict[str, Any] = {
        "command": "python3 bench/soak.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
        "hub_src": describe_source(args.hub_src or ROOT),
        "hub_env": args.hub_env,
        "pinning": plan.describe(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "json"},
    }
    with tempfile.TemporaryDirectory(prefix="nvrmon-soak-") as tmpdir:
        report.update(run_soak(args, plan, Path(tmpdir)))
    rss = report["rss_mb"]
    print(f"RSS: {rss['with_clients']} MB with clients -> {rss['end']} MB at the end ({report['growth_mb']:+} MB); "
          f"slope {report['slope_mb_per_hour']:+} MB/h = {report['kb_per_reconnect']} KB per reconnect "
          f"({report['reconnects']} reconnects); browsers gone {rss['browsers_gone']} MB, agents gone "
          f"{rss['agents_gone']} MB, peak {rss['peak']} MB; fds {report['fds']}, "
          f"threads {report['threads']}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
