"""`nvrmon simulate` and `nvrmon token fleet`: a refused token, an unreachable hub and progress are said out loud."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nvrmon.store.database import Database
from tests.conftest import TOKEN, LiveHub, free_port, run_async, run_cli


def simulate(*args: str, timeout: float = 30) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {k: v for k, v in os.environ.items() if k != "NVRMON_AGENT_TOKEN"}  # a new shell: the variable is unset
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "nvrmon.cli", "simulate", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)  # fmt: skip
    return done, time.monotonic() - started


def store_fleet_token(path: Path, token: str) -> None:
    async def store() -> None:
        database = await Database.open(path)
        try:
            await database.set_meta("agent_token", token)
        finally:
            await database.close()

    run_async(store())


def test_simulate_with_a_wrong_token_exits_naming_the_403(live_hub: LiveHub) -> None:
    done, took = simulate("--url", live_hub.ws_url, "--token", "not-the-token", "--nvrs", "50", "--duration", "20")
    assert done.returncode == 1 and took < 10, (done.returncode, took, done.stderr)
    assert "refused the agent token (HTTP 403)" in done.stderr and "nvrmon token fleet" in done.stderr


def test_simulate_says_when_the_hub_is_unreachable_and_keeps_trying() -> None:
    url = f"ws://127.0.0.1:{free_port()}/ws/agent"
    done, _ = simulate("--url", url, "--token", "x", "--nvrs", "2", "--duration", "3", "--progress", "1")
    assert done.returncode == 0
    assert f"hub not reachable at {url}" in done.stderr and "retrying with backoff" in done.stderr
    assert "0/2 NVRs connected" in done.stderr


def test_simulate_without_a_token_says_how_to_get_one(tmp_path: Path) -> None:
    done, _ = simulate("--nvrs", "1", "--duration", "1")
    assert done.returncode == 2 and "no agent token" in done.stderr and "NVRMON_AGENT_TOKEN" in done.stderr


def test_simulate_takes_the_fleet_token_from_the_database_and_reports_progress(live_hub: LiveHub) -> None:
    store_fleet_token(live_hub.db_path, TOKEN)
    done, _ = simulate("--url", live_hub.ws_url, "--db", str(live_hub.db_path), "--nvrs", "3", "--rate", "20",
                       "--duration", "4", "--progress", "1")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "3/3 NVRs connected" in done.stderr and "changes sent" in done.stderr
    assert live_hub.get("/api/summary").json()["nvrs_total"] == 3


def test_token_fleet_prints_the_stored_token_or_says_the_variable_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "fleet.db"
    monkeypatch.delenv("NVRMON_AGENT_TOKEN", raising=False)
    missing = run_cli(db, "token", "fleet")
    assert missing.returncode == 1 and "no fleet token stored yet" in missing.stderr
    store_fleet_token(db, "stored-fleet-token")
    shown = run_cli(db, "token", "fleet")
    assert shown.returncode == 0 and shown.stdout.strip() == "stored-fleet-token"
    monkeypatch.setenv("NVRMON_AGENT_TOKEN", "from-the-environment")
    overridden = run_cli(db, "token", "fleet")
    assert overridden.stdout.strip() == "from-the-environment" and "overrides" in overridden.stderr


def test_demo_waits_out_blips_before_an_incident() -> None:
    from nvrmon.cli import DEMO_INCIDENT_DELAY, demo_settings
    from nvrmon.settings import Settings

    assert demo_settings(Settings(demo=5)).incident_delay == DEMO_INCIDENT_DELAY
    assert demo_settings(Settings(demo=5, incident_delay=3.0)).incident_delay == 3.0  # an operator's choice stays
    assert demo_settings(Settings()).incident_delay == 0.0  # not a demo: at once
