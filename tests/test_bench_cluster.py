"""bench/cluster.py runs its configurations end to end on a tiny load and reports what it should (no timings)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

from nvrmon.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
RUN_KEYS = {
    "config",
    "hubs",
    "changes_in_window",
    "deliveries",
    "deliveries_per_s",
    "expected_deliveries",
    "latency_ms",
    "latency_same_hub_ms",
    "latency_other_hub_ms",
    "missed",
    "undelivered",
    "hub_cpu_s",
    "pg_backend_cpu_s",
    "hub_us_per_delivery",
    "total_us_per_delivery",
    "hubs_alive",
}


def test_bench_cluster_tiny_runs_every_configuration_it_can(tmp_path: Path) -> None:
    out, md = tmp_path / "cluster.json", tmp_path / "CLUSTER.md"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "cluster.py"), "--tiny", "--json", str(out), "--markdown", str(md)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    report = json.loads(out.read_text())
    ran = {run["config"]: run for run in report["runs"]}
    assert set(ran) | set(report["skipped"]) == {"sqlite-1", "pg-1", "pg-2"}
    assert "sqlite-1" in ran, "SQLite needs nothing from the machine: it always runs"
    if any(f.name == "database_url" for f in dataclasses.fields(Settings)):
        # This tree has the PostgreSQL backend: only a server that doesn't answer may skip its configurations.
        assert all("does not answer" in why for why in report["skipped"].values()), report["skipped"]
    for name, run in ran.items():
        assert not RUN_KEYS - run.keys(), f"{name}: missing {RUN_KEYS - run.keys()}"
        assert run["hubs_alive"], name
        assert run["changes_in_window"] > 0, name
        assert run["deliveries"] > 0, name
        assert run["missed"] == 0, f"{name}: a browser shows a camera other than the agents' last word"
        assert run["undelivered"] == 0, f"{name}: a change sent in the window reached not every browser"
        assert len(run["hub_cpu_s"]) == run["hubs"], name
        assert (run["pg_backend_cpu_s"] is None) == (name == "sqlite-1"), name
    if "pg-2" in ran:
        # Half the browsers are on the other hub: deliveries crossed between hubs through the database.
        assert ran["pg-2"]["latency_other_hub_ms"]["count"] > 0
    assert "deliveries/s" in md.read_text()
