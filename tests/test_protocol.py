"""Protocol v1 parser (nvrmon.protocol) and the docs that describe it (docs/protocol.md, docs/protocol.schema.json)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, get_args

import pytest

from nvrmon import protocol
from nvrmon.devices import CameraHealth, Disk, NvrHealth, StreamDetail
from nvrmon.ingest import endpoint as agents
from nvrmon.protocol import (
    MAX_CAMERA_ID,
    MAX_HOSTNAME,
    MAX_MESSAGE,
    MAX_SEQ,
    MAX_SESSION,
    MAX_STATS_KEYS,
    MAX_TEXT,
    PROTOCOL_VERSION,
    SEVERITIES,
    STATUSES,
    Alert,
    CameraInfo,
    Cameras,
    CameraStatus,
    ErrorCode,
    Health,
    Heartbeat,
    Hello,
    Message,
    NvrInfo,
    ProtocolError,
    parse_frame,
    parse_message,
)
from nvrmon.settings import Settings

DOCS = Path(__file__).resolve().parent.parent / "docs"
MAX_CAMERAS = 4
MAX_BYTES = 1 << 20
AGENT_TYPES = ("hello", "heartbeat", "camera_status", "cameras", "alert", "health")
HUB_TYPES = ("welcome", "ack", "error")
NUMBERED_TYPES = ("heartbeat", "camera_status", "cameras", "alert", "health")
NVR_TEXT_FIELDS = ("device_name", "region", "site", "model", "firmware")
CONTROL_CHARS = ("\x00", "\x07", "\x1b", "\x1f")


# -- helpers -----------------------------------------------------------------------------------------------------------


def parse(data: object, *, max_cameras: int = MAX_CAMERAS) -> Message:
    return parse_message(data, max_cameras=max_cameras)


def refused(data: object, *, max_cameras: int = MAX_CAMERAS) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        parse_message(data, max_cameras=max_cameras)
    return info.value


def refused_frame(frame: str | bytes, *, max_bytes: int = MAX_BYTES) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        parse_frame(frame, max_bytes=max_bytes, max_cameras=MAX_CAMERAS)
    return info.value


def camera(camera_id: object = "cam1", status: object = "online", **fields: object) -> dict[str, Any]:
    return {"id": camera_id, "status": status, **fields}


def hello(cameras: list[Any] | None = None, **nvr: object) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "hello", "protocol": 1, "nvr": {"hostname": "nvr-1", **nvr}}
    if cameras is not None:
        frame["cameras"] = cameras
    return frame


def heartbeat(stats: object) -> dict[str, Any]:
    return {"type": "heartbeat", "stats": stats}


def alert(message: object = "Disk 2 failing", severity: object = "warning", **fields: object) -> dict[str, Any]:
    return {"type": "alert", "severity": severity, "message": message, **fields}


def invalid(data: object, *, mentions: str = "", max_cameras: int = MAX_CAMERAS) -> ProtocolError:
    """The frame is refused as invalid_message, and the reason names `mentions` (the field that is wrong)."""
    exc = refused(data, max_cameras=max_cameras)
    assert exc.code == "invalid_message", (exc.code, exc.message)
    assert mentions in exc.message, exc.message
    return exc


# -- valid messages ----------------------------------------------------------------------------------------------------


def test_hello_parses_to_dataclasses_with_normalised_values() -> None:
    frame = hello(
        [
            camera(" cam1 ", "online", name=" Gate\n", ip_address=" 10.0.0.11 "),
            camera(7, "offline", ip_address="2001:DB8::0:1"),
        ],
        hostname="  nvr-1\t",
        device_name=" Lisbon recorder ",
        region="South",
        site="Lisbon 1",
        model="NV-8000",
        firmware="4.2.1",
        ip_address="FE80:0:0::1",
    )
    assert parse(frame) == Hello(
        nvr=NvrInfo(
            hostname="nvr-1",
            device_name="Lisbon recorder",
            region="South",
            site="Lisbon 1",
            model="NV-8000",
            firmware="4.2.1",
            ip_address="fe80::1",
        ),
        cameras=(
            CameraInfo(id="cam1", name="Gate", ip_address="10.0.0.11", status="online"),
            CameraInfo(id="7", name="7", ip_address="2001:db8::1", status="offline"),
        ),
        protocol=PROTOCOL_VERSION,
    )


def test_hello_minimal_has_empty_optional_fields_and_no_cameras() -> None:
    assert parse(hello()) == Hello(nvr=NvrInfo(hostname="nvr-1"), cameras=())


@pytest.mark.parametrize("empty", [None, "", "   "])
def test_hello_null_or_blank_optional_text_becomes_empty(empty: str | None) -> None:
    parsed = parse(hello(**dict.fromkeys(NVR_TEXT_FIELDS, empty)))
    assert isinstance(parsed, Hello)
    assert parsed.nvr == NvrInfo(hostname="nvr-1")


@pytest.mark.parametrize("empty", [None, ""])
def test_ip_address_null_or_empty_means_none(empty: str | None) -> None:
    parsed = parse(hello([camera(ip_address=empty)], ip_address=empty))
    assert isinstance(parsed, Hello)
    assert parsed.nvr.ip_address == "" and parsed.cameras[0].ip_address == ""


@pytest.mark.parametrize("name", [None, "", "  "])
def test_camera_name_defaults_to_id(name: str | None) -> None:
    parsed = parse(hello([camera("cam-9", name=name)]))
    assert isinstance(parsed, Hello)
    assert parsed.cameras[0].name == "cam-9"


def test_hello_keeps_camera_order() -> None:
    ids = ["c", "a", "b", "1"]
    parsed = parse(hello([camera(i) for i in ids]))
    assert isinstance(parsed, Hello)
    assert [c.id for c in parsed.cameras] == ids


def test_heartbeat_without_stats_has_empty_stats() -> None:
    assert parse({"type": "heartbeat"}) == Heartbeat(stats={})
    assert parse(heartbeat(None)) == Heartbeat(stats={})
    assert parse(heartbeat({})) == Heartbeat(stats={})


def test_heartbeat_stats_keep_value_types() -> None:
    stats = {"raid": "healthy", "uptime_s": 86400, "disk_free_pct": 61.5, "recording": False, "bytes": 2**70, "": 0}
    parsed = parse(heartbeat(stats))
    assert parsed == Heartbeat(stats=stats)
    assert isinstance(parsed, Heartbeat)
    assert [type(v) for v in parsed.stats.values()] == [str, int, float, bool, int, int]


def test_heartbeat_stats_long_strings_are_truncated_not_refused() -> None:
    parsed = parse(heartbeat({"exact": "e" * MAX_TEXT, "long": "l" * (MAX_TEXT + 1)}))
    assert parsed == Heartbeat(stats={"exact": "e" * MAX_TEXT, "long": "l" * MAX_TEXT})


def test_camera_status_parses() -> None:
    assert parse({"type": "camera_status", "camera_id": " cam1 ", "status": "offline"}) == CameraStatus(
        camera_id="cam1", status="offline"
    )


@pytest.mark.parametrize(("raw", "normalised"), [(12, "12"), (0, "0"), (-3, "-3"), (10**63, "1" + "0" * 63)])
def test_camera_status_integer_camera_id_is_normalised_to_string(raw: int, normalised: str) -> None:
    assert parse({"type": "camera_status", "camera_id": raw, "status": "online"}) == CameraStatus(normalised, "online")


def test_cameras_parses_full_list() -> None:
    frame = {"type": "cameras", "cameras": [camera("cam1", "online", name="Dock"), camera(2, "offline")]}
    assert parse(frame) == Cameras(
        cameras=(
            CameraInfo(id="cam1", name="Dock", ip_address="", status="online"),
            CameraInfo(id="2", name="2", ip_address="", status="offline"),
        )
    )


def test_cameras_empty_list_parses() -> None:
    assert parse({"type": "cameras", "cameras": []}) == Cameras(cameras=())


def test_alert_parses_with_and_without_camera() -> None:
    assert parse(alert(" Disk 2 failing \n")) == Alert(severity="warning", message="Disk 2 failing", camera_id=None)
    assert parse(alert(camera_id=None)) == Alert("warning", "Disk 2 failing", None)
    assert parse(alert("Video loss", "critical", camera_id=" cam2 ")) == Alert("critical", "Video loss", "cam2")


@pytest.mark.parametrize(("raw", "normalised"), [(5, "5"), (0, "0")])
def test_alert_integer_camera_id_is_normalised_and_zero_is_not_absent(raw: int, normalised: str) -> None:
    parsed = parse(alert(camera_id=raw))
    assert isinstance(parsed, Alert)
    assert parsed.camera_id == normalised


@pytest.mark.parametrize("severity", sorted(SEVERITIES))
def test_alert_every_severity_is_accepted(severity: str) -> None:
    parsed = parse(alert(severity=severity))
    assert isinstance(parsed, Alert)
    assert parsed.severity == severity


@pytest.mark.parametrize("status", sorted(STATUSES))
def test_status_every_value_is_accepted(status: str) -> None:
    assert parse({"type": "camera_status", "camera_id": "c", "status": status}) == CameraStatus("c", status)  # type: ignore[arg-type]


def test_unknown_fields_are_ignored_everywhere() -> None:
    plain = hello([camera("cam1", name="Gate")], device_name="Recorder")
    extra = hello([camera("cam1", name="Gate", ptz=True, vendor={"x": [1]})], device_name="Recorder", serial="S-1")
    extra["agent_version"] = "2.0"
    assert parse(extra) == parse(plain)
    assert parse({"type": "heartbeat", "uptime": 5, "stats": {"a": 1}}) == Heartbeat(stats={"a": 1})
    assert parse({**alert(), "ack": True}) == parse(alert())
    assert parse({"type": "camera_status", "camera_id": "c", "status": "online", "ts": 1.5}) == CameraStatus(
        "c", "online"
    )


def test_parse_frame_decodes_text_and_bytes() -> None:
    text = json.dumps({"type": "camera_status", "camera_id": "cam1", "status": "online"})
    expected = CameraStatus("cam1", "online")
    assert parse_frame(text, max_bytes=MAX_BYTES, max_cameras=MAX_CAMERAS) == expected
    assert parse_frame(text.encode(), max_bytes=MAX_BYTES, max_cameras=MAX_CAMERAS) == expected


def test_parse_frame_duplicate_keys_last_one_wins() -> None:
    frame = '{"type": "camera_status", "camera_id": "a", "camera_id": "b", "status": "online"}'
    assert parse_frame(frame, max_bytes=MAX_BYTES, max_cameras=MAX_CAMERAS) == CameraStatus("b", "online")


def numbered(kind: str, seq: object) -> dict[str, Any]:
    frames: dict[str, dict[str, Any]] = {
        "heartbeat": {"type": "heartbeat"},
        "camera_status": {"type": "camera_status", "camera_id": "cam1", "status": "online"},
        "cameras": {"type": "cameras", "cameras": [camera("cam1")]},
        "alert": alert(),
        "health": {"type": "health"},
    }
    return {**frames[kind], "seq": seq}


def seq_of(parsed: Message) -> int:
    assert isinstance(parsed, Heartbeat | CameraStatus | Cameras | Alert | Health), parsed
    return parsed.seq


@pytest.mark.parametrize("kind", NUMBERED_TYPES)
def test_seq_absent_or_null_means_unnumbered(kind: str) -> None:
    frame = numbered(kind, None)
    assert seq_of(parse(frame)) == 0
    del frame["seq"]
    assert seq_of(parse(frame)) == 0


@pytest.mark.parametrize("kind", NUMBERED_TYPES)
@pytest.mark.parametrize("seq", [1, 1207, MAX_SEQ])
def test_seq_is_parsed_on_numbered_messages(kind: str, seq: int) -> None:
    parsed = parse(numbered(kind, seq))
    assert type(parsed).__name__.lower() == kind.replace("_", "")
    assert seq_of(parsed) == seq


def test_seq_leaves_other_fields_alone() -> None:
    assert parse(numbered("camera_status", 9)) == CameraStatus("cam1", "online", seq=9)
    assert parse({**heartbeat({"a": 1}), "seq": 3}) == Heartbeat(stats={"a": 1}, seq=3)
    assert parse(numbered("alert", 4)) == Alert("warning", "Disk 2 failing", None, seq=4)


@pytest.mark.parametrize("kind", NUMBERED_TYPES)
@pytest.mark.parametrize("seq", [0, -1, MAX_SEQ + 1, True, False, 1.0, 2.5, "1", [1], {"n": 1}], ids=repr)
def test_seq_out_of_range_or_not_integer_is_invalid(kind: str, seq: object) -> None:
    invalid(numbered(kind, seq), mentions="seq")


def test_hello_is_not_numbered() -> None:
    parsed = parse({**hello(), "seq": "not even a number"})
    assert isinstance(parsed, Hello) and not hasattr(parsed, "seq")


def test_hello_session_is_trimmed_and_defaults_to_empty() -> None:
    assert parse({**hello(), "session": "  2026-11-27T06:40:12Z-7f3a \n"}) == Hello(
        nvr=NvrInfo(hostname="nvr-1"), cameras=(), session="2026-11-27T06:40:12Z-7f3a"
    )
    for empty in (None, "", "   "):
        parsed = parse({**hello(), "session": empty})
        assert isinstance(parsed, Hello) and parsed.session == ""
    parsed = parse(hello())
    assert isinstance(parsed, Hello) and parsed.session == ""


def test_hello_session_length_limit() -> None:
    parsed = parse({**hello(), "session": "s" * MAX_SESSION})
    assert isinstance(parsed, Hello) and parsed.session == "s" * MAX_SESSION
    invalid({**hello(), "session": "s" * (MAX_SESSION + 1)}, mentions="session")


@pytest.mark.parametrize("session", [42, True, ["run-1"], {"id": "run-1"}, "run\x001", "run\x1b1"], ids=repr)
def test_hello_session_not_string_or_unprintable_is_invalid(session: object) -> None:
    invalid({**hello(), "session": session}, mentions="session")


# -- frames the hub refuses --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    ["", " ", "{", "{not json}", "{'type': 'heartbeat'}", '{"type": "heartbeat"} {}', '{"type": "heartbeat",}'],
)
def test_parse_frame_invalid_json_is_refused(frame: str) -> None:
    assert refused_frame(frame).code == "invalid_json"


@pytest.mark.parametrize("frame", [b'{"type": "\xff"}', b"\xff\xfe\xfd"])
def test_parse_frame_undecodable_bytes_are_invalid_json(frame: bytes) -> None:
    assert refused_frame(frame).code == "invalid_json"


@pytest.mark.parametrize("frame", ["[]", '"hello"', "1", "null", "true", '[{"type": "heartbeat"}]'])
def test_parse_frame_non_object_is_invalid_message(frame: str) -> None:
    exc = refused_frame(frame)
    assert exc.code == "invalid_message" and "object" in exc.message


@pytest.mark.parametrize("kind", [None, 1, True, ["hello"], {"t": "hello"}])
def test_type_not_string_is_invalid_message(kind: object) -> None:
    invalid({"type": kind}, mentions="type")


def test_type_missing_is_invalid_message() -> None:
    invalid({}, mentions="type")
    invalid({"kind": "heartbeat"}, mentions="type")


@pytest.mark.parametrize("kind", ["launch", "Hello", "HEARTBEAT", "welcome", "error", "", "camera-status"])
def test_type_unknown_string_is_unknown_type(kind: str) -> None:
    exc = refused({"type": kind})
    assert exc.code == "unknown_type"
    assert repr(kind) in exc.message


def test_type_unknown_is_echoed_at_most_40_characters() -> None:
    exc = refused({"type": "x" * 41})
    assert exc.code == "unknown_type"
    assert "x" * 40 in exc.message and "x" * 41 not in exc.message


@pytest.mark.parametrize("version", [0, 2, -1, "1", None, [1], {"v": 1}])
def test_hello_other_protocol_is_unsupported(version: object) -> None:
    assert refused({**hello(), "protocol": version}).code == "unsupported_protocol"


def test_hello_missing_protocol_is_unsupported() -> None:
    frame = hello()
    del frame["protocol"]
    assert refused(frame).code == "unsupported_protocol"


def test_hello_protocol_is_checked_before_other_fields() -> None:
    assert refused({"type": "hello", "protocol": 2}).code == "unsupported_protocol"
    assert refused({"type": "hello", "protocol": 2, "nvr": {"hostname": ""}, "cameras": "x"}).code == (
        "unsupported_protocol"
    )


@pytest.mark.parametrize("nvr", [None, "nvr-1", ["nvr-1"], 1])
def test_hello_nvr_not_object_is_invalid(nvr: object) -> None:
    invalid({"type": "hello", "protocol": 1, "nvr": nvr}, mentions="nvr")
    invalid({"type": "hello", "protocol": 1}, mentions="nvr")


@pytest.mark.parametrize("hostname", [None, "", "   ", "\t\n", 42, True, ["nvr-1"]])
def test_hello_hostname_missing_empty_or_not_string_is_invalid(hostname: object) -> None:
    invalid(hello(hostname=hostname), mentions="hostname")
    invalid({"type": "hello", "protocol": 1, "nvr": {"region": "North"}}, mentions="hostname")


@pytest.mark.parametrize("hostname", ["nvr 1", "nvr\u00a01", "nvr\u20031", "nvr\u30001"])
def test_hello_hostname_with_inner_whitespace_is_invalid(hostname: str) -> None:
    invalid(hello(hostname=hostname), mentions="hostname")


def test_hello_hostname_length_limit() -> None:
    parsed = parse(hello(hostname="h" * MAX_HOSTNAME))
    assert isinstance(parsed, Hello) and parsed.nvr.hostname == "h" * MAX_HOSTNAME
    invalid(hello(hostname="h" * (MAX_HOSTNAME + 1)), mentions="hostname")


def test_hello_hostname_limit_counts_after_trimming() -> None:
    parsed = parse(hello(hostname=f"  {'h' * MAX_HOSTNAME}  "))
    assert isinstance(parsed, Hello) and parsed.nvr.hostname == "h" * MAX_HOSTNAME


def test_hello_hostname_is_case_sensitive_and_not_a_dns_check() -> None:
    parsed = parse(hello(hostname="NVR_01/rack:2"))
    assert isinstance(parsed, Hello) and parsed.nvr.hostname == "NVR_01/rack:2"


@pytest.mark.parametrize("field", NVR_TEXT_FIELDS)
def test_hello_text_field_length_limit(field: str) -> None:
    parsed = parse(hello(**{field: "t" * MAX_TEXT}))
    assert isinstance(parsed, Hello) and getattr(parsed.nvr, field) == "t" * MAX_TEXT
    invalid(hello(**{field: "t" * (MAX_TEXT + 1)}), mentions=field)


@pytest.mark.parametrize("field", NVR_TEXT_FIELDS)
@pytest.mark.parametrize("value", [42, 1.5, True, ["x"], {"x": 1}])
def test_hello_text_field_not_string_is_invalid(field: str, value: object) -> None:
    invalid(hello(**{field: value}), mentions=field)


@pytest.mark.parametrize(
    "address", ["10.0.0.256", "nvr.local", "10.0.0", "010.0.0.1", "   ", "::g", "10.0.0.1/24", 167772162, True, ["x"]]
)
def test_ip_address_that_does_not_parse_is_invalid(address: object) -> None:
    invalid(hello(ip_address=address), mentions="nvr.ip_address")
    invalid(hello([camera("cam1"), camera("cam2", ip_address=address)]), mentions="cameras[1].ip_address")


@pytest.mark.parametrize(
    ("address", "normalised"),
    [(" 10.1.2.3 ", "10.1.2.3"), ("2001:DB8:0:0::1", "2001:db8::1"), ("fe80::1%eth0", "fe80::1%eth0")],
)
def test_ip_address_is_stored_normalised(address: str, normalised: str) -> None:
    parsed = parse(hello([camera(ip_address=address)], ip_address=address))
    assert isinstance(parsed, Hello)
    assert parsed.nvr.ip_address == normalised and parsed.cameras[0].ip_address == normalised


@pytest.mark.parametrize("cameras", [None, {}, "cam1", 3, {"cam1": "online"}])
def test_cameras_not_array_is_invalid(cameras: object) -> None:
    invalid({**hello(), "cameras": cameras}, mentions="cameras")
    invalid({"type": "cameras", "cameras": cameras}, mentions="cameras")


@pytest.mark.parametrize("item", ["cam1", 1, None, [], ["cam1", "online"]])
def test_cameras_item_not_object_is_invalid(item: object) -> None:
    invalid(hello([camera("cam1"), item]), mentions="cameras[1]")


@pytest.mark.parametrize("camera_id", [None, "", "   ", True, False, 1.5, 1.0, [1], {"id": 1}])
def test_camera_id_missing_empty_or_wrong_type_is_invalid(camera_id: object) -> None:
    invalid(hello([camera(camera_id)]), mentions="id")
    invalid(hello([{"status": "online"}]), mentions="id")
    invalid({"type": "camera_status", "camera_id": camera_id, "status": "online"}, mentions="camera_id")
    invalid({"type": "camera_status", "status": "online"}, mentions="camera_id")


def test_camera_id_length_limit() -> None:
    longest = "c" * MAX_CAMERA_ID
    assert parse({"type": "camera_status", "camera_id": longest, "status": "online"}) == CameraStatus(longest, "online")
    parsed = parse(hello([camera(longest)]))
    assert isinstance(parsed, Hello) and parsed.cameras[0].id == longest
    invalid({"type": "camera_status", "camera_id": longest + "c", "status": "online"}, mentions="camera_id")
    invalid(hello([camera(longest + "c")]), mentions="id")
    invalid(alert(camera_id=longest + "c"), mentions="camera_id")


def test_camera_id_limit_counts_after_trimming() -> None:
    longest = "c" * MAX_CAMERA_ID
    parsed = parse({"type": "camera_status", "camera_id": f" {longest} ", "status": "online"})
    assert parsed == CameraStatus(longest, "online")


def test_camera_id_integer_length_limit_applies_to_its_digits() -> None:
    largest = 10**MAX_CAMERA_ID - 1
    assert parse({"type": "camera_status", "camera_id": largest, "status": "online"}) == CameraStatus(
        str(largest), "online"
    )
    invalid({"type": "camera_status", "camera_id": largest + 1, "status": "online"}, mentions="camera_id")


@pytest.mark.parametrize("status", [None, "", "ONLINE", "Online", "up", "nvr_offline", 1, True])
def test_camera_status_value_outside_enum_is_invalid(status: object) -> None:
    invalid({"type": "camera_status", "camera_id": "cam1", "status": status}, mentions="status")
    invalid({"type": "camera_status", "camera_id": "cam1"}, mentions="status")
    invalid(hello([camera("cam1", status)]), mentions="status")
    invalid({"type": "cameras", "cameras": [{"id": "cam1"}]}, mentions="status")


def test_camera_name_length_limit() -> None:
    parsed = parse(hello([camera(name="n" * MAX_TEXT)]))
    assert isinstance(parsed, Hello) and parsed.cameras[0].name == "n" * MAX_TEXT
    invalid(hello([camera("cam1"), camera("cam2", name="n" * (MAX_TEXT + 1))]), mentions="cameras[1].name")


@pytest.mark.parametrize("name", [42, True, ["Gate"]])
def test_camera_name_not_string_is_invalid(name: object) -> None:
    invalid(hello([camera(name=name)]), mentions="cameras[0].name")


@pytest.mark.parametrize(
    "ids", [["cam1", "cam1"], [7, "7"], [" cam1", "cam1"], ["a", "b", "a"], [7, 7]], ids=lambda ids: repr(ids)
)
def test_cameras_duplicate_ids_are_invalid(ids: list[object]) -> None:
    exc = invalid(hello([camera(i) for i in ids]), mentions="twice")
    assert repr(str(ids[-1]).strip()) in exc.message
    invalid({"type": "cameras", "cameras": [camera(i) for i in ids]}, mentions="twice")


def test_cameras_ids_are_case_sensitive() -> None:
    parsed = parse(hello([camera("Cam1"), camera("cam1")]))
    assert isinstance(parsed, Hello) and [c.id for c in parsed.cameras] == ["Cam1", "cam1"]


@pytest.mark.parametrize("limit", [0, 1, MAX_CAMERAS])
def test_cameras_count_limit(limit: int) -> None:
    exactly = [camera(f"cam{i}") for i in range(limit)]
    parsed = parse(hello(exactly), max_cameras=limit)
    assert isinstance(parsed, Hello) and len(parsed.cameras) == limit
    assert parse({"type": "cameras", "cameras": exactly}, max_cameras=limit) == Cameras(cameras=parsed.cameras)
    one_more = [*exactly, camera("extra")]
    assert refused(hello(one_more), max_cameras=limit).code == "too_many_cameras"
    assert refused({"type": "cameras", "cameras": one_more}, max_cameras=limit).code == "too_many_cameras"


def test_cameras_count_is_checked_before_items() -> None:
    garbage: list[object] = [None] * (MAX_CAMERAS + 1)
    assert refused(hello(garbage)).code == "too_many_cameras"
    assert refused({"type": "cameras", "cameras": garbage}).code == "too_many_cameras"


@pytest.mark.parametrize("severity", [None, "", "WARNING", "Info", "fatal", "debug", 1, True])
def test_alert_severity_outside_enum_is_invalid(severity: object) -> None:
    invalid(alert(severity=severity), mentions="severity")
    invalid({"type": "alert", "message": "x"}, mentions="severity")


@pytest.mark.parametrize("message", [None, "", "   ", "\n", 42, ["x"]])
def test_alert_message_missing_empty_or_not_string_is_invalid(message: object) -> None:
    invalid(alert(message), mentions="message")
    invalid({"type": "alert", "severity": "info"}, mentions="message")


def test_alert_message_length_limit() -> None:
    assert parse(alert("m" * MAX_MESSAGE)) == Alert("warning", "m" * MAX_MESSAGE)
    assert parse(alert(f"  {'m' * MAX_MESSAGE}\n")) == Alert("warning", "m" * MAX_MESSAGE)
    invalid(alert("m" * (MAX_MESSAGE + 1)), mentions="message")


@pytest.mark.parametrize("camera_id", ["", "  ", True, 1.5, ["cam1"]])
def test_alert_camera_id_present_but_invalid_is_refused(camera_id: object) -> None:
    invalid(alert(camera_id=camera_id), mentions="camera_id")


@pytest.mark.parametrize("stats", [[], "uptime=1", 1, True, [["a", 1]]])
def test_heartbeat_stats_not_object_is_invalid(stats: object) -> None:
    invalid(heartbeat(stats), mentions="stats")


def test_heartbeat_stats_key_count_limit() -> None:
    most = {f"k{i}": i for i in range(MAX_STATS_KEYS)}
    assert parse(heartbeat(most)) == Heartbeat(stats=most)
    invalid(heartbeat({**most, "one_more": 1}), mentions="stats")


def test_heartbeat_stats_key_length_limit() -> None:
    assert parse(heartbeat({"k" * 64: 1})) == Heartbeat(stats={"k" * 64: 1})
    invalid(heartbeat({"k" * 65: 1}), mentions="stats")


@pytest.mark.parametrize("value", [None, [], [1, 2], {}, {"nested": 1}, math.nan], ids=repr)
def test_heartbeat_stats_value_not_scalar_or_nan_is_invalid(value: object) -> None:
    invalid(heartbeat({"ok": 1, "bad": value}), mentions="stats")


def test_heartbeat_stats_nan_literal_in_frame_is_invalid() -> None:
    exc = refused_frame('{"type": "heartbeat", "stats": {"temp": NaN}}')
    assert exc.code == "invalid_message" and "stats" in exc.message


def test_frame_size_limit_is_exact() -> None:
    base = json.dumps({"type": "heartbeat", "stats": {"pad": ""}})
    limit = len(base) + 10
    frame = json.dumps({"type": "heartbeat", "stats": {"pad": "p" * 10}})
    assert len(frame) == limit
    assert parse_frame(frame, max_bytes=limit, max_cameras=MAX_CAMERAS) == Heartbeat(stats={"pad": "p" * 10})
    assert parse_frame(frame.encode(), max_bytes=limit, max_cameras=MAX_CAMERAS) == Heartbeat(stats={"pad": "p" * 10})
    exc = refused_frame(frame, max_bytes=limit - 1)
    assert exc.code == "frame_too_large" and str(limit - 1) in exc.message
    assert refused_frame(frame.encode(), max_bytes=limit - 1).code == "frame_too_large"


def test_frame_size_is_checked_before_json() -> None:
    assert refused_frame("{" * 101, max_bytes=100).code == "frame_too_large"


# -- control characters and trimming -----------------------------------------------------------------------------------


def _with_text(where: str, value: str) -> dict[str, Any]:
    frames: dict[str, dict[str, Any]] = {
        "nvr.hostname": hello(hostname=value),
        "nvr.device_name": hello(device_name=value),
        "nvr.firmware": hello(firmware=value),
        "cameras[0].name": hello([camera(name=value)]),
        "cameras[0].id": hello([camera(value)]),
        "camera_status.camera_id": {"type": "camera_status", "camera_id": value, "status": "online"},
        "alert.message": alert(value),
        "alert.camera_id": alert(camera_id=value),
    }
    return frames[where]


TEXT_PLACES = (
    "nvr.hostname",
    "nvr.device_name",
    "nvr.firmware",
    "cameras[0].name",
    "cameras[0].id",
    "camera_status.camera_id",
    "alert.message",
    "alert.camera_id",
)


@pytest.mark.parametrize("char", CONTROL_CHARS, ids=repr)
@pytest.mark.parametrize("where", TEXT_PLACES)
def test_control_characters_inside_text_are_invalid(where: str, char: str) -> None:
    exc = refused(_with_text(where, f"ab{char}cd"))
    assert exc.code == "invalid_message"
    assert where.rsplit(".", 1)[-1] in exc.message


def _texts(parsed: Message) -> list[str | None]:
    if isinstance(parsed, Hello):
        nvr = parsed.nvr
        return [nvr.hostname, nvr.device_name, nvr.firmware, *(c.name for c in parsed.cameras)]
    if isinstance(parsed, CameraStatus):
        return [parsed.camera_id]
    assert isinstance(parsed, Alert)
    return [parsed.message, parsed.camera_id]


@pytest.mark.parametrize("where", TEXT_PLACES)
def test_text_is_trimmed_and_printable_characters_pass(where: str) -> None:
    texts = _texts(parse(_with_text(where, "\t ab-CD_é.ü~ \n")))
    assert "ab-CD_é.ü~" in texts, texts
    assert not any(t and t != t.strip() for t in texts), texts


def test_text_space_inside_is_allowed_except_hostname() -> None:
    parsed = parse(hello([camera("cam 1", name="Front gate")], device_name="Main recorder"))
    assert isinstance(parsed, Hello)
    assert (parsed.nvr.device_name, parsed.cameras[0].id, parsed.cameras[0].name) == (
        "Main recorder",
        "cam 1",
        "Front gate",
    )


# -- frames the hub sends ----------------------------------------------------------------------------------------------


def test_welcome_frame_shape() -> None:
    assert json.loads(protocol.welcome_frame(42, 10.0, 1205)) == {
        "type": "welcome",
        "protocol": PROTOCOL_VERSION,
        "nvr_id": 42,
        "heartbeat_interval": 10.0,
        "last_seq": 1205,
    }
    assert json.loads(protocol.welcome_frame(1, 2.5))["last_seq"] == 0


def test_ack_frame_shape() -> None:
    assert json.loads(protocol.ack_frame(1207)) == {"type": "ack", "seq": 1207}


@pytest.mark.parametrize("code", get_args(ErrorCode))
def test_error_frame_shape(code: ErrorCode) -> None:
    assert json.loads(protocol.error_frame(code, "why")) == {"type": "error", "code": code, "message": "why"}


def test_protocol_error_frame_carries_code_and_message() -> None:
    exc = refused({"type": "launch"})
    assert json.loads(exc.frame()) == {"type": "error", "code": "unknown_type", "message": exc.message}
    assert str(exc) == exc.message


# -- docs stay honest --------------------------------------------------------------------------------------------------


def load_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((DOCS / "protocol.schema.json").read_text(encoding="utf-8"))
    return schema


def doc_text() -> str:
    return (DOCS / "protocol.md").read_text(encoding="utf-8")


def doc_examples() -> list[dict[str, Any]]:
    blocks = re.findall(r"^```json\n(.*?)^```$", doc_text(), flags=re.DOTALL | re.MULTILINE)
    examples = [json.loads(block) for block in blocks]
    assert examples, "docs/protocol.md has no ```json examples"
    return examples


def _resolve(root: dict[str, Any], ref: str) -> dict[str, Any]:
    assert ref.startswith("#/"), ref
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part]
    return dict(node)


_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}
_ANNOTATIONS = {"$schema", "$id", "$comment", "title", "description", "format", "$defs"}


def _same(a: object, b: object) -> bool:
    """JSON equality: true is not 1."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def schema_valid(value: object, schema: dict[str, Any], root: dict[str, Any]) -> bool:
    """A small JSON Schema 2020-12 validator for the keywords docs/protocol.schema.json uses; others fail loudly."""
    for key, rule in schema.items():
        if key in _ANNOTATIONS:
            continue
        if key == "$ref":
            ok = schema_valid(value, _resolve(root, rule), root)
        elif key == "type":
            ok = any(_TYPES[t](value) for t in ([rule] if isinstance(rule, str) else rule))
        elif key == "const":
            ok = _same(value, rule)
        elif key == "enum":
            ok = any(_same(value, option) for option in rule)
        elif key in ("oneOf", "anyOf"):
            matches = sum(schema_valid(value, sub, root) for sub in rule)
            ok = matches == 1 if key == "oneOf" else matches >= 1
        elif key in ("required", "properties", "additionalProperties", "propertyNames", "maxProperties"):
            ok = not isinstance(value, dict) or _object_valid(key, rule, value, schema, root)
        elif key == "items":
            ok = not isinstance(value, list) or all(schema_valid(item, rule, root) for item in value)
        elif key in ("minLength", "maxLength", "pattern"):
            ok = not isinstance(value, str) or (
                len(value) >= rule
                if key == "minLength"
                else len(value) <= rule
                if key == "maxLength"
                else re.search(rule, value) is not None
            )
        elif key == "maxItems":
            ok = not isinstance(value, list) or len(value) <= rule
        elif key in ("minimum", "maximum"):
            ok = not _TYPES["number"](value) or (value >= rule if key == "minimum" else value <= rule)
        else:
            raise AssertionError(f"schema keyword {key!r} is not supported by this test's validator")
        if not ok:
            return False
    return True


def _object_valid(key: str, rule: Any, value: dict[str, Any], schema: dict[str, Any], root: dict[str, Any]) -> bool:
    if key == "required":
        return all(name in value for name in rule)
    if key == "properties":
        return all(schema_valid(value[name], sub, root) for name, sub in rule.items() if name in value)
    if key == "additionalProperties":
        known = schema.get("properties", {})
        extra = [v for k, v in value.items() if k not in known]
        return rule is True or (rule is not False and all(schema_valid(v, rule, root) for v in extra)) or not extra
    if key == "propertyNames":
        return all(schema_valid(name, rule, root) for name in value)
    return len(value) <= rule  # maxProperties


def agent_frame_valid(frame: object) -> bool:
    schema = load_schema()
    return schema_valid(frame, schema, schema)


def test_schema_validator_self_check() -> None:
    assert agent_frame_valid({"type": "camera_status", "camera_id": "c", "status": "online"})
    assert not agent_frame_valid({"type": "camera_status", "camera_id": "c", "status": "up"})
    assert not agent_frame_valid({"type": "camera_status", "camera_id": True, "status": "online"})
    assert not agent_frame_valid({"type": "hello", "protocol": True, "nvr": {"hostname": "h"}})
    with pytest.raises(AssertionError, match="not supported"):
        schema_valid("x", {"multipleOf": 2}, {})


def test_schema_defines_every_message_with_matching_type() -> None:
    defs = load_schema()["$defs"]
    for kind in (*AGENT_TYPES, *HUB_TYPES):
        assert defs[kind]["type"] == "object"
        assert defs[kind]["properties"]["type"] == {"const": kind}
        assert "type" in defs[kind]["required"]


def test_schema_top_level_one_of_is_exactly_the_agent_messages() -> None:
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert [ref["$ref"] for ref in schema["oneOf"]] == [f"#/$defs/{kind}" for kind in AGENT_TYPES]
    assert [ref["$ref"] for ref in schema["$defs"]["hub_message"]["oneOf"]] == [f"#/$defs/{k}" for k in HUB_TYPES]


def test_schema_limits_match_parser_constants() -> None:
    defs = load_schema()["$defs"]
    assert defs["nvr"]["properties"]["hostname"]["maxLength"] == MAX_HOSTNAME
    assert defs["text"]["maxLength"] == MAX_TEXT
    for field in (*NVR_TEXT_FIELDS, "ip_address"):
        assert field in defs["nvr"]["properties"]
    for field in NVR_TEXT_FIELDS:
        assert defs["nvr"]["properties"][field] == {"$ref": "#/$defs/text"}
    assert defs["camera"]["properties"]["name"]["$ref"] == "#/$defs/text"
    assert defs["camera_id"]["anyOf"][0]["maxLength"] == MAX_CAMERA_ID
    assert defs["camera_id"]["anyOf"][1] == {"type": "integer"}
    assert defs["alert"]["properties"]["message"]["maxLength"] == MAX_MESSAGE
    assert defs["heartbeat"]["properties"]["stats"]["maxProperties"] == MAX_STATS_KEYS
    assert defs["hello"]["properties"]["protocol"]["const"] == PROTOCOL_VERSION
    assert defs["welcome"]["properties"]["protocol"]["const"] == PROTOCOL_VERSION
    assert defs["hello"]["properties"]["session"]["maxLength"] == MAX_SESSION
    assert defs["seq"]["anyOf"][0] == {"type": "integer", "minimum": 1, "maximum": MAX_SEQ}
    assert defs["ack"]["properties"]["seq"] == {"type": "integer", "minimum": 1, "maximum": MAX_SEQ}
    for kind in NUMBERED_TYPES:
        assert defs[kind]["properties"]["seq"] == {"$ref": "#/$defs/seq"}


def test_schema_stats_key_limit_matches_parser_behaviour() -> None:
    limit = load_schema()["$defs"]["heartbeat"]["properties"]["stats"]["propertyNames"]["maxLength"]
    assert parse(heartbeat({"k" * limit: 1})) == Heartbeat(stats={"k" * limit: 1})
    invalid(heartbeat({"k" * (limit + 1): 1}), mentions="stats")


def test_schema_enums_match_parser_constants() -> None:
    defs = load_schema()["$defs"]
    assert sorted(defs["status"]["enum"]) == sorted(STATUSES)
    assert sorted(defs["alert"]["properties"]["severity"]["enum"]) == sorted(SEVERITIES)
    assert defs["error"]["properties"]["code"]["enum"] == list(get_args(ErrorCode))


def test_schema_never_forbids_unknown_fields() -> None:
    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            assert node.get("additionalProperties") is not False, (
                f"{path} forbids extra fields; the parser ignores them"
            )
            assert "unevaluatedProperties" not in node, path
            for key, sub in node.items():
                walk(sub, f"{path}/{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{path}/{i}")

    schema = load_schema()
    walk(schema, "#")
    for kind in (*AGENT_TYPES, *HUB_TYPES):
        assert schema["$defs"][kind]["additionalProperties"] is True


ACCEPTED_FRAMES: list[dict[str, Any]] = [
    hello(),
    hello([camera("cam1", name=None, ip_address=None), camera(7, "offline", ip_address="")], ip_address=None),
    hello([camera("c" * MAX_CAMERA_ID, name="n" * MAX_TEXT, ip_address="fd00::1")], hostname="h" * MAX_HOSTNAME),
    hello(**dict.fromkeys(NVR_TEXT_FIELDS, "t" * MAX_TEXT), ip_address="10.0.0.1", serial="extra"),
    {"type": "heartbeat"},
    heartbeat(None),
    heartbeat({f"k{i}": i for i in range(MAX_STATS_KEYS)}),
    heartbeat({"k" * 64: "v" * 500, "f": 1.5, "b": True}),
    {"type": "camera_status", "camera_id": 10**63, "status": "offline"},
    {"type": "cameras", "cameras": [camera("a"), camera("b", "offline")]},
    {"type": "cameras", "cameras": []},
    alert("m" * MAX_MESSAGE, "info"),
    alert(camera_id=None),
    alert(camera_id=0),
    {**hello(), "session": "s" * MAX_SESSION},
    {**hello(), "session": None},
    numbered("heartbeat", MAX_SEQ),
    numbered("camera_status", 1),
    numbered("cameras", None),
    numbered("alert", 42),
    {"type": "camera_status", "camera_id": "c", "status": "offline", "reason": "r" * 200, "detail": None},
    {"type": "camera_status", "camera_id": "c", "status": "online", "detail": {"codec": "H265", "fps": 0, "width": 7}},
    hello([camera(reason=None, detail={"nominal_fps": 1000, "bitrate_kbps": 1e7, "height": 65535})]),
    {"type": "health", "nvr": None, "cameras": None},
    {"type": "health", "nvr": {"disks": [{"id": f"d{i}", "state": None} for i in range(64)]}},
    {"type": "health", "nvr": {"clock_skew_s": -1.7e9, "temperature_c": -100, "uptime_s": 0}},
    {"type": "health", "cameras": [{"camera_id": 5, "recording": "not_recording", "serial": "s" * MAX_TEXT}]},
    {"type": "health", "nvr": {"disks": [{"id": "d", "capacity_bytes": MAX_SEQ, "used_bytes": 0, "state": "failed"}]}},
]

REFUSED_FRAMES: list[dict[str, Any]] = [
    {"type": "launch"},
    {"status": "online"},
    {**hello(), "protocol": 2},
    {**hello(), "protocol": "1"},
    {"type": "hello", "protocol": 1},
    hello(hostname=""),
    hello(hostname="h" * (MAX_HOSTNAME + 1)),
    hello(hostname="nvr 1"),
    hello(hostname="nvr\x001"),
    hello(device_name="t" * (MAX_TEXT + 1)),
    hello(region=5),
    hello(site="a\x1bb"),
    hello(ip_address=167772162),
    hello([camera("c" * (MAX_CAMERA_ID + 1))]),
    hello([camera("")]),
    hello([camera(True)]),
    hello([camera(1.5)]),
    hello([camera("cam1", "up")]),
    hello([{"id": "cam1"}]),
    hello([camera(name="n" * (MAX_TEXT + 1))]),
    hello(["cam1"]),
    {"type": "cameras", "cameras": None},
    heartbeat([]),
    heartbeat({f"k{i}": i for i in range(MAX_STATS_KEYS + 1)}),
    heartbeat({"k" * 65: 1}),
    heartbeat({"nested": {"a": 1}}),
    heartbeat({"none": None}),
    {"type": "camera_status", "camera_id": "cam1"},
    {"type": "camera_status", "camera_id": "cam1", "status": "ONLINE"},
    {"type": "camera_status", "camera_id": [], "status": "online"},
    alert(severity="fatal"),
    alert(""),
    alert("m" * (MAX_MESSAGE + 1)),
    alert("a\nb"),
    alert(camera_id=""),
    {"type": "alert", "severity": "info"},
    {**hello(), "session": "s" * (MAX_SESSION + 1)},
    {**hello(), "session": 7},
    numbered("heartbeat", 0),
    numbered("camera_status", MAX_SEQ + 1),
    numbered("cameras", True),
    numbered("alert", 1.5),
    numbered("alert", "1"),
    {"type": "camera_status", "camera_id": "c", "status": "offline", "reason": "r" * 201},
    {"type": "camera_status", "camera_id": "c", "status": "offline", "reason": "line\nbreak"},
    {"type": "camera_status", "camera_id": "c", "status": "offline", "reason": 401},
    {"type": "camera_status", "camera_id": "c", "status": "online", "detail": "H264"},
    {"type": "camera_status", "camera_id": "c", "status": "online", "detail": {"fps": -1}},
    {"type": "camera_status", "camera_id": "c", "status": "online", "detail": {"fps": 1001}},
    {"type": "camera_status", "camera_id": "c", "status": "online", "detail": {"width": "1920"}},
    {"type": "camera_status", "camera_id": "c", "status": "online", "detail": {"codec": "c" * 33}},
    hello([camera(detail={"height": 65536})]),
    hello([camera("cam1", "offline", reason=["x"])]),
    {"type": "health", "nvr": []},
    {"type": "health", "nvr": {"disks": [{"id": f"d{i}"} for i in range(65)]}},
    {"type": "health", "nvr": {"disks": [{"capacity_bytes": 1}]}},
    {"type": "health", "nvr": {"disks": [{"id": "d", "state": "broken"}]}},
    {"type": "health", "nvr": {"disks": [{"id": "d", "used_bytes": -1}]}},
    {"type": "health", "nvr": {"disks": "disk1"}},
    {"type": "health", "nvr": {"temperature_c": 201}},
    {"type": "health", "nvr": {"uptime_s": True}},
    {"type": "health", "nvr": {"clock_skew_s": "93"}},
    {"type": "health", "cameras": {"cam1": {}}},
    {"type": "health", "cameras": [{"recording": "recording"}]},
    {"type": "health", "cameras": [{"camera_id": "c", "recording": "yes"}]},
    {"type": "health", "cameras": [{"camera_id": "c", "oldest_recording": -5}]},
    {"type": "health", "cameras": [{"camera_id": "c", "model": "m" * (MAX_TEXT + 1)}]},
]


@pytest.mark.parametrize("frame", ACCEPTED_FRAMES, ids=lambda f: f["type"])
def test_schema_accepts_what_the_parser_accepts(frame: dict[str, Any]) -> None:
    parse(frame)
    assert agent_frame_valid(frame), frame


@pytest.mark.parametrize("frame", REFUSED_FRAMES, ids=lambda f: str(f.get("type")))
def test_schema_refuses_what_the_parser_refuses(frame: dict[str, Any]) -> None:
    refused(frame)
    assert not agent_frame_valid(frame), frame


def test_docs_every_json_example_is_a_protocol_message() -> None:
    kinds = [example.get("type") for example in doc_examples()]
    assert set(kinds) <= {*AGENT_TYPES, *HUB_TYPES}, kinds
    assert set(kinds) == {*AGENT_TYPES, *HUB_TYPES}, "every message needs an example"


def test_docs_agent_examples_parse_and_match_the_schema() -> None:
    checked = 0
    for example in doc_examples():
        if example["type"] in AGENT_TYPES:
            parsed = parse(example, max_cameras=Settings().max_cameras_per_nvr)
            assert type(parsed).__name__.lower() == example["type"].replace("_", ""), example
            assert agent_frame_valid(example), example
            checked += 1
    assert checked >= len(AGENT_TYPES)


def test_docs_hub_examples_are_what_the_hub_sends() -> None:
    schema = load_schema()
    for example in doc_examples():
        if example["type"] == "welcome":
            token = example.get("agent_token", "")
            frame = protocol.welcome_frame(example["nvr_id"], example["heartbeat_interval"], example["last_seq"], token)
            assert example == json.loads(frame)
        elif example["type"] == "ack":
            assert example == json.loads(protocol.ack_frame(example["seq"]))
        elif example["type"] == "error":
            assert example["code"] in get_args(ErrorCode)
            assert example == json.loads(protocol.error_frame(example["code"], example["message"]))
        else:
            continue
        assert schema_valid(example, schema["$defs"]["hub_message"], schema), example


def test_docs_list_every_error_code_and_close_code() -> None:
    text = doc_text()
    table = text.split("## Error codes", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([a-z_]+)` \|", table, flags=re.MULTILINE))
    assert listed == set(get_args(ErrorCode))
    for close in ("1002", "1008", "1009", "1012", "1013", "4000", "4001", "403"):
        assert f"| {close}" in table or f"HTTP {close}" in table, close


def test_docs_limits_table_matches_code() -> None:
    settings = Settings()
    expected: dict[str, float] = {
        "max_frame_bytes": settings.max_frame_bytes,
        "max_cameras_per_nvr": settings.max_cameras_per_nvr,
        "heartbeat_interval": settings.heartbeat_interval,
        "stale_after": settings.stale_after,
        "heartbeat_timeout": settings.heartbeat_timeout,
        "startup_grace": settings.startup_grace,
        "agent_rate": settings.agent_rate,
        "agent_burst": settings.agent_burst,
        "max_agent_connections": settings.max_agent_connections,
        "HELLO_TIMEOUT": agents.HELLO_TIMEOUT,
        "MAX_HOSTNAME": MAX_HOSTNAME,
        "MAX_TEXT": MAX_TEXT,
        "MAX_CAMERA_ID": MAX_CAMERA_ID,
        "MAX_MESSAGE": MAX_MESSAGE,
        "MAX_STATS_KEYS": MAX_STATS_KEYS,
        "MAX_SESSION": MAX_SESSION,
        "MAX_SEQ": MAX_SEQ,
        "MAX_REASON": protocol.MAX_REASON,
        "MAX_CODEC": protocol.MAX_CODEC,
        "MAX_DISKS": protocol.MAX_DISKS,
        "MAX_DISK_ID": protocol.MAX_DISK_ID,
        "MAX_FPS": protocol.MAX_FPS,
        "MAX_PIXELS": protocol.MAX_PIXELS,
        "MAX_BITRATE_KBPS": protocol.MAX_BITRATE_KBPS,
        "MAX_SECONDS": protocol.MAX_SECONDS,
        "MAX_BYTES": protocol.MAX_BYTES,
    }
    section = doc_text().split("## Limits at a glance", 1)[1].split("\n## ", 1)[0]
    found: dict[str, float] = {}
    for row in re.findall(r"^\|.*\|$", section, flags=re.MULTILINE):
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        name = re.fullmatch(r"`(\w+)`", cells[1])
        if name is None:
            continue
        value = re.match(r"[\d.]+", cells[2])
        assert value is not None, row
        found[name[1]] = float(value[0])
        if hasattr(settings, name[1]):
            assert cells[3] == f"`NVRMON_{name[1].upper()}`", row
    assert found == expected


# -- hostile input found while reviewing the parser -------------------------------------------------------------------


def test_parse_frame_deep_nesting_is_invalid_json_not_a_crash() -> None:
    assert refused_frame("[" * 100_000).code == "invalid_json"


@pytest.mark.parametrize("text", ["h\ud800", "nvr\udfff"])
def test_lone_surrogates_are_refused_before_they_reach_the_store(text: str) -> None:
    assert refused(hello(hostname=text)).code == "invalid_message"
    assert refused({"type": "camera_status", "camera_id": text, "status": "online"}).code == "invalid_message"
    assert refused(heartbeat({"k": text})).code == "invalid_message"


@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_heartbeat_stats_infinity_is_invalid(value: float) -> None:
    assert refused(heartbeat({"x": value})).code == "invalid_message"
    assert refused_frame('{"type": "heartbeat", "stats": {"x": Infinity}}').code == "invalid_message"


@pytest.mark.parametrize("version", [True, 1.0])
def test_hello_protocol_must_be_the_integer_one(version: object) -> None:
    assert refused({**hello(), "protocol": version}).code == "unsupported_protocol"


@pytest.mark.parametrize("char", ["\x7f", "\x9b", "\x85"])
def test_del_and_c1_controls_are_refused(char: str) -> None:
    assert refused(hello(device_name=f"dev{char}ice")).code == "invalid_message"


def test_frame_limit_counts_utf8_bytes_not_characters() -> None:
    frame = json.dumps({"type": "alert", "severity": "info", "message": "€" * 400}, ensure_ascii=False)
    assert len(frame) < 1000 < len(frame.encode())
    assert refused_frame(frame, max_bytes=1000).code == "frame_too_large"
    assert isinstance(parse_frame(frame, max_bytes=len(frame.encode()), max_cameras=MAX_CAMERAS), Alert)


def test_cameras_message_without_list_is_refused_not_an_empty_replace() -> None:
    assert refused({"type": "cameras"}).code == "invalid_message"
    assert parse({"type": "cameras", "cameras": []}) == Cameras(cameras=())


def test_stats_key_with_control_characters_is_refused() -> None:
    assert refused(heartbeat({"bad\x00key": 1})).code == "invalid_message"


@pytest.mark.parametrize("value", [{"a": 1}, ["online"], [], {}])
def test_unhashable_enum_values_are_invalid_not_a_crash(value: object) -> None:
    # Found by tests/test_fuzz.py: `value in frozenset` raises TypeError for lists and objects.
    assert refused({"type": "alert", "severity": value, "message": "m"}).code == "invalid_message"
    assert refused({"type": "camera_status", "camera_id": "c", "status": value}).code == "invalid_message"
    assert refused(hello(cameras=[{"id": "c", "status": value}])).code == "invalid_message"


# -- device truth: camera reasons and detail, the health message -------------------------------------------------------


def test_camera_status_reason_and_detail_parse() -> None:
    frame = {
        "type": "camera_status",
        "camera_id": "cam1",
        "status": "offline",
        "reason": "  rtsp 401 unauthorized ",
        "detail": {
            "codec": "H264",
            "width": 1920.0,
            "height": 1080,
            "fps": 24.8,
            "nominal_fps": 25,
            "bitrate_kbps": 4000,
        },
    }
    assert parse(frame) == CameraStatus(
        "cam1", "offline", reason="rtsp 401 unauthorized", detail=StreamDetail("H264", 1920, 1080, 24.8, 25.0, 4000.0)
    )


def test_camera_status_reason_is_dropped_while_online() -> None:
    parsed = parse({"type": "camera_status", "camera_id": "cam1", "status": "online", "reason": "was 401"})
    assert parsed == CameraStatus("cam1", "online")


def test_camera_lists_carry_reason_and_detail() -> None:
    parsed = parse(hello([camera("a", "offline", reason="connection refused"), camera("b", detail={"fps": 12.5})]))
    assert isinstance(parsed, Hello)
    assert [(c.reason, c.detail) for c in parsed.cameras] == [
        ("connection refused", StreamDetail()),
        ("", StreamDetail(fps=12.5)),
    ]


@pytest.mark.parametrize(
    ("detail", "mentions"),
    [
        ({"width": 1920.5}, "detail.width"),
        ({"fps": math.nan}, "detail.fps"),
        ({"nominal_fps": True}, "detail.nominal_fps"),
        ({"bitrate_kbps": 1e7 + 1}, "detail.bitrate_kbps"),
        ({"codec": "H\x00264"}, "detail.codec"),
        ([], "detail"),
    ],
    ids=repr,
)
def test_camera_status_bad_detail_is_invalid_and_names_the_field(detail: object, mentions: str) -> None:
    invalid({"type": "camera_status", "camera_id": "c", "status": "online", "detail": detail}, mentions=mentions)


def test_health_parses_the_contract_example() -> None:
    frame = {
        "type": "health",
        "seq": 12,
        "nvr": {
            "uptime_s": 86400,
            "temperature_c": 41.5,
            "clock_skew_s": 0.4,
            "oldest_recording": 1764000000.0,
            "disks": [{"id": "disk1", "capacity_bytes": 4000000000000, "used_bytes": 3100000000000, "state": "ok"}],
        },
        "cameras": [
            {"camera_id": "cam1", "recording": "recording", "recording_since": 1764500000.0, "clock_skew_s": 0.2,
             "oldest_recording": 1764000000.0, "fps": 24.8, "nominal_fps": 25, "codec": "H264", "width": 1920,
             "height": 1080, "bitrate_kbps": 4000, "model": "DS-2CD2143G2", "firmware": "V5.7.3", "serial": "ABC123"}
        ],
    }  # fmt: skip
    assert parse(frame) == Health(
        nvr=NvrHealth(86400.0, 41.5, 0.4, 1764000000.0, (Disk("disk1", 4000000000000, 3100000000000, "ok"),)),
        cameras=(
            CameraHealth(
                "cam1", "recording", 1764500000.0, 0.2, 1764000000.0,
                StreamDetail("H264", 1920, 1080, 24.8, 25.0, 4000.0), "DS-2CD2143G2", "V5.7.3", "ABC123",
            ),
        ),
        seq=12,
    )  # fmt: skip


def test_health_minimal_is_all_unknown() -> None:
    assert parse({"type": "health"}) == Health()
    parsed = parse({"type": "health", "nvr": {"disks": [{"id": "d1"}]}, "cameras": [{"camera_id": 3}]})
    assert parsed == Health(NvrHealth(disks=(Disk("d1"),)), (CameraHealth("3"),))


def test_health_disk_bytes_are_exact_integers_up_to_the_limit() -> None:
    parsed = parse({"type": "health", "nvr": {"disks": [{"id": "d", "capacity_bytes": MAX_SEQ, "used_bytes": 1.0}]}})
    assert isinstance(parsed, Health)
    assert parsed.nvr.disks == (Disk("d", MAX_SEQ, 1),)
    invalid({"type": "health", "nvr": {"disks": [{"id": "d", "capacity_bytes": MAX_SEQ + 1}]}}, mentions="capacity")


def test_health_disk_and_camera_ids_must_be_unique() -> None:
    invalid({"type": "health", "nvr": {"disks": [{"id": "d1"}, {"id": " d1 "}]}}, mentions="d1")
    invalid({"type": "health", "cameras": [{"camera_id": 7}, {"camera_id": "7"}]}, mentions="7")


def test_health_limits_disks_and_cameras() -> None:
    disks = [{"id": f"d{i}"} for i in range(protocol.MAX_DISKS)]
    assert isinstance(parse({"type": "health", "nvr": {"disks": disks}}), Health)
    invalid({"type": "health", "nvr": {"disks": [*disks, {"id": "one more"}]}}, mentions="disks")
    cameras = [{"camera_id": i} for i in range(MAX_CAMERAS + 1)]
    assert refused({"type": "health", "cameras": cameras}).code == "too_many_cameras"


@pytest.mark.parametrize(
    ("nvr", "mentions"),
    [
        ({"uptime_s": -1}, "nvr.uptime_s"),
        ({"clock_skew_s": 1e11}, "nvr.clock_skew_s"),
        ({"clock_skew_s": math.inf}, "nvr.clock_skew_s"),
        ({"temperature_c": -101}, "nvr.temperature_c"),
        ({"oldest_recording": "yesterday"}, "nvr.oldest_recording"),
        ({"disks": [{"id": "d", "state": "FAILED"}]}, "nvr.disks[0].state"),
        ({"disks": [{"id": ""}]}, "nvr.disks[0].id"),
        ({"disks": ["disk1"]}, "nvr.disks[0]"),
    ],
    ids=repr,
)
def test_health_bad_nvr_facts_are_invalid_and_name_the_field(nvr: object, mentions: str) -> None:
    invalid({"type": "health", "nvr": nvr}, mentions=mentions)


@pytest.mark.parametrize(
    ("item", "mentions"),
    [
        ({"camera_id": "c", "recording": "paused"}, "cameras[0].recording"),
        ({"camera_id": "c", "recording_since": 1e10 + 1}, "cameras[0].recording_since"),
        ({"camera_id": "c", "fps": "25"}, "cameras[0].fps"),
        ({"camera_id": "c", "serial": "a\u202eb"}, "cameras[0].serial"),
        ({"camera_id": ""}, "cameras[0].camera_id"),
        ("cam1", "cameras[0]"),
    ],
    ids=repr,
)
def test_health_bad_camera_facts_are_invalid_and_name_the_field(item: object, mentions: str) -> None:
    invalid({"type": "health", "cameras": [item]}, mentions=mentions)


def test_schema_limits_of_the_device_facts_match_parser_constants() -> None:
    defs = load_schema()["$defs"]
    assert defs["reason"]["maxLength"] == protocol.MAX_REASON
    assert defs["detail"]["properties"]["codec"]["maxLength"] == protocol.MAX_CODEC
    assert defs["detail"]["properties"]["fps"]["anyOf"][0]["maximum"] == protocol.MAX_FPS
    assert defs["detail"]["properties"]["width"]["anyOf"][0]["maximum"] == protocol.MAX_PIXELS
    assert defs["detail"]["properties"]["bitrate_kbps"]["anyOf"][0]["maximum"] == protocol.MAX_BITRATE_KBPS
    assert defs["health_nvr"]["properties"]["disks"]["maxItems"] == protocol.MAX_DISKS
    assert defs["disk"]["properties"]["id"]["maxLength"] == protocol.MAX_DISK_ID
    assert defs["disk"]["properties"]["capacity_bytes"]["anyOf"][0]["maximum"] == protocol.MAX_BYTES
    assert set(defs["disk"]["properties"]["state"]["anyOf"][0]["enum"]) == protocol.DISK_STATES
    assert defs["camera_health"]["properties"]["recording"]["anyOf"][0]["enum"] == [
        "recording",
        "not_recording",
        "unknown",
    ]
    assert set(defs["camera_health"]["properties"]["recording"]["anyOf"][0]["enum"]) == protocol.RECORDING
    assert defs["health_nvr"]["properties"]["uptime_s"]["anyOf"][0]["maximum"] == protocol.MAX_SECONDS
    assert defs["health_nvr"]["properties"]["temperature_c"]["anyOf"][0]["minimum"] == protocol.TEMPERATURE_C[0]
