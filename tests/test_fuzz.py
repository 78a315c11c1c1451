"""Property-based fuzzing against a real hub: random and malformed agent frames, random query parameters."""

from __future__ import annotations

import json
from typing import Any, get_args
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from nvrmon.protocol import ErrorCode
from tests.agent import hello
from tests.conftest import LiveHub

ERROR_CODES = set(get_args(ErrorCode))
FUZZ = settings(
    max_examples=200,
    deadline=None,  # each example is network round trips to a real process
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # the same examples every run: a failure in CI reproduces locally
)

# JSON values of any shape, biased towards what the parser looks at.
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
field_names = st.sampled_from(
    ["type", "protocol", "nvr", "hostname", "cameras", "id", "name", "status", "camera_id", "severity", "message",
     "stats", "seq", "session", "ip_address", "region"]
)  # fmt: skip
extra_fields = st.dictionaries(field_names, json_values, max_size=3)
message_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["hello", "heartbeat", "camera_status", "cameras", "alert", "welcome", "", "HELLO"])},
    optional={"protocol": json_values, "nvr": json_values, "cameras": json_values, "camera_id": json_values,
              "status": json_values, "severity": json_values, "message": json_values, "stats": json_values,
              "seq": json_values, "session": json_values},
).flatmap(lambda base: extra_fields.map(lambda extra: {**extra, **base}))  # fmt: skip
frames = st.one_of(
    message_like.map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=200),  # not JSON at all, or JSON with odd characters
    message_like.map(json.dumps).flatmap(lambda text: st.integers(0, len(text)).map(lambda cut: text[:cut])),
    st.binary(max_size=64),
)


def exchange(ws: ClientConnection, batch: list[str | bytes]) -> list[dict[str, Any]]:
    """Send the frames, then read what comes back until the hub goes quiet or closes."""
    for frame in batch:
        try:
            ws.send(frame)
        except ConnectionClosed:
            break  # the hub closed this connection after an earlier frame: as documented
    replies = []
    try:
        while True:
            replies.append(json.loads(ws.recv(timeout=0.03)))
    except (TimeoutError, ConnectionClosed):
        pass
    return replies


def check_replies(replies: list[dict[str, Any]]) -> None:
    for reply in replies:
        assert reply["type"] in ("error", "welcome", "ack"), reply
        if reply["type"] == "error":
            assert reply["code"] in ERROR_CODES and isinstance(reply["message"], str), reply


def control_state(hub: LiveHub, nvr_id: int) -> dict[str, Any]:
    data = dict(hub.get(f"/api/nvrs/{nvr_id}").json())
    data.pop("last_seen")  # heartbeats move it; nothing else may change
    return data


def test_agent_endpoint_survives_random_frames_and_other_agents_are_unaffected(live_hub: LiveHub) -> None:
    headers = {"Authorization": f"Bearer {live_hub.token}"}
    # No keepalive pings: websockets draws their payload from the global `random` in its own thread, and hypothesis
    # fails a run that touches `random` while it draws data (the fuzz can outlast the 20 s ping interval).
    with connect(live_hub.ws_url, additional_headers=headers, ping_interval=None) as control:
        control.send(json.dumps(hello("nvr-control", 2)))
        control_id = int(json.loads(control.recv(timeout=5))["nvr_id"])
        before = control_state(live_hub, control_id)

        @FUZZ
        @given(registered=st.booleans(), batch=st.lists(frames, min_size=1, max_size=4))
        def fuzz(registered: bool, batch: list[str | bytes]) -> None:
            control.send(json.dumps({"type": "heartbeat"}))  # the control NVR stays online throughout
            # A fuzzed hello may not name the control NVR (that would be a legitimate change).
            batch = [f for f in batch if not (isinstance(f, str) and "nvr-control" in f)]
            with connect(live_hub.ws_url, additional_headers=headers, max_size=None, ping_interval=None) as ws:
                if registered:
                    ws.send(json.dumps(hello("nvr-fuzz", 1)))
                    assert json.loads(ws.recv(timeout=5))["type"] == "welcome"
                check_replies(exchange(ws, batch))

        fuzz()
        assert control_state(live_hub, control_id) == before
        # The control agent is still served promptly.
        control.send(json.dumps({"type": "camera_status", "camera_id": "cam1", "status": "offline", "seq": 1}))
        assert json.loads(control.recv(timeout=5)) == {"type": "ack", "seq": 1}
    log = live_hub.log()
    assert "Traceback" not in log and "ERROR" not in log, log[-3000:]


PARAM_NAMES = st.sampled_from(
    ["view", "id", "since", "wait", "transport", "status", "region", "nvr", "limit", "next", "x"]
)
PARAM_VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["dashboard", "nvrs", "cameras", "nvr", "camera", "0", "-1", "1" * 30, "poll", "sse", "x-0"]),
    st.integers(-(2**70), 2**70).map(str),
)
queries = st.dictionaries(PARAM_NAMES, PARAM_VALUES, max_size=4)
PATHS = ["/", "/nvrs", "/cameras", "/nvrs/1", "/cameras/1", "/poll", "/events", "/login", "/admin", "/healthz",
         "/api/summary", "/api/nvrs", "/api/nvrs/1", "/api/cameras", "/api/cameras/1", "/api/events"]  # fmt: skip


@pytest.mark.parametrize("logged_in", [True, False], ids=["session", "stranger"])
def test_query_parameters_never_cause_a_server_error(live_hub: LiveHub, logged_in: bool) -> None:
    headers = live_hub.headers if logged_in else {}
    with httpx.Client(base_url=live_hub.url, headers=headers, timeout=10) as client:

        @settings(FUZZ, max_examples=150)
        @given(path=st.sampled_from(PATHS), query=queries)
        def fuzz(path: str, query: dict[str, str]) -> None:
            if path == "/poll":
                query["wait"] = "0"  # answer at once rather than hold the request
            url = f"{path}?{urlencode(query)}"
            if path == "/events":
                with client.stream("GET", url) as response:  # read the opening, then hang up
                    assert response.status_code < 500, url
                    if response.status_code == 200:
                        next(response.iter_bytes())
                return
            assert client.get(url).status_code < 500, url

        fuzz()

        @settings(FUZZ, max_examples=60)
        @given(segment=st.text(min_size=1, max_size=80).filter(lambda s: "/" not in s and s not in (".", "..")))
        def fuzz_embed(segment: str) -> None:
            for suffix in ("", "/fragment", "/events"):
                assert client.get(f"/embed/{quote(segment, safe='')}{suffix}").status_code == 404

        fuzz_embed()
    assert "Traceback" not in live_hub.log()
