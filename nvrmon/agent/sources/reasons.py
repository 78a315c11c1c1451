"""Agent side, failure reasons: why a device probe or an NVR poll failed, in bounded words without secrets."""

from __future__ import annotations

import errno
import re
import socket
from collections.abc import Iterable

MAX_REASON = 200  # the wire contract's bound on camera_status.reason
_UNPRINTABLE = re.compile(r"[^\x20-\x7e\u00a0-\uffff]+")
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@")


class SourceError(Exception):
    """A poll or probe failed for a reason an operator can read (e.g. "frigate 401 unauthorized")."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def clean(text: str, secrets: Iterable[str] = ()) -> str:
    """One printable line of at most MAX_REASON characters, with credentials in URLs and known secrets removed:
    devices echo URLs and sometimes the request back in their error texts."""
    text = _URL_CREDENTIALS.sub(r"\1***@", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = " ".join(_UNPRINTABLE.sub(" ", text).split())
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def connection_reason(error: BaseException) -> str | None:
    """The words for a failed TCP connect or name lookup, found anywhere in the exception's chain; None if the
    failure is something else."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        if isinstance(current, socket.gaierror):
            return "dns lookup failed"
        if isinstance(current, OSError) and current.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return "host unreachable"
        if isinstance(current, OSError) and current.errno == errno.ECONNREFUSED:
            return "connection refused"
        current = current.__cause__ or current.__context__
    return None
