"""Test peer for the agent: the real RTSP server (tests/rtsp_server.py, Debian's gst-rtsp-server) in a subprocess."""

from __future__ import annotations

import select
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

SERVER = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's gi imports only there, not in the pyenv or a venv
USER, PASSWORD = "viewer", "s3cret"


class RtspServer:
    """gst-rtsp-server in its own process: `/open`, `/secure` (Digest on `port`, Basic on `basic_port`), `/h264`."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [SYSTEM_PYTHON, str(SERVER), "0", "0"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], 20)
        line = self.process.stdout.readline() if ready else ""
        if not line.startswith("READY"):
            self.close()
            raise RuntimeError(f"the RTSP server did not start: {line!r}")
        self.port, self.basic_port = (int(part) for part in line.split()[1:3])

    def url(self, path: str = "/open", *, user: str = "", password: str = "", basic: bool = False) -> str:
        auth = f"{user}:{password}@" if user else ""
        return f"rtsp://{auth}127.0.0.1:{self.basic_port if basic else self.port}{path}"

    def _control(self, command: str) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == "ok"

    def stop_source(self) -> None:
        """The camera keeps answering RTSP but sends no frames (a frozen encoder)."""
        self._control("stop")

    def start_source(self) -> None:
        self._control("start")

    def close(self) -> None:
        if self.process.poll() is None:
            if self.process.stdin is not None:
                self.process.stdin.close()  # the server's cue to quit
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def rtsp_server() -> Iterator[RtspServer]:
    server = RtspServer()
    yield server
    server.close()
