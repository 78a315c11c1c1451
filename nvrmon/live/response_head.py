"""Stage 6, delivery: an SSE stream's response head, written as uvicorn's own send writes it, built once a second.

uvicorn checks every header of every response against its rules and writes the head on its own; a stream's headers
are constants, so here they are checked once and the head goes out in the same write as the stream's first message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HEADER_RE, HEADER_VALUE_RE, STATUS_LINE, RequestResponseCycle
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string


def stream_cycle(send: Callable[..., Any]) -> Any:
    """The uvicorn (httptools) request cycle whose own `send` this is, if it hasn't answered yet; else None."""
    cycle = getattr(send, "__self__", None)
    if (
        isinstance(cycle, RequestResponseCycle)
        and not cycle.response_started
        and not cycle.disconnected
        and cycle.keep_alive
        and cycle.chunked_encoding is None
        and not cycle.flow.write_paused
    ):
        return cycle
    return None


# The response head for the last (default headers, stream headers) pair: uvicorn's default headers (server, date)
# are a new list each second, a page stream's own headers one shared list.
_head_cache: list[Any] = [None, None, b""]


def start_stream(cycle: Any, headers: list[tuple[bytes, bytes]], body: bytes = b"", *, cache: bool = False) -> None:
    """What uvicorn's send does for `http.response.start` (status 200, these headers, chunked framing), with the
    head built once per second rather than checked header by header at every connect; `body` goes in the same write
    as its first chunk. The headers are the stream's own constants (checked once, here, by uvicorn's own rules)."""
    defaults = cycle.default_headers
    cached = _head_cache
    if cached[0] is defaults and cached[1] is headers:
        head = cached[2]
    else:
        content = [STATUS_LINE[200]]
        for name, value in (*defaults, *headers):
            if HEADER_RE.search(name) or HEADER_VALUE_RE.search(value):
                raise RuntimeError("Invalid HTTP header.")
            content.extend([name.lower(), b": ", value, b"\r\n"])
        content.append(b"transfer-encoding: chunked\r\n\r\n")
        head = b"".join(content)
        if cache:
            cached[:] = [defaults, headers, head]
    cycle.response_started = True
    cycle.waiting_for_100_continue = False
    cycle.chunked_encoding = True
    if cycle.access_log and cycle.access_logger.isEnabledFor(logging.INFO):
        scope = cycle.scope
        cycle.access_logger.info('%s - "%s %s HTTP/%s" %d', get_client_addr(scope), scope["method"],
                                 get_path_with_query_string(scope), scope["http_version"], 200)  # fmt: skip
    cycle.transport.write(head + b"%x\r\n%b\r\n" % (len(body), body) if body else head)
