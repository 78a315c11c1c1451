"""Real peers for notification tests on 127.0.0.1: a webhook sink (HTTP), an SMTP server (aiosmtpd), a push service."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case (HTTP header names are case-insensitive)
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpSink:
    """A real HTTP server that records every request and answers `status` (a test may change it)."""

    status: int = 200
    delay: float = 0.0  # seconds to hold each request after recording it (a peer that is slow to answer)
    answer: bytes = b""  # the body of each answer (what an internal service might say about itself)
    answer_headers: dict[str, str] = field(default_factory=dict)  # e.g. a Location for a redirect
    requests: list[Request] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def start(self) -> HttpSink:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with sink.lock:
                    sink.requests.append(
                        Request("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    status, delay, answer, headers = sink.status, sink.delay, sink.answer, dict(sink.answer_headers)
                time.sleep(delay)
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):  # the client stopped waiting (a timeout under test)
                    pass

            def log_message(self, format: str, *args: Any) -> None:  # quiet: pytest shows failures, not traffic
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def received(self, predicate: Callable[[Request], bool] = lambda r: True) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if predicate(r)]


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    content: str


class SmtpSink:
    """A real SMTP server (aiosmtpd) on 127.0.0.1, plain (no TLS), that keeps every message."""

    def __init__(self) -> None:
        self.messages: list[Mail] = []
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            Mail(envelope.mail_from, list(envelope.rcpt_tos), envelope.content.decode(errors="replace"))
        )
        return "250 OK"

    @property
    def url(self) -> str:
        """Apprise's address for it: mailto:// on a custom port, mode=insecure (plain SMTP, no STARTTLS)."""
        return f"mailto://127.0.0.1:{self.port}?mode=insecure&from=hub@example.com&to=ops@example.com"


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"not within {timeout} s")


@pytest.fixture
def webhook() -> Iterator[HttpSink]:
    sink = HttpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.controller.start()
    yield sink
    sink.controller.stop()
