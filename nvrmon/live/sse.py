"""Stage 5, framing: Server-Sent Events messages as bytes, encoded once per view and change, never per subscriber."""

from __future__ import annotations


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
