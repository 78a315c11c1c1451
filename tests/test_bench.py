"""bench/run.py runs end to end on a tiny load and reports what it should (timings are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN_KEYS = {
    "impl",
    "changes_sent",
    "changes_in_window",
    "deliveries",
    "deliveries_per_s",
    "latency_ms",
    "missed",
    "undelivered",
    "superseded",
    "duplicates",
    "hub_cpu_s",
    "cpu_us_per_delivery",
    "rss_peak_mb",
    "connect_ms",
    "server_alive",
}


def test_bench_smoke_runs_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    report = json.loads(out.read_text())
    assert {"machine", "command", "config", "runs", "ratios"} <= report.keys()
    assert set(report["runs"]) == {"nvrmon", "reference"}
    for impl, run in report["runs"].items():
        missing = RUN_KEYS - run.keys()
        assert not missing, f"{impl}: missing {missing}"
        assert {"p50", "p90", "p99", "max", "count"} <= run["latency_ms"].keys()
        assert {"p50", "p99"} <= run["connect_ms"].keys()
        assert run["changes_sent"] > 0, impl
        assert run["server_alive"], impl
    ours = report["runs"]["nvrmon"]
    assert ours["deliveries"] > 0
    assert ours["missed"] == 0
    assert ours["connect_ms"]["failed"] == 0
    assert {"latency_p99", "cpu_us_per_delivery", "deliveries_per_s"} <= report["ratios"].keys()
