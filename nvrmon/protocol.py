"""Stage 1, the agent wire contract (protocol v1): parse and validate JSON frames into typed messages; no I/O."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from nvrmon.models import Severity, Status

PROTOCOL_VERSION = 1
STATUSES: frozenset[str] = frozenset({"online", "offline"})
SEVERITIES: frozenset[str] = frozenset({"info", "warning", "error", "critical"})
# Field length limits; docs/protocol.md and docs/protocol.schema.json state the same numbers.
MAX_HOSTNAME = 253
MAX_TEXT = 128
MAX_CAMERA_ID = 64
MAX_MESSAGE = 1000
MAX_STATS_KEYS = 32

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
]


class ProtocolError(Exception):
    """A frame the hub refuses; `code` is machine-readable and goes back to the agent in an error frame."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message

    def frame(self) -> str:
        return error_frame(self.code, self.message)


@dataclass(frozen=True, slots=True)
class NvrInfo:
    hostname: str
    device_name: str = ""
    region: str = ""
    site: str = ""
    model: str = ""
    firmware: str = ""
    ip_address: str = ""


@dataclass(frozen=True, slots=True)
class CameraInfo:
    id: str
    name: str
    ip_address: str
    status: Status


@dataclass(frozen=True, slots=True)
class Hello:
    nvr: NvrInfo
    cameras: tuple[CameraInfo, ...]
    protocol: int = PROTOCOL_VERSION


@dataclass(frozen=True, slots=True)
class Heartbeat:
    stats: dict[str, str | int | float | bool] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CameraStatus:
    camera_id: str
    status: Status


@dataclass(frozen=True, slots=True)
class Cameras:
    cameras: tuple[CameraInfo, ...]


@dataclass(frozen=True, slots=True)
class Alert:
    severity: Severity
    message: str
    camera_id: str | None = None


Message = Hello | Heartbeat | CameraStatus | Cameras | Alert


def parse_frame(frame: str | bytes, *, max_bytes: int, max_cameras: int) -> Message:
    """Decode one text frame; raises ProtocolError with a precise reason for anything the hub won't accept."""
    if len(frame) > max_bytes:
        raise ProtocolError("frame_too_large", f"frame is {len(frame)} bytes; the limit is {max_bytes}")
    try:
        data = json.loads(frame)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError("invalid_json", f"frame is not valid JSON: {exc}") from None
    return parse_message(data, max_cameras=max_cameras)


def parse_message(data: object, *, max_cameras: int) -> Message:
    if not isinstance(data, dict):
        raise ProtocolError("invalid_message", "a frame must be a JSON object")
    kind = data.get("type")
    if kind == "hello":
        version = data.get("protocol")
        if version != PROTOCOL_VERSION:
            raise ProtocolError("unsupported_protocol", f"protocol {version!r} is not supported; this hub speaks 1")
        nvr = _object(data, "nvr")
        info = NvrInfo(
            hostname=_hostname(nvr),
            device_name=_text(nvr, "device_name", MAX_TEXT),
            region=_text(nvr, "region", MAX_TEXT),
            site=_text(nvr, "site", MAX_TEXT),
            model=_text(nvr, "model", MAX_TEXT),
            firmware=_text(nvr, "firmware", MAX_TEXT),
            ip_address=_ip(nvr, "nvr.ip_address"),
        )
        return Hello(nvr=info, cameras=_cameras(data, max_cameras))
    if kind == "heartbeat":
        return Heartbeat(stats=_stats(data))
    if kind == "camera_status":
        return CameraStatus(camera_id=_camera_id(data, "camera_id"), status=_status(data, "status"))
    if kind == "cameras":
        return Cameras(cameras=_cameras(data, max_cameras))
    if kind == "alert":
        severity = data.get("severity")
        if severity not in SEVERITIES:
            raise ProtocolError("invalid_message", f"severity must be one of {sorted(SEVERITIES)}")
        message = _text(data, "message", MAX_MESSAGE, required=True)
        camera_id = _camera_id(data, "camera_id") if data.get("camera_id") is not None else None
        return Alert(severity=cast(Severity, severity), message=message, camera_id=camera_id)
    if not isinstance(kind, str):
        raise ProtocolError("invalid_message", "field 'type' must be a string")
    raise ProtocolError("unknown_type", f"unknown message type {kind[:40]!r}")


def error_frame(code: ErrorCode, message: str) -> str:
    return json.dumps({"type": "error", "code": code, "message": message})


def welcome_frame(nvr_id: int, heartbeat_interval: float) -> str:
    return json.dumps(
        {"type": "welcome", "protocol": PROTOCOL_VERSION, "nvr_id": nvr_id, "heartbeat_interval": heartbeat_interval}
    )


def _object(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise ProtocolError("invalid_message", f"field '{key}' must be an object")
    return value


def _text(data: dict[str, Any], key: str, limit: int, *, required: bool = False, where: str = "") -> str:
    value = data.get(key)
    name = f"{where}{key}"
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ProtocolError("invalid_message", f"field '{name}' must be a string")
    value = value.strip()
    if required and not value:
        raise ProtocolError("invalid_message", f"field '{name}' must not be empty")
    if len(value) > limit:
        raise ProtocolError("invalid_message", f"field '{name}' is longer than {limit} characters")
    if any(ord(ch) < 32 for ch in value):
        raise ProtocolError("invalid_message", f"field '{name}' contains control characters")
    return value


def _hostname(nvr: dict[str, Any]) -> str:
    hostname = _text(nvr, "hostname", MAX_HOSTNAME, required=True, where="nvr.")
    if any(ch.isspace() for ch in hostname):
        raise ProtocolError("invalid_message", "field 'nvr.hostname' must not contain spaces")
    return hostname


def _ip(data: dict[str, Any], name: str) -> str:
    value = data.get("ip_address")
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise ProtocolError("invalid_message", f"field '{name}' must be a string")
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise ProtocolError("invalid_message", f"field '{name}' is not an IP address") from None


def _status(data: dict[str, Any], key: str) -> Status:
    value = data.get(key)
    if value not in STATUSES:
        raise ProtocolError("invalid_message", f"field '{key}' must be 'online' or 'offline'")
    return cast(Status, value)


def _camera_id(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ProtocolError("invalid_message", f"field '{key}' must be a non-empty string")
    value = value.strip()
    if len(value) > MAX_CAMERA_ID or any(ord(ch) < 32 for ch in value):
        raise ProtocolError(
            "invalid_message", f"field '{key}' is longer than {MAX_CAMERA_ID} characters or unprintable"
        )
    return value


def _cameras(data: dict[str, Any], max_cameras: int) -> tuple[CameraInfo, ...]:
    items = data.get("cameras", [])
    if not isinstance(items, list):
        raise ProtocolError("invalid_message", "field 'cameras' must be an array")
    if len(items) > max_cameras:
        raise ProtocolError("too_many_cameras", f"{len(items)} cameras; the limit per NVR is {max_cameras}")
    cameras: dict[str, CameraInfo] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ProtocolError("invalid_message", f"cameras[{index}] must be an object")
        camera_id = _camera_id(item, "id")
        if camera_id in cameras:
            raise ProtocolError("invalid_message", f"camera id {camera_id!r} appears twice")
        name = _text(item, "name", MAX_TEXT, where=f"cameras[{index}].") or camera_id
        cameras[camera_id] = CameraInfo(
            id=camera_id,
            name=name,
            ip_address=_ip(item, f"cameras[{index}].ip_address"),
            status=_status(item, "status"),
        )
    return tuple(cameras.values())


def _stats(data: dict[str, Any]) -> dict[str, str | int | float | bool]:
    stats = data.get("stats")
    if stats is None:
        return {}
    if not isinstance(stats, dict) or len(stats) > MAX_STATS_KEYS:
        raise ProtocolError("invalid_message", f"field 'stats' must be an object with at most {MAX_STATS_KEYS} keys")
    clean: dict[str, str | int | float | bool] = {}
    for key, value in stats.items():
        if len(key) > 64 or not isinstance(value, str | int | float | bool) or value != value:
            raise ProtocolError("invalid_message", "stats values must be strings, numbers or booleans")
        clean[key] = value[:MAX_TEXT] if isinstance(value, str) else value
    return clean
