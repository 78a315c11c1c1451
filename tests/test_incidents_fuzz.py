"""Property-based fuzzing of the incident pages and API on a real hub: no query or body causes a server error."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import LiveHub
from tests.test_fuzz import FUZZ, json_values

PARAM_NAMES = st.sampled_from(["state", "site", "severity", "limit", "view", "id", "since", "wait"])
PARAM_VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["open", "acknowledged", "resolved", "active", "critical", "major", "incidents", "incident"]),
    st.integers(-(2**70), 2**70).map(str),
)
PATHS = ["/incidents", "/incidents/1", "/maintenance", "/api/incidents", "/api/incidents/1", "/api/maintenance",
         "/poll"]  # fmt: skip
# Maintenance bodies: random JSON, and objects shaped almost like a window.
windows = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {
            "match": st.one_of(
                json_values,
                st.dictionaries(st.sampled_from(["camera", "nvr", "site", "region", "x"]), json_values, max_size=3),
            )
        },  # fmt: skip
        optional={"reason": json_values, "starts_at": json_values, "ends_at": json_values, "recurring": json_values},
    ),
)


def test_incident_queries_and_maintenance_bodies_never_cause_a_server_error(live_hub: LiveHub) -> None:
    with httpx.Client(base_url=live_hub.url, headers=live_hub.headers, timeout=10) as client:
        token = re.search(r'<meta name="csrf-token" content="([^"]+)"', client.get("/incidents").text)
        assert token is not None
        # Sent as the bytes Python's json writes (NaN and Infinity included), as a sloppy client might.
        write = {"X-CSRF-Token": token.group(1), "Content-Type": "application/json"}

        @settings(FUZZ, max_examples=120)
        @given(path=st.sampled_from(PATHS), query=st.dictionaries(PARAM_NAMES, PARAM_VALUES, max_size=4))
        def fuzz_reads(path: str, query: dict[str, str]) -> None:
            if path == "/poll":
                query["wait"] = "0"
            assert client.get(f"{path}?{urlencode(query)}").status_code < 500, (path, query)

        fuzz_reads()

        @settings(FUZZ, max_examples=150)
        @given(body=windows)
        def fuzz_windows(body: Any) -> None:
            response = client.post("/api/maintenance", content=json.dumps(body), headers=write)
            assert response.status_code in (201, 400), (body, response.text)
            if response.status_code == 201:
                assert client.delete(f"/api/maintenance/{response.json()['id']}", headers=write).status_code == 204

        fuzz_windows()

        @settings(FUZZ, max_examples=60)
        @given(body=json_values)
        def fuzz_ack(body: Any) -> None:
            assert client.post("/api/incidents/1/ack", content=json.dumps(body), headers=write).status_code in (
                400,
                404,
            )

        fuzz_ack()
    assert "Traceback" not in live_hub.log()
