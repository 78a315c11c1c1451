"""Runs `python -m nvrmon.cli ARGS` unchanged, and records the process's garbage-collector pauses on the side.

    python3 bench/hubwrap.py serve --port P --db FILE ...     (env NVRMON_BENCH_GC_FILE=stats.json)

A full (generation 2) collection stops the event loop for as long as it takes to walk every tracked object, and a hub
holds a few hundred per open SSE stream, so these pauses show up directly in delivery latency. Cumulative counts, total
and longest pause per generation are rewritten to NVRMON_BENCH_GC_FILE after every generation-2 collection, every
pause over 20 ms and otherwise at most every 0.5 s, with the end time and length of each generation-2 pause; the
benchmark reads the file at the start and the end of its measured window. The callback costs a
couple of microseconds per collection; nothing else about the hub changes. With NVRMON_BENCH_PROFILE=FILE the hub runs
under cProfile and writes its stats to FILE when it stops.
"""

from __future__ import annotations

import gc
import json
import os
import runpy
import sys
import threading
import time
from typing import Any

STATS_FILE = os.environ.get("NVRMON_BENCH_GC_FILE", "")
_stats: dict[int, list[float]] = {0: [0, 0.0, 0.0], 1: [0, 0.0, 0.0], 2: [0, 0.0, 0.0]}
_started = [0.0]
_last_write = [0.0]
_full: list[tuple[float, float]] = []  # (wall-clock end, pause) of the last generation-2 collections


def _write() -> None:
    # A collection may run in any thread (aiosqlite's too): one temporary file per thread, or two renames race.
    tmp = f"{STATS_FILE}.{threading.get_ident()}.tmp"
    with open(tmp, "w") as f:
        totals = {str(g): {"count": int(c), "total_s": t, "max_s": m} for g, (c, t, m) in _stats.items()}
        json.dump({"generations": totals, "full": _full[-1000:]}, f)
    os.replace(tmp, STATS_FILE)


def _callback(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
        return
    pause = time.perf_counter() - _started[0]
    entry = _stats[info["generation"]]
    entry[0] += 1
    entry[1] += pause
    entry[2] = max(entry[2], pause)
    if info["generation"] == 2:
        _full.append((time.time(), pause))
    now = time.perf_counter()
    if STATS_FILE and (info["generation"] == 2 or pause > 0.02 or now - _last_write[0] > 0.5):
        _last_write[0] = now
        _write()


def main() -> None:
    # Behave like `python -m nvrmon.cli`: the working directory (the hub's source) first, not this script's directory.
    sys.path[0] = os.getcwd()
    if STATS_FILE:
        gc.callbacks.append(_callback)
        _write()
    sys.argv = ["nvrmon.cli", *sys.argv[1:]]
    profile_to = os.environ.get("NVRMON_BENCH_PROFILE", "")
    if not profile_to:
        runpy.run_module("nvrmon.cli", run_name="__main__", alter_sys=True)
        return
    # Where the hub's CPU goes (cProfile: slower per call, but the shares are what count), written at shutdown.
    import cProfile
    import signal

    # uvicorn re-raises the SIGTERM it caught once it has shut down: make that an exit that runs the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        runpy.run_module("nvrmon.cli", run_name="__main__", alter_sys=True)
    finally:
        profiler.disable()
        profiler.dump_stats(profile_to)


if __name__ == "__main__":
    main()
