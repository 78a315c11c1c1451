"""Wiring, log lines: text for people or JSON lines for Loki and ELK, each request's lines carrying its request id.

`NVRMON_LOG_FORMAT=json` (or `nvrmon serve --log-format json`) makes every line on stderr one JSON object: ts, level,
logger, message, request_id (for lines logged while an HTTP request or WebSocket connection is handled), and, for
uvicorn's access lines, the request's method, path, status and client. The id is the request's own X-Request-ID
when it sent a sane one (a proxy's), else a new one; it is returned in the X-Request-ID response header.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
HEADER = b"x-request-id"
# Letters, digits and the punctuation of UUIDs and tracing ids; anything else (spaces, quotes, control characters,
# a 10 kB value) is not echoed into logs and headers: the request gets an id of ours instead.
SANE_ID = re.compile(rb"[A-Za-z0-9._:+=/-]{1,128}")

# The id of the request being handled, per task: a ContextVar holds a value per asyncio task (tasks a request starts
# inherit it), so log calls anywhere below the app find their request's id without it being passed down.
request_id: ContextVar[str] = ContextVar("nvrmon_request_id", default="")


class JsonLines(logging.Formatter):
    """One JSON object per record, on one line (newlines in messages and tracebacks are escaped by JSON)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id.get()
        if rid:
            line["request_id"] = rid
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, version, status = record.args
            line.update(client=client, method=method, path=path, http_version=version, status=status)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(log_format: str, level: str) -> None:
    """Replace the root logger's handlers with one on stderr in `log_format` (ValueError for an unknown one)."""
    if log_format not in FORMATS:
        raise ValueError(f"NVRMON_LOG_FORMAT={log_format!r} must be one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    logging.captureWarnings(log_format == "json")  # warnings.warn output too, instead of a bare stderr line


def uvicorn_log_config(log_format: str) -> dict[str, Any] | None:
    """None for JSON: uvicorn then installs no handlers of its own and its loggers (access lines included) reach
    the root handler above; for text, uvicorn's usual configuration."""
    from uvicorn.config import LOGGING_CONFIG

    return None if log_format == "json" else LOGGING_CONFIG


def announce(log_format: str, text: str, level: int = logging.INFO) -> None:
    """A line for the person starting the hub: printed as it is, or logged when every line must be JSON."""
    if log_format == "json":
        logging.getLogger("nvrmon").log(level, "%s", text.strip())
    else:
        print(text, file=sys.stderr, flush=True)


class RequestIds:
    """Outermost ASGI middleware: give every HTTP request and WebSocket connection its id for the log lines it
    causes, and name it in HTTP responses' X-Request-ID header.

    /events streams get the id for their logs but not the header: adding a header means wrapping `send`, and a
    stream's every delivery goes through its `send` (application.StreamFastPath keeps that path unwrapped).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = next((value for name, value in scope.get("headers", ()) if name == HEADER), b"")
        rid = given.decode() if SANE_ID.fullmatch(given) else secrets.token_hex(8)
        token = request_id.set(rid)
        try:
            if scope["type"] == "websocket" or scope.get("path") == "/events":
                await self.app(scope, receive, send)
                return
            header = (HEADER, rid.encode())

            async def send_with_id(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message = {**message, "headers": [*message.get("headers", ()), header]}
                await send(message)

            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)
