"""A real Prometheus (Debian's /usr/bin/prometheus) scraping hubs every second, and its HTTP query API."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import free_port

BINARY = shutil.which("prometheus") or "/usr/bin/prometheus"


def scrape_config(jobs: dict[str, tuple[str, str]]) -> str:
    """prometheus.yml for jobs {name: (host:port, bearer token)}, scraped every second."""
    lines = ["global:", "  scrape_interval: 1s", "  scrape_timeout: 1s", "scrape_configs:"]
    for name, (target, token) in jobs.items():
        lines += [
            f"  - job_name: {name}",
            "    metrics_path: /metrics",
            "    authorization:",
            "      type: Bearer",
            f"      credentials: {token}",
            "    static_configs:",
            f'      - targets: ["{target}"]',
        ]
    return "\n".join(lines) + "\n"


@dataclass
class Prometheus:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    @classmethod
    def start(cls, workdir: Path, jobs: dict[str, tuple[str, str]]) -> Prometheus:
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "prometheus.yml"
        config.write_text(scrape_config(jobs))
        port = free_port()
        log_path = workdir / "prometheus.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [BINARY, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
                 f"--storage.tsdb.path={workdir / 'data'}", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        prometheus = cls(process, f"http://127.0.0.1:{port}", log_path)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"prometheus exited:\n{log_path.read_text()}")
            try:
                if httpx.get(f"{prometheus.url}/-/ready", timeout=1).status_code == 200:
                    return prometheus
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        prometheus.stop()
        raise RuntimeError("prometheus did not become ready in 30 s")

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query through /api/v1/query: the result vector (each item's metric labels and value)."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5)
        body = response.json()
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def values(self, promql: str, *labels: str) -> dict[tuple[str, ...], float]:
        """The query's series as {(label values...): value}."""
        return {tuple(r["metric"].get(k, "") for k in labels): float(r["value"][1]) for r in self.query(promql)}

    def stop(self) -> None:
        """Ends the Prometheus this helper started (its pid), and waits for it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
