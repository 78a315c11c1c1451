"""bench/soak.py runs a short soak end to end and reports hub memory, fds and threads over time (no timings)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_soak_smoke_runs_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "soak.py"), "--smoke", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "MB/h" in proc.stdout
    report = json.loads(out.read_text())
    assert report["server_alive"]
    assert len(report["views"]) == 7
    rss = report["rss_mb"]
    assert {"with_clients", "end", "peak", "browsers_gone", "agents_gone"} <= rss.keys()
    assert all(value > 0 for value in rss.values())
    assert report["rows"], "no periodic row was reported"
    assert {"minute", "rss_mb", "mb_per_hour", "fds", "threads", "reconnects"} <= report["rows"][0].keys()
    assert isinstance(report["slope_mb_per_hour"], float)
    # The churn really happened, with Last-Event-ID reconnects, and the long-poll client got answers.
    clients = report["clients"]
    assert clients["churned"] > 0
    assert clients["connects"] > 14
    assert clients["refused"] == 0
    assert clients["polls"] > 0 and clients["poll_errors"] == 0
    assert report["fds"]["end"] > 0 and report["threads"]["max"] > 0
