"""Stage 1, the agent wire contract (protocol v1): parse and validate JSON frames into typed messages; no I/O."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, cast

from nvrmon import wire
from nvrmon.devices import CameraHealth, Disk, NvrHealth, StreamDetail
from nvrmon.models import Severity, Status
from nvrmon.wire import MAX_CAMERA_ID, MAX_HOSTNAME, MAX_SEQ, STATUSES, ErrorCode, ProtocolError, error_frame, printable

# The field rules live in nvrmon/wire.py; these names stay importable from here, the contract's one module.
__all__ = [
    "MAX_CAMERA_ID", "MAX_HOSTNAME", "MAX_SEQ", "STATUSES", "ErrorCode", "ProtocolError", "error_frame", "printable",
]  # fmt: skip

PROTOCOL_VERSION = 1
SEVERITIES: frozenset[str] = frozenset({"info", "warning", "error", "critical"})
RECORDING: frozenset[str] = frozenset({"recording", "not_recording", "unknown"})
DISK_STATES: frozenset[str] = frozenset({"ok", "failing", "failed", "unknown"})
# Field length limits; docs/protocol.md and docs/protocol.schema.json state the same numbers.
MAX_TEXT = 128
MAX_MESSAGE = 1000
MAX_STATS_KEYS = 32
MAX_STATS_KEY = 64
MAX_SESSION = 64
MAX_REASON = 200
MAX_CODEC = 32
MAX_DISKS = 64
MAX_DISK_ID = 64
# Ranges of the health numbers: wide enough for every real device (a camera whose clock reset to 1970 is 1.7e9 s
# behind), narrow enough that nothing absurd reaches the pages.
MAX_SECONDS = 1e10  # timestamps (until 2286), uptimes and clock skews
MAX_BYTES = MAX_SEQ  # disk sizes: 9 PB, exact in every JSON implementation
MAX_FPS = 1000.0
MAX_PIXELS = 65535  # width, height
MAX_BITRATE_KBPS = 1e7
TEMPERATURE_C = (-100.0, 200.0)


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
    reason: str = ""  # why it is offline, in the agent's words; always empty while online
    detail: StreamDetail = field(default_factory=StreamDetail)


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
    reason: str = ""
    detail: StreamDetail = field(default_factory=StreamDetail)


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


@dataclass(frozen=True, slots=True)
class Health:
    """The NVR's device facts, replacing the previous ones (latest wins); cameras by their id on the NVR."""

    nvr: NvrHealth = field(default_factory=NvrHealth)
    cameras: tuple[CameraHealth, ...] = ()
    seq: int = 0


Message = Hello | Heartbeat | CameraStatus | Cameras | Alert | Health


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
        nvr = wire.mapping(data, "nvr")
        info = NvrInfo(
            hostname=wire.hostname(nvr),
            device_name=wire.text(nvr, "device_name", MAX_TEXT, where="nvr."),
            region=wire.text(nvr, "region", MAX_TEXT, where="nvr."),
            site=wire.text(nvr, "site", MAX_TEXT, where="nvr."),
            model=wire.text(nvr, "model", MAX_TEXT, where="nvr."),
            firmware=wire.text(nvr, "firmware", MAX_TEXT, where="nvr."),
            ip_address=wire.ip(nvr, "nvr.ip_address"),
        )
        session = wire.text(data, "session", MAX_SESSION)
        return Hello(nvr=info, cameras=_cameras(data, max_cameras), session=session)
    if kind == "heartbeat":
        return Heartbeat(stats=_stats(data), seq=wire.seq(data))
    if kind == "camera_status":
        status = wire.status(data, "status")
        return CameraStatus(
            camera_id=wire.camera_id(data, "camera_id"),
            status=status,
            seq=wire.seq(data),
            reason=_reason(data, status),
            detail=_detail(wire.mapping(data, "detail", required=False, where="detail"), "detail."),
        )
    if kind == "cameras":
        # Required here (unlike hello): a frame that forgot its list must not silently remove every camera.
        if "cameras" not in data:
            raise ProtocolError("invalid_message", "field 'cameras' is required")
        return Cameras(cameras=_cameras(data, max_cameras), seq=wire.seq(data))
    if kind == "alert":
        severity = data.get("severity")
        if not isinstance(severity, str) or severity not in SEVERITIES:  # a list or object would not even hash
            raise ProtocolError("invalid_message", f"severity must be one of {sorted(SEVERITIES)}")
        message = wire.text(data, "message", MAX_MESSAGE, required=True)
        camera_id = wire.camera_id(data, "camera_id") if data.get("camera_id") is not None else None
        return Alert(severity=cast(Severity, severity), message=message, camera_id=camera_id, seq=wire.seq(data))
    if kind == "health":
        return _health(data, max_cameras)
    if not isinstance(kind, str):
        raise ProtocolError("invalid_message", "field 'type' must be a string")
    raise ProtocolError("unknown_type", f"unknown message type {kind[:40]!r}")


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
        camera_id = wire.camera_id(item, "id", f"cameras[{index}].")
        if camera_id in cameras:
            raise ProtocolError("invalid_message", f"camera id {camera_id!r} appears twice")
        name = wire.text(item, "name", MAX_TEXT, where=f"cameras[{index}].") or camera_id
        status = wire.status(item, "status")
        cameras[camera_id] = CameraInfo(
            id=camera_id,
            name=name,
            ip_address=wire.ip(item, f"cameras[{index}].ip_address"),
            status=status,
            reason=_reason(item, status, f"cameras[{index}]."),
            detail=_detail(
                wire.mapping(item, "detail", required=False, where=f"cameras[{index}]."), f"cameras[{index}].detail."
            ),
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


def _reason(data: dict[str, Any], status: Status, where: str = "") -> str:
    """Why a camera is offline; the hub keeps no reason for an online camera (the words would be stale)."""
    reason = wire.text(data, "reason", MAX_REASON, where=where)
    return reason if status == "offline" else ""


def _detail(data: dict[str, Any], where: str) -> StreamDetail:
    return StreamDetail(
        codec=wire.text(data, "codec", MAX_CODEC, where=where),
        width=wire.integer(data, "width", 0, MAX_PIXELS, where=where),
        height=wire.integer(data, "height", 0, MAX_PIXELS, where=where),
        fps=wire.number(data, "fps", 0, MAX_FPS, where=where),
        nominal_fps=wire.number(data, "nominal_fps", 0, MAX_FPS, where=where),
        bitrate_kbps=wire.number(data, "bitrate_kbps", 0, MAX_BITRATE_KBPS, where=where),
    )


def _health(data: dict[str, Any], max_cameras: int) -> Health:
    nvr = wire.mapping(data, "nvr", required=False)
    disks: dict[str, Disk] = {}
    for index, item in enumerate(wire.array(nvr, "disks", MAX_DISKS, where="nvr.")):
        where = f"nvr.disks[{index}]."
        if not isinstance(item, dict):
            raise wire.invalid(f"{where[:-1]} must be an object")
        disk_id = wire.text(item, "id", MAX_DISK_ID, required=True, where=where)
        if disk_id in disks:
            raise wire.invalid(f"disk id {disk_id!r} appears twice")
        capacity = wire.integer(item, "capacity_bytes", 0, MAX_BYTES, where=where)
        used = wire.integer(item, "used_bytes", 0, MAX_BYTES, where=where)
        disks[disk_id] = Disk(
            disk_id, capacity, used, cast(Any, wire.choice(item, "state", DISK_STATES, "unknown", where=where))
        )
    facts = NvrHealth(
        uptime_s=wire.number(nvr, "uptime_s", 0, MAX_SECONDS, where="nvr."),
        temperature_c=wire.number(nvr, "temperature_c", *TEMPERATURE_C, where="nvr."),
        clock_skew_s=wire.number(nvr, "clock_skew_s", -MAX_SECONDS, MAX_SECONDS, where="nvr."),
        oldest_recording=wire.number(nvr, "oldest_recording", 0, MAX_SECONDS, where="nvr."),
        disks=tuple(disks.values()),
    )
    items = data.get("cameras")
    if items is not None and not isinstance(items, list):
        raise wire.invalid("field 'cameras' must be an array")
    if items and len(items) > max_cameras:
        raise ProtocolError("too_many_cameras", f"{len(items)} cameras; the limit per NVR is {max_cameras}")
    cameras: dict[str, CameraHealth] = {}
    for index, item in enumerate(items or ()):
        where = f"cameras[{index}]."
        if not isinstance(item, dict):
            raise wire.invalid(f"cameras[{index}] must be an object")
        camera_id = wire.camera_id(item, "camera_id", where)
        if camera_id in cameras:
            raise wire.invalid(f"camera id {camera_id!r} appears twice")
        cameras[camera_id] = CameraHealth(
            camera_id=camera_id,
            recording=cast(Any, wire.choice(item, "recording", RECORDING, "unknown", where=where)),
            recording_since=wire.number(item, "recording_since", 0, MAX_SECONDS, where=where),
            clock_skew_s=wire.number(item, "clock_skew_s", -MAX_SECONDS, MAX_SECONDS, where=where),
            oldest_recording=wire.number(item, "oldest_recording", 0, MAX_SECONDS, where=where),
            stream=_detail(item, where),
            model=wire.text(item, "model", MAX_TEXT, where=where),
            firmware=wire.text(item, "firmware", MAX_TEXT, where=where),
            serial=wire.text(item, "serial", MAX_TEXT, where=where),
        )
    return Health(nvr=facts, cameras=tuple(cameras.values()), seq=wire.seq(data))
