"""Stage 5, framing: Server-Sent Events messages as bytes, encoded once per view and change, never per subscriber."""

from __future__ import annotations

import json
import random
import time


def encode(data: str, *, id: str | None = None, event: str | None = None, retry: int | None = None) -> bytes:
    """One SSE message as bytes. Every line of `data` becomes its own `data:` line, so a fragment's newlines (in any
    convention) can never end the message early or smuggle in a field."""
    lines = []
    if event:
        lines.append(f"event: {event}")
    if id is not None:
        lines.append(f"id: {id}")
    if retry is not None:
        lines.append(f"retry: {retry}")
    lines.extend(f"data: {line}" for line in data.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    return ("\n".join(lines) + "\n\n").encode()


def ready(view: str, retry_ms: int) -> bytes:
    """A stream's first message: tells the page at once that events get through (a buffering proxy would hold it
    back). The retry is randomised (1-2x) so a hub restart doesn't bring every browser back at the same moment."""
    return encode(json.dumps({"view": view}), event="ready", retry=int(retry_ms * random.uniform(1.0, 2.0)))


def heartbeat() -> bytes:
    """The named heartbeat the page's watchdog listens for; rendered once per beat for every stream."""
    return encode(json.dumps({"t": round(time.time(), 3)}), event="heartbeat")


def bye() -> bytes:
    """The hub is going down: come back in 1-5 s, spread out, and resume from the cursor."""
    return encode("{}", event="bye", retry=random.randint(1000, 5000))
