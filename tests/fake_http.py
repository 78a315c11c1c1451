"""Real HTTP servers on 127.0.0.1 for the device fakes: a starlette app under uvicorn in its own thread, and a
listener that accepts TCP connections and never answers (a hung device).

The fakes themselves (tests/fake_onvif.py, tests/fake_nvrs.py) are stand-ins shaped from each product's documented
responses: no simulator of an ONVIF camera, Frigate, ZoneMinder or a Hikvision NVR runs here.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp


@contextlib.contextmanager
def serve(app: ASGIApp) -> Iterator[str]:
    """Run `app` on a free 127.0.0.1 port in a background thread; yields its base URL, stops it afterwards."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("fake server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A port whose kernel completes TCP handshakes (listen backlog) while nothing ever reads or answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


def closed_port() -> int:
    """A port nothing listens on (bound once, then released): connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
