"""Stage 1, the agent wire contract (protocol v1): parse and validate JSON frames into typed messages; no I/O."""

from __future__ import annotations

import ipaddress
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from nvrmon import names
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
MAX_STATS_KEY = 64
MAX_SESSION = 64
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
    # An agent that numbers its frames names its run here; the hub then tells it in `welcome` the last frame it
    # applied for that session, so the agent replays only what the hub never committed.
    session: str = ""


# `seq` on the messages below: 0 = unnumbered; otherwise the agent's frame number, increasing within its session.


@dataclass(frozen=True, slots=True)
class Heartbeat:
    stats: dict[str, str | int | float | bool] = field(default_factory=dict)
    seq: int = 0


@dataclass(frozen=True, slots=True)
class CameraStatus:
    camera_id: str
    status: Status
    seq: int = 0


@dataclass(frozen=True, slots=True)
class Cameras:
    cameras: tuple[CameraInfo, ...]
    seq: int = 0


@dataclass(frozen=True, slots=True)
class Alert:
    severity: Severity
    message: str
    camera_id: str | None = None
    seq: int = 0


Message = Hello | Heartbeat | CameraStatus | Cameras | Alert


def parse_frame(frame: str | bytes, *, max_bytes: int, max_cameras: int) -> Message:
    """Decode one text frame; raises ProtocolError with a precise reason for anything the hub won't accept."""
    # The limit is in UTF-8 bytes; a text frame can only exceed it in bytes once it has max_bytes/4 characters.
    size = len(frame) if isinstance(frame, bytes) or len(frame) * 4 <= max_bytes else _utf8_size(frame)
    if size > max_bytes:
        raise ProtocolError("frame_too_large", f"frame is {size} bytes; the limit is {max_bytes}")
    try:
        data = json.loads(frame)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError("invalid_json", f"frame is not valid JSON: {exc}") from None
    except RecursionError:
        raise ProtocolError("invalid_json", "frame nests too deeply") from None
    return parse_message(data, max_cameras=max_cameras)


def _utf8_size(frame: str) -> int:
    return len(frame.encode("utf-8", "surrogatepass"))


def parse_message(data: object, *, max_cameras: int) -> Message:
    if not isinstance(data, dict):
        raise ProtocolError("invalid_message", "a frame must be a JSON object")
    kind = data.get("type")
    if kind == "hello":
        version = data.get("protocol")
        if type(version) is not int or version != PROTOCOL_VERSION:
            raise ProtocolError("unsupported_protocol", f"protocol {version!r} is not supported; this hub speaks 1")
        nvr = _object(data, "nvr")
        info = NvrInfo(
            hostname=_hostname(nvr),
            device_name=_text(nvr, "device_name", MAX_TEXT, where="nvr."),
            region=_text(nvr, "region", MAX_TEXT, where="nvr."),
            site=_text(nvr, "site", MAX_TEXT, where="nvr."),
            model=_text(nvr, "model", MAX_TEXT, where="nvr."),
            firmware=_text(nvr, "firmware", MAX_TEXT, where="nvr."),
            ip_address=_ip(nvr, "nvr.ip_address"),
        )
        session = _text(data, "session", MAX_SESSION)
        return Hello(nvr=info, cameras=_cameras(data, max_cameras), session=session)
    if kind == "heartbeat":
        return Heartbeat(stats=_stats(data), seq=_seq(data))
    if kind == "camera_status":
        return CameraStatus(camera_id=_camera_id(data, "camera_id"), status=_status(data, "status"), seq=_seq(data))
    if kind == "cameras":
        # Required here (unlike hello): a frame that forgot its list must not silently remove every camera.
        if "cameras" not in data:
            raise ProtocolError("invalid_message", "field 'cameras' is required")
        return Cameras(cameras=_cameras(data, max_cameras), seq=_seq(data))
    if kind == "alert":
        severity = data.get("severity")
        if not isinstance(severity, str) or severity not in SEVERITIES:  # a list or object would not even hash
            raise ProtocolError("invalid_message", f"severity must be one of {sorted(SEVERITIES)}")
        message = _text(data, "message", MAX_MESSAGE, required=True)
        camera_id = _camera_id(data, "camera_id") if data.get("camera_id") is not None else None
        return Alert(severity=cast(Severity, severity), message=message, camera_id=camera_id, seq=_seq(data))
    if not isinstance(kind, str):
        raise ProtocolError("invalid_message", "field 'type' must be a string")
    raise ProtocolError("unknown_type", f"unknown message type {kind[:40]!r}")


def error_frame(code: ErrorCode, message: str) -> str:
    return json.dumps({"type": "error", "code": code, "message": message})


def welcome_frame(nvr_id: int, heartbeat_interval: float, last_seq: int = 0, agent_token: str = "") -> str:
    """`agent_token` only after enrollment: the NVR's own token, sent this once, for every later connection."""
    frame: dict[str, Any] = {"type": "welcome", "protocol": PROTOCOL_VERSION, "nvr_id": nvr_id,
                             "heartbeat_interval": heartbeat_interval, "last_seq": last_seq}  # fmt: skip
    if agent_token:
        frame["agent_token"] = agent_token
    return json.dumps(frame)


def ack_frame(seq: int) -> str:
    """Everything this connection numbered up to `seq` is committed to the database."""
    return json.dumps({"type": "ack", "seq": seq})


def _seq(data: dict[str, Any]) -> int:
    value = data.get("seq")
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_SEQ:
        raise ProtocolError("invalid_message", f"field 'seq' must be an integer from 1 to {MAX_SEQ}")
    return value


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
    refused = names.refused_character(value)
    if refused is not None:
        raise ProtocolError("invalid_message", f"field '{name}' contains {refused}, which a name must not contain")
    return value


def printable(value: str) -> bool:
    """No control, format (zero-width, bidi override), separator or private-use characters (nvrmon/names.py), and
    valid UTF-8 (lone surrogates can't be stored or rendered). Embed tokens check labels and regions by it too."""
    return names.refused_character(value) is None


def _hostname(nvr: dict[str, Any]) -> str:
    # NFKC: a fullwidth or ligature spelling is the same NVR as the plain one, not a second one beside it.
    hostname = names.normalise(_text(nvr, "hostname", MAX_HOSTNAME, required=True, where="nvr."))
    if len(hostname) > MAX_HOSTNAME:
        raise ProtocolError("invalid_message", f"field 'nvr.hostname' is longer than {MAX_HOSTNAME} characters")
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
    if not isinstance(value, str) or value not in STATUSES:
        raise ProtocolError("invalid_message", f"field '{key}' must be 'online' or 'offline'")
    return cast(Status, value)


def _camera_id(data: dict[str, Any], key: str, where: str = "") -> str:
    value = data.get(key)
    name = f"{where}{key}"
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ProtocolError("invalid_message", f"field '{name}' must be a non-empty string")
    value = names.normalise(value.strip())
    if len(value) > MAX_CAMERA_ID or not printable(value):
        raise ProtocolError(
            "invalid_message", f"field '{name}' is longer than {MAX_CAMERA_ID} characters or unprintable"
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
        camera_id = _camera_id(item, "id", f"cameras[{index}].")
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
        if len(key) > MAX_STATS_KEY or not printable(key):
            raise ProtocolError(
                "invalid_message", f"stats keys must be printable and at most {MAX_STATS_KEY} characters"
            )
        if not isinstance(value, str | int | float | bool) or (isinstance(value, float) and not math.isfinite(value)):
            raise ProtocolError("invalid_message", "stats values must be strings, finite numbers or booleans")
        if isinstance(value, str):
            value = value[:MAX_TEXT]
            if not printable(value):
                raise ProtocolError("invalid_message", "stats values must not contain control characters")
        clean[key] = value
    return clean
