"""JSON-lines logs: every line a hub writes is one JSON object, and a request's lines carry its X-Request-ID."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from starlette.testclient import TestClient

from nvrmon.application import create_app
from nvrmon.settings import Settings
from tests.conftest import TOKEN, free_port


def run_json_hub(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    port, stderr = free_port(), tmp_path / "hub.stderr"
    with stderr.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "nvrmon.cli", "serve", "--port", str(port), "--db", str(tmp_path / "hub.db"),
             "--log-level", "info", "--log-format", "json"],
            env={**os.environ, "NVRMON_AGENT_TOKEN": TOKEN},
            stdout=subprocess.DEVNULL, stderr=out,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/healthz", timeout=1)
            return process, url, stderr
        except httpx.HTTPError:
            assert process.poll() is None, stderr.read_text()
            time.sleep(0.05)
    process.kill()
    raise AssertionError("hub did not start")


def test_logs_json_lines_carry_the_request_id(tmp_path: Path) -> None:
    process, url, stderr = run_json_hub(tmp_path)
    try:
        given = httpx.get(f"{url}/healthz", headers={"X-Request-ID": "lb-7f3a.42"}, timeout=5)
        # A POST without its CSRF token is refused and logged by the guard: an app line, not only uvicorn's.
        refused = httpx.post(f"{url}/login", data={"username": "x", "password": "y"}, timeout=5)
        odd = httpx.get(f"{url}/healthz", headers={"X-Request-ID": 'bad id "quoted"'}, timeout=5)
    finally:
        process.terminate()
        process.wait(10)
    assert given.headers["x-request-id"] == "lb-7f3a.42"
    ours = refused.headers["x-request-id"]
    assert refused.status_code == 403 and len(ours) == 16
    assert odd.headers["x-request-id"] not in ("", 'bad id "quoted"')

    lines = [json.loads(line) for line in stderr.read_text().splitlines()]  # fails on any line that isn't JSON
    assert len(lines) >= 5 and all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
    assert any(line["message"].startswith("nvrmon: http://127.0.0.1:") for line in lines)
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert {"request_id": "lb-7f3a.42", "method": "GET", "path": "/healthz", "status": 200}.items() <= next(
        line for line in access if line.get("request_id") == "lb-7f3a.42"
    ).items()
    refusal = [line for line in lines if line.get("request_id") == ours]
    assert {line["logger"] for line in refusal} == {"nvrmon.access.guard", "uvicorn.access"}
    assert any(line["level"] == "warning" and "refused POST /login" in line["message"] for line in refusal)
    assert not any(line.get("request_id") == odd.headers["x-request-id"] and line["logger"] != "uvicorn.access"
                   for line in lines)  # fmt: skip


def test_logs_request_id_header_also_for_text_logs(tmp_path: Path) -> None:
    assert Settings().log_format == "text"
    with TestClient(create_app(Settings(db_path=tmp_path / "t.db", agent_token=TOKEN))) as client:
        first, second = client.get("/healthz"), client.get("/healthz")
        long = client.get("/healthz", headers={"X-Request-ID": "a" * 129})
        uuid = client.get("/healthz", headers={"X-Request-ID": "3f2b8c1e-9d4a-4b7e-8f00-1c2d3e4f5a6b"})
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    assert long.headers["x-request-id"] != "a" * 129
    assert uuid.headers["x-request-id"] == "3f2b8c1e-9d4a-4b7e-8f00-1c2d3e4f5a6b"
