"""Agent side, secrets out of sight: passwords in URLs and tokens are masked in logs, errors and anything sent."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

MASK = "***"
# scheme://user:password@host -> scheme://user:***@host (also a password with no user: scheme://:pw@host)
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/@\s:?#]*):([^/@\s?#]*)@")
_BEARER = re.compile(r"(?i)\b(bearer|basic|digest)\s+[^\s,]+")
_QUERY = re.compile(r"(?i)([?&;](?:password|passwd|pass|pwd|token|auth|key|secret)=)[^&#\s]*")
_TOKEN = re.compile(r"\b(nvr[te]_)[A-Za-z0-9_-]+")  # the hub's agent tokens (nvrmon/access/agent_tokens.py)
MIN_SECRET = 4  # shorter "secrets" would mask ordinary words


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every URL password, authorization value, secret query parameter, hub token and each of `secrets`
    replaced by ***."""
    text = _USERINFO.sub(lambda m: f"{m[1]}{m[2]}:{MASK}@", text)
    text = _BEARER.sub(lambda m: f"{m[1]} {MASK}", text)
    text = _QUERY.sub(lambda m: f"{m[1]}{MASK}", text)
    text = _TOKEN.sub(lambda m: f"{m[1]}{MASK}", text)
    for secret in sorted({s for s in secrets if len(s) >= MIN_SECRET}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def without_credentials(url: str) -> str:
    """A URL without its user:password part, for naming a camera or hub where a password must not show."""
    return _USERINFO.sub(lambda m: m[1], re.sub(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s:?#]+@", r"\1", url))


class RedactingFilter(logging.Filter):
    """On a handler: every record it writes goes through redact(), libraries' records too (websockets, zeep)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message, self.secrets)
        if record.exc_info and record.exc_info[1] is not None:
            clean += "\n" + redact(logging.Formatter().formatException(record.exc_info), self.secrets)
            record.exc_info = None
            record.exc_text = None
        record.msg, record.args = clean, None
        return True
