"""Stage 7, the API's shapes: JSON schemas of the fleet records (models.py) and list pages, for the OpenAPI document.

Enumerations are read from the vocabulary's types, so a new status shows up here without a second list to update;
tests/test_openapi.py validates live responses against these schemas, so a field that drifts fails there.
"""

from __future__ import annotations

from typing import Any, get_args

from nvrmon.models import CameraDisplay, NvrStatus, Severity, Status
from nvrmon.web.openapi import Schema, query, ref

MAX_LIMIT = 500  # the most rows one list response carries
MAX_OFFSET = 1_000_000


def _obj(properties: dict[str, Schema], optional: tuple[str, ...] = ()) -> Schema:
    # Records may grow fields (additive changes do not break clients); the documented ones are always there.
    return {"type": "object", "required": [k for k in properties if k not in optional], "properties": properties}


INT: Schema = {"type": "integer"}
NUM: Schema = {"type": "number"}
STR: Schema = {"type": "string"}
BOOL: Schema = {"type": "boolean"}
NULLABLE_INT: Schema = {"type": ["integer", "null"]}


def enum(values: tuple[Any, ...]) -> Schema:
    return {"type": "string", "enum": list(values)}


NVR_STATUS = enum(get_args(NvrStatus))
CAMERA_DISPLAY = enum(get_args(CameraDisplay))

NVR = _obj({
    "id": INT, "hostname": STR, "device_name": STR, "region": STR, "site": STR, "model": STR, "firmware": STR,
    "ip_address": STR, "status": NVR_STATUS, "status_reason": STR, "last_seen": NUM, "status_changed": NUM,
    "updated_seq": INT, "unstable": BOOL, "removed": BOOL, "cameras_online": INT, "cameras_total": INT,
    "stats": {"type": "object"},
    # The fleet inventory (docs/inventory.md): declared or discovered, tags, expected and missing cameras.
    "declared": BOOL, "tags": {"type": "array", "items": STR}, "cameras_expected": NULLABLE_INT,
    "cameras_missing": INT, "cameras_short": INT,
})  # fmt: skip
CAMERA = _obj({
    "id": INT, "nvr_id": INT, "nvr_hostname": STR, "nvr_status": NVR_STATUS, "region": STR, "site": STR,
    "ext_id": STR, "name": STR, "ip_address": STR, "status": enum(get_args(Status)), "status_changed": NUM,
    "removed": BOOL, "updated_seq": INT, "display_status": CAMERA_DISPLAY,
    "missing": BOOL, "declared": BOOL, "tags": {"type": "array", "items": STR},  # the fleet inventory
})  # fmt: skip
EVENT = _obj({
    "id": INT, "seq": INT, "ts": NUM, "kind": STR, "severity": enum(get_args(Severity)), "nvr_id": NULLABLE_INT,
    "nvr_hostname": STR, "camera_id": NULLABLE_INT, "camera_name": STR, "message": STR,
})  # fmt: skip
SUMMARY = _obj({
    **dict.fromkeys((
        "seq", "nvrs_total", "nvrs_online", "nvrs_stale", "nvrs_unknown", "nvrs_offline", "cameras_total",
        "cameras_online", "cameras_offline", "cameras_nvr_offline", "cameras_unknown",
        "nvrs_missing", "cameras_missing",  # the fleet inventory
    ), INT),
    "last_change": NUM, "epoch": STR,
})  # fmt: skip
HEALTH = _obj(
    {"status": STR, "node": STR, "database": {"type": "object"}, "storage": {"type": "object"}, "seq": INT,
     "epoch": STR, "agents": INT, "subscribers": INT, "uptime_s": NUM},
    optional=("storage", "seq", "epoch", "agents", "subscribers", "uptime_s"),
)  # fmt: skip


def page_of(key: str, item: Schema) -> Schema:
    """A list response: the rows under `key`, how many on this page, how many match in all, and the window."""
    return _obj({
        key: {"type": "array", "items": item}, "count": INT, "total": INT,
        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, "offset": {"type": "integer", "minimum": 0},
    })  # fmt: skip


SCHEMAS: dict[str, Schema] = {
    "Nvr": NVR,
    "NvrDetail": {"allOf": [ref("Nvr"), _obj({"cameras": {"type": "array", "items": ref("Camera")}})]},
    "Camera": CAMERA,
    "Event": EVENT,
    "Summary": SUMMARY,
    "Health": HEALTH,
    "NvrPage": page_of("nvrs", ref("Nvr")),
    "CameraPage": page_of("cameras", ref("Camera")),
    "EventPage": page_of("events", ref("Event")),
}

LIMIT = query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 100},
              f"rows per response, at most {MAX_LIMIT}")  # fmt: skip
OFFSET = query("offset", {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0}, "rows to skip")
TEXT: Schema = {"type": "string", "maxLength": 64}
REGION = query("region", TEXT, "only this region (exact)")
SITE = query("site", TEXT, "only this site (exact)")
Q = query("q", TEXT, "text search (case-insensitive substring), as the list pages' search box")
NVR_ID = query("nvr", {"type": "integer", "minimum": 1, "maximum": 2**53}, "only this NVR's (id)")
