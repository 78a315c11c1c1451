"""Stage 7, the alerting API's shapes: JSON schemas of incidents, maintenance windows, channels, deliveries and
availability reports, for the OpenAPI document (tests/test_openapi.py validates live responses against them)."""

from __future__ import annotations

from typing import get_args

from nvrmon.alerts.manage import MAX_NAME as MAX_CHANNEL_NAME
from nvrmon.alerts.routing import KEYS
from nvrmon.alerts.urls import MAX_URL
from nvrmon.alerts.window_input import MATCH_KEYS, MAX_NAME
from nvrmon.availability import SCOPES
from nvrmon.incidents import DAYS, ENTRY_KINDS, MAX_NOTE, MAX_REASON, SEVERITIES, STATES, IncidentScope
from nvrmon.web.api_schemas import BOOL, INT, NULLABLE_INT, NUM, STR, enum
from nvrmon.web.openapi import Schema, query, ref

MAX_INCIDENTS = 1000  # the most incidents one list response carries
MAX_DELIVERIES = 200
FILTER_STATES = (*STATES, "active")
INSTANT: Schema = {"type": "string", "description": "ISO 8601, UTC"}
NULLABLE_INSTANT: Schema = {"type": ["string", "null"], "description": "ISO 8601, UTC; null when not (yet)"}
NULLABLE_STR: Schema = {"type": ["string", "null"]}
NULLABLE_NUM: Schema = {"type": ["number", "null"]}


def _obj(properties: dict[str, Schema], optional: tuple[str, ...] = ()) -> Schema:
    # As api_schemas: records may grow fields; the documented ones are always there.
    return {"type": "object", "required": [k for k in properties if k not in optional], "properties": properties}


def _list(key: str, item: Schema, counted: bool = True) -> Schema:
    return _obj({key: {"type": "array", "items": item}, **({"count": INT} if counted else {})})


INCIDENT_DEVICE = _obj({
    "kind": enum(("nvr", "camera")), "nvr_id": INT, "camera_id": NULLABLE_INT, "name": STR, "hostname": STR,
    "status": STR, "down_since": NULLABLE_INSTANT, "recovered_at": NULLABLE_INSTANT,
})  # fmt: skip
INCIDENT = _obj({
    "id": INT, "state": enum(STATES), "severity": enum(SEVERITIES), "scope": enum(get_args(IncidentScope)),
    "site": STR, "region": STR, "title": STR, "devices": {"type": "array", "items": ref("IncidentDevice")},
    "opened_at": INSTANT, "acknowledged_at": NULLABLE_INSTANT, "acknowledged_by": NULLABLE_STR, "ack_note": STR,
    "resolved_at": NULLABLE_INSTANT, "duration_s": NUM, "merged_into": NULLABLE_INT, "updated_seq": INT,
})  # fmt: skip
TIMELINE_ENTRY = _obj({"id": INT, "incident_id": INT, "ts": INSTANT, "kind": enum(ENTRY_KINDS), "actor": STR,
                       "note": STR})  # fmt: skip
_MATCH_TEXT: Schema = {"type": "string", "maxLength": MAX_NAME}
WINDOW = _obj({
    "id": INT, "starts_at": INSTANT, "ends_at": NULLABLE_INSTANT, "reason": STR, "created_by": STR,
    "created_at": INSTANT, "active": BOOL,
    "match": {"type": "object", "properties": {"camera": INT, "nvr": STR, "site": STR, "region": STR}},
    "recurring": {"oneOf": [{"type": "null"}, _obj({"days": {"type": "array", "items": enum(DAYS)}, "from": STR,
                                                    "to": STR, "tz": STR})]},
})  # fmt: skip
WINDOW_INPUT: Schema = {
    "type": "object", "required": ["match", "reason"],
    "properties": {
        "match": {"type": "object", "minProperties": 1, "additionalProperties": False,
                  "description": "every given field must match; at least one",
                  "properties": {"camera": {"type": "integer", "minimum": 1},
                                 **dict.fromkeys(MATCH_KEYS[1:], _MATCH_TEXT)}},
        "starts_at": {**INSTANT, "maxLength": 64, "description": "ISO 8601 (UTC without an offset); default now"},
        "ends_at": {**INSTANT, "maxLength": 64, "description": "required unless recurring"},
        "reason": {"type": "string", "minLength": 1, "maxLength": MAX_REASON},
        "recurring": {"type": "object", "required": ["days", "from", "to"],
                      "properties": {"days": {"type": "array", "minItems": 1, "items": enum(DAYS)},
                                     "from": {"type": "string", "description": "HH:MM"},
                                     "to": {"type": "string", "description": "HH:MM"},
                                     "tz": {"type": "string", "maxLength": 64, "default": "UTC"}}},
    },
}  # fmt: skip
NOTE: Schema = {"type": "object", "properties": {"note": {"type": "string", "maxLength": MAX_NOTE}}}

_TEXT: Schema = {"type": "string", "description": "comma-separated values; empty matches all"}
CHANNEL = _obj({
    "id": INT, "name": STR, "kind": enum(("apprise", "webpush")), "target": {**STR, "description": "masked"},
    "match": {"type": "object", "properties": dict.fromkeys(KEYS, STR)}, "owner": STR, "created": INSTANT,
})  # fmt: skip
CHANNEL_INPUT: Schema = {
    "type": "object", "required": ["url"],
    "properties": {"url": {"type": "string", "minLength": 1, "maxLength": MAX_URL, "description": "an Apprise URL"},
                   "name": {"type": "string", "maxLength": MAX_CHANNEL_NAME},
                   "match": {"type": "object", "properties": dict.fromkeys(KEYS, _TEXT)}},
}  # fmt: skip
DELIVERY = _obj({
    "id": INT, "channel_id": NULLABLE_INT, "channel": NULLABLE_STR, "kind": STR, "state": STR, "site": STR,
    "region": STR, "title": STR, "created": INSTANT, "done_at": NULLABLE_INSTANT, "error": NULLABLE_STR,
    "incidents": {"type": "array", "items": INT},
    "attempts": {"type": "array", "items": _obj({"at": INSTANT, "result": STR, "error": NULLABLE_STR,
                                                 "elapsed_s": NUM})},
})  # fmt: skip

_SECONDS = ("counted", "up", "stale", "degraded", "down", "parent_down", "unknown", "hub_down", "maintenance")
FIGURES = _obj({
    "devices": INT, "availability": NULLABLE_NUM, **{f"{name}_s": NUM for name in _SECONDS},
    "nvr_availability": NULLABLE_NUM, "camera_availability": NULLABLE_NUM, "incidents": INT, "mttr_s": NULLABLE_NUM,
})  # fmt: skip
RANGE = _obj({"range": enum(("24h", "7d", "30d", "custom")), "from": INSTANT, "to": INSTANT})
REPORT = {"allOf": [RANGE, _obj({
    "scope": enum(SCOPES), "generated_at": INSTANT, "fleet": ref("Figures"), "count": INT,
    "groups": {"type": "array", "items": {"allOf": [ref("Figures"), _obj({
        "key": STR, "name": STR, "region": STR, "site": STR, "hostname": NULLABLE_STR, "nvr_id": NULLABLE_INT,
        "camera_id": NULLABLE_INT})]}},
})]}  # fmt: skip
DEVICE_HISTORY = {"allOf": [RANGE, _obj({
    "device": STR, "count": INT,
    "intervals": {"type": "array", "items": _obj({
        "state": STR, "maintenance": BOOL, "start": NUM, "end": NULLABLE_NUM, "region": STR, "site": STR,
        "seconds_in_range": NUM})},
})]}  # fmt: skip

INCIDENT_SCHEMAS: dict[str, Schema] = {
    "IncidentDevice": INCIDENT_DEVICE,
    "Incident": INCIDENT,
    "IncidentDetail": {"allOf": [ref("Incident"), _obj({"timeline": {"type": "array", "items": TIMELINE_ENTRY}})]},
    "IncidentList": _list("incidents", ref("Incident")),
    "Note": NOTE,
    "MaintenanceWindow": WINDOW,
    "MaintenanceList": _list("maintenance", ref("MaintenanceWindow")),
    "MaintenanceInput": WINDOW_INPUT,
}
CHANNEL_SCHEMAS: dict[str, Schema] = {
    "Channel": CHANNEL,
    "ChannelList": _list("channels", ref("Channel"), counted=False),
    "ChannelInput": CHANNEL_INPUT,
    "ChannelTest": _obj({"state": STR, "error": STR}),
    "DeliveryList": _list("deliveries", DELIVERY, counted=False),
}
REPORT_SCHEMAS: dict[str, Schema] = {
    "Figures": FIGURES,
    "AvailabilityReport": REPORT,
    "DeviceHistory": DEVICE_HISTORY,
}

INCIDENT_QUERY = (
    query("state", enum(FILTER_STATES), "only incidents in this state (active: open or acknowledged)"),
    query("site", {"type": "string", "maxLength": 100}, "only this site's (exact)"),
    query("severity", enum(SEVERITIES), "only this severity"),
    query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_INCIDENTS, "default": 100},
          f"at most this many, at most {MAX_INCIDENTS}"),
)  # fmt: skip
DELIVERY_QUERY = (
    query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_DELIVERIES, "default": 50},
          f"the newest this many, at most {MAX_DELIVERIES}"),
)  # fmt: skip
# Empty is the default (the /reports page's form sends its empty fields): now for to, none for from.
_INSTANT_QUERY: Schema = {"anyOf": [{"type": "string", "maxLength": 64, "format": "date-time"}, {"const": ""}]}
RANGE_QUERY = (
    query("range", enum(("24h", "7d", "30d", "custom")), "the last 24 hours (default), 7 or 30 days, or custom"),
    query("from", _INSTANT_QUERY, "a custom range's start (ISO 8601, UTC without an offset); at most 366 days"),
    query("to", _INSTANT_QUERY, "a custom range's end; default now; after from"),
)
REPORT_QUERY = (
    query("scope", enum(SCOPES), "rows per site (default), region, NVR or camera"),
    *RANGE_QUERY,
    query("format", enum(("json", "csv")), "csv: the same rows as text/csv with a header line, as an attachment"),
)
DEVICE_QUERY = (
    {"name": "device", "in": "query", "required": True, "example": "nvr:1", "description": "nvr:ID or camera:ID",
     "schema": {"type": "string", "pattern": "^(nvr|camera):[0-9]{1,15}$"}},
    *RANGE_QUERY,
)  # fmt: skip
