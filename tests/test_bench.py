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


def test_bench_storm_reopens_every_stream_with_its_cursor(tmp_path: Path) -> None:
    """The reconnect-storm scenario: every stream closed, cameras changed meanwhile, all reopened with Last-Event-ID;
    both servers' catch-ups bring every subscriber to the new state, and a sample equals /api."""
    out = tmp_path / "storm.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--storm", "6", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    report = json.loads(out.read_text())
    for impl, run in report["runs"].items():
        storm = run["storm"]
        assert storm["changed"] == 6, impl
        assert storm["failed"] == 0, impl
        assert storm["not_converged"] == 0 and storm["converged"] == run["config"]["subscribers"], impl
        assert storm["sampled"] > 0 and storm["sample_equal_api"] == storm["sampled"], impl
        assert run["connect_ms"]["all_s"] > 0, impl
    assert {"connect_all_s", "rss_mb", "storm_converge_ms"} <= report["ratios"].keys()
    assert any("reconnect storm" in target[0] for target in report["targets"])
