"""Shared helpers for the benchmark: ports, CPU pinning, /proc readings, percentiles, the machine description."""

from __future__ import annotations

import contextlib
import http.client
import os
import platform
import resource
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class CpuPlan:
    """Which CPUs the server under test and the load generators run on; None means 'not pinned'."""

    server: frozenset[int] | None
    load: frozenset[int] | None

    @classmethod
    def default(cls, enabled: bool = True) -> CpuPlan:
        if not enabled or not hasattr(os, "sched_setaffinity"):
            return cls(None, None)
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            return cls(None, None)
        # Server on the first CPU (CPU 0 on a normal machine), everything that generates load on the second.
        return cls(frozenset({cpus[0]}), frozenset({cpus[1]}))

    def describe(self) -> str:
        if self.server is None:
            return "not pinned (fewer than 2 CPUs or --no-pin)"
        return f"server on CPU {sorted(self.server)}, agents/subscribers/coordinator on CPU {sorted(self.load or ())}"


def pin_self(cpus: frozenset[int] | None) -> None:
    if cpus is not None:
        os.sched_setaffinity(0, cpus)


def spawn_pinned(cmd: Sequence[str], cpus: frozenset[int] | None, **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start a process on `cpus`. A child inherits the affinity of the thread that forks it, so every thread the
    server later creates (aiosqlite's, uvloop's) stays on the same CPU: pin ourselves, spawn, restore."""
    if cpus is None:
        return subprocess.Popen(list(cmd), **kwargs)
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        return subprocess.Popen(list(cmd), **kwargs)
    finally:
        os.sched_setaffinity(0, before)


@dataclass(frozen=True)
class ProcSample:
    """CPU seconds (user+system, all threads), resident and peak resident memory of one process."""

    t: float
    cpu_s: float
    rss_kb: int
    hwm_kb: int
    cpu_ticks_s: float  # the same from /proc/<pid>/stat utime+stime, in clock ticks (10 ms resolution)


def _schedstat_cpu(pid: int) -> float | None:
    """On-CPU nanoseconds of every live thread (/proc/<pid>/task/*/schedstat), far finer than stat's 10 ms ticks."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(FileNotFoundError), open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as f:
                total += int(f.read().split()[0])
    except OSError:
        return None
    return total / 1e9


def sample(pid: int) -> ProcSample:
    t = time.monotonic()
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    # The command name is in parentheses and may hold spaces: split after the last ')'. Fields 14 and 15 of the full
    # line (utime, stime) are 12th and 13th after it; for a process (not a task) they include all its threads.
    fields = stat[stat.rindex(b")") + 2 :].split()
    ticks = (int(fields[11]) + int(fields[12])) / CLK_TCK
    cpu = _schedstat_cpu(pid)
    rss = hwm = 0
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith(b"VmHWM:"):
                hwm = int(line.split()[1])
    return ProcSample(t, ticks if cpu is None else cpu, rss, hwm, ticks)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence; 0 for an empty one."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), int(-(-q * len(sorted_values) // 100))))
    return float(sorted_values[rank - 1])


def raise_fd_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# The hub needs a login for pages, /api and /events: run.py logs a bench account in and every process sends its
# session cookie (inherited through the environment). Empty against hubs without accounts (the reference server).
COOKIE_ENV = "NVRMON_BENCH_COOKIE"


def auth_headers() -> dict[str, str]:
    cookie = os.environ.get(COOKIE_ENV, "")
    return {"Cookie": cookie} if cookie else {}


def login(port: int, username: str, password: str) -> str:
    """Log in through the hub's login form; returns the session cookie as `name=value`."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/login", headers={"Connection": "keep-alive"})
        response = conn.getresponse()
        page = response.read().decode()
        csrf_cookie = (response.getheader("set-cookie") or "").split(";", 1)[0]
        token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        form = urllib.parse.urlencode({"username": username, "password": password, "csrf_token": token})
        conn.request("POST", "/login", body=form, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": csrf_cookie})  # fmt: skip
        response = conn.getresponse()
        response.read()
        if response.status != 303:
            raise RuntimeError(f"bench login failed: HTTP {response.status}")
        return (response.getheader("set-cookie") or "").split(";", 1)[0]
    finally:
        conn.close()


def http_get(port: int, path: str, timeout: float = 30.0) -> tuple[int, bytes, float, float]:
    """GET over a fresh loopback connection: (status, body, seconds to headers, seconds to last byte)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        start = time.perf_counter()
        conn.request("GET", path, headers={"Accept": "text/html", "Connection": "close", **auth_headers()})
        response = conn.getresponse()
        headers_at = time.perf_counter()
        body = response.read()
        done = time.perf_counter()
        return response.status, body, headers_at - start, done - start
    finally:
        conn.close()


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, str]:
    model = "unknown"
    mhz = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name") and model == "unknown":
                model = line.split(":", 1)[1].strip()
            elif line.startswith("cpu MHz") and not mhz:
                mhz = line.split(":", 1)[1].strip()
    ram = "unknown"
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0
    return {
        "cpu": model + (f" @ {float(mhz):.0f} MHz" if mhz else ""),
        "cores": f"{os.cpu_count()} logical ({usable} usable)",
        "ram": ram,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "uvicorn": _version("uvicorn"),
        "uvloop": _version("uvloop"),
        "websockets": _version("websockets"),
        "starlette": _version("starlette"),
        "sse-starlette": _version("sse-starlette"),
    }


def stall_probe(conn: Any, cpus: frozenset[int] | None, interval: float = 0.005) -> None:
    """Entry point of a noise probe: sleep `interval` in a loop on `cpus` and report the longest oversleep.

    On a shared VM the whole machine is sometimes descheduled for tens or hundreds of ms; a latency percentile from
    such a window says more about the neighbours than about the server, so every run reports what this probe saw.
    """
    pin_self(cpus)
    worst = 0.0
    over = 0
    last = time.perf_counter()
    while not conn.poll(0):
        time.sleep(interval)
        now = time.perf_counter()
        late = now - last - interval
        if late > worst:
            worst = late
        if late > 0.02:
            over += 1
        last = now
    conn.recv()
    conn.send({"max_stall_ms": round(worst * 1000, 1), "stalls_over_20ms": over})
