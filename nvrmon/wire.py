"""Shared vocabulary, wire field rules: ProtocolError and how one field of an agent frame is read and bounded (v1)."""

from __future__ import annotations

import ipaddress
import json
import math
from typing import Any, Literal, cast

from nvrmon import names
from nvrmon.models import Status

STATUSES: frozenset[str] = frozenset({"online", "offline"})
# Field length limits; docs/protocol.md and docs/protocol.schema.json state the same numbers.
MAX_HOSTNAME = 253
MAX_CAMERA_ID = 64
# Agent sequence numbers stay within what every JSON implementation represents exactly.
MAX_SEQ = 2**53 - 1

ErrorCode = Literal[
    "invalid_json",
    "invalid_message",
    "unknown_type",
    "unsupported_protocol",
    "hello_required",
    "frame_too_large",
    "too_many_cameras",
    "unknown_camera",
    "replaced",
    "hostname_not_allowed",
    "enrollment_refused",
    "token_revoked",
    "rate_limited",
    "server_busy",
    "storage_unavailable",
]


class ProtocolError(Exception):
    """A frame the hub refuses; `code` is machine-readable and goes back to the agent in an error frame."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message

    def frame(self) -> str:
        return error_frame(self.code, self.message)


def error_frame(code: ErrorCode, message: str) -> str:
    return json.dumps({"type": "error", "code": code, "message": message})


def invalid(message: str) -> ProtocolError:
    return ProtocolError("invalid_message", message)


def seq(data: dict[str, Any]) -> int:
    value = data.get("seq")
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_SEQ:
        raise invalid(f"field 'seq' must be an integer from 1 to {MAX_SEQ}")
    return value


def mapping(data: dict[str, Any], key: str, *, required: bool = True, where: str = "") -> dict[str, Any]:
    """An object field; an optional one may be absent or null (an empty object)."""
    value = data.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise invalid(f"field '{where}{key}' must be an object")
    return value


def array(data: dict[str, Any], key: str, limit: int, *, where: str = "") -> list[Any]:
    """An optional list field of at most `limit` items; absent or null is empty."""
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > limit:
        raise invalid(f"field '{where}{key}' must be an array of at most {limit} items")
    return value


def text(data: dict[str, Any], key: str, limit: int, *, required: bool = False, where: str = "") -> str:
    value = data.get(key)
    name = f"{where}{key}"
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise invalid(f"field '{name}' must be a string")
    value = value.strip()
    if required and not value:
        raise invalid(f"field '{name}' must not be empty")
    if len(value) > limit:
        raise invalid(f"field '{name}' is longer than {limit} characters")
    refused = names.refused_character(value)
    if refused is not None:
        raise invalid(f"field '{name}' contains {refused}, which a name must not contain")
    return value


def number(data: dict[str, Any], key: str, low: float, high: float, *, where: str = "") -> float | None:
    """An optional finite number within [low, high]; absent or null is unknown (None)."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise invalid(f"field '{where}{key}' must be a finite number")
    if not low <= value <= high:
        raise invalid(f"field '{where}{key}' must be from {low:g} to {high:g}")
    return float(value)


def integer(data: dict[str, Any], key: str, low: int, high: int, *, where: str = "") -> int | None:
    """An optional integer within [low, high] (a float with no fraction counts); absent or null is unknown."""
    raw = data.get(key)
    if isinstance(raw, int) and not isinstance(raw, bool):
        if not low <= raw <= high:  # compared as integers: 2**53 - 1 is not exact as a float
            raise invalid(f"field '{where}{key}' must be from {low} to {high}")
        return raw
    value = number(data, key, low, high, where=where)
    if value is None:
        return None
    if not value.is_integer():
        raise invalid(f"field '{where}{key}' must be an integer")
    return int(value)


def choice(data: dict[str, Any], key: str, allowed: frozenset[str], default: str, *, where: str = "") -> str:
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, str) or value not in allowed:
        raise invalid(f"field '{where}{key}' must be one of {', '.join(sorted(allowed))}")
    return value


def printable(value: str) -> bool:
    """No control, format (zero-width, bidi override), separator or private-use characters (nvrmon/names.py), and
    valid UTF-8 (lone surrogates can't be stored or rendered). Embed tokens check labels and regions by it too."""
    return names.refused_character(value) is None


def hostname(nvr: dict[str, Any]) -> str:
    # NFKC: a fullwidth or ligature spelling is the same NVR as the plain one, not a second one beside it.
    found = names.normalise(text(nvr, "hostname", MAX_HOSTNAME, required=True, where="nvr."))
    if len(found) > MAX_HOSTNAME:
        raise invalid(f"field 'nvr.hostname' is longer than {MAX_HOSTNAME} characters")
    if any(ch.isspace() for ch in found):
        raise invalid("field 'nvr.hostname' must not contain spaces")
    return found


def ip(data: dict[str, Any], name: str) -> str:
    value = data.get("ip_address")
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise invalid(f"field '{name}' must be a string")
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise invalid(f"field '{name}' is not an IP address") from None


def status(data: dict[str, Any], key: str) -> Status:
    value = data.get(key)
    if not isinstance(value, str) or value not in STATUSES:
        raise invalid(f"field '{key}' must be 'online' or 'offline'")
    return cast(Status, value)


def camera_id(data: dict[str, Any], key: str, where: str = "") -> str:
    value = data.get(key)
    name = f"{where}{key}"
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise invalid(f"field '{name}' must be a non-empty string")
    value = names.normalise(value.strip())
    if len(value) > MAX_CAMERA_ID or not printable(value):
        raise invalid(f"field '{name}' is longer than {MAX_CAMERA_ID} characters or unprintable")
    return value
