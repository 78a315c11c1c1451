"""The OpenAPI document is true: every /api route in it and nothing else, live responses match, schemathesis agrees."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from starlette.applications import Starlette
from starlette.routing import Route

from nvrmon.application import create_app
from nvrmon.settings import Settings
from tests.browsing import Fleet
from tests.conftest import LiveHub
from tests.test_api_tokens import bearer, create_token

METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


def app_routes() -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every route the real app serves under /api, and /healthz."""
    app: Any = create_app(Settings(db_path=Path("unused.db")))
    while not isinstance(app, Starlette):
        app = app.app  # the security-header and stream fast-path layers around the router
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        if isinstance(route, Route) and (route.path.startswith("/api/") or route.path == "/healthz"):
            path = re.sub(r"{(\w+):\w+}", r"{\1}", route.path)
            found |= {(method, path) for method in (route.methods or set()) & METHODS}
    return found


@pytest.fixture
def fleet_hub(live_hub: LiveHub, fleet: Fleet) -> LiveHub:
    """A live hub with two NVRs (one connected, one gone offline), their cameras and events."""
    fleet.register("nvr-east-1", 3, region="East", offline=(2,))
    gone, _ = fleet.register("nvr-west-1", 2, region="West")
    fleet.close(gone)
    deadline = time.monotonic() + 10
    while httpx.get(f"{live_hub.url}/api/summary", headers=live_hub.headers).json()["nvrs_offline"] < 1:
        assert time.monotonic() < deadline, "the closed agent's NVR never went offline"
        time.sleep(0.05)
    return live_hub


def document(hub: LiveHub) -> dict[str, Any]:
    response = httpx.get(f"{hub.url}/api/openapi.json")  # public: the contract is no secret
    assert response.status_code == 200
    doc: dict[str, Any] = response.json()
    return doc


def test_openapi_documents_every_api_route_and_no_other(live_hub: LiveHub) -> None:
    doc = document(live_hub)
    assert doc["openapi"].startswith("3.1")
    documented = {(method.upper(), path) for path, item in doc["paths"].items() for method in item}
    served = app_routes()
    assert served - documented == set(), "routes without an OpenAPI entry"
    assert documented - served == set(), "documented routes the app does not serve"
    assert {"session", "bearer"} <= doc["components"]["securitySchemes"].keys()
    jsonschema.Draft202012Validator.check_schema(doc["components"]["schemas"]["Error"])
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            # Reads answer 200; the fleet's writes 201 (created), 200 (patched) or 204 (decommissioned).
            assert any(code in operation["responses"] for code in ("200", "201", "204")), (method, path)
            assert operation["summary"], (method, path)
            if operation["x-nvrmon-access"] != "public":
                assert {"401", "403"} <= operation["responses"].keys(), (method, path)


def validate(doc: dict[str, Any], schema: dict[str, Any], body: Any) -> None:
    """Validate with the document's components in reach of its $refs."""
    jsonschema.Draft202012Validator({**schema, "components": doc["components"]}).validate(body)


def filled(path: str, ids: dict[str, int]) -> str:
    return re.sub(r"{(\w+)}", lambda m: str(ids[m[1]]), path)


def test_live_get_responses_match_their_documented_schemas(fleet_hub: LiveHub) -> None:
    doc = document(fleet_hub)
    token = bearer(create_token(fleet_hub.db_path, "checker", "read"))
    nvrs = httpx.get(f"{fleet_hub.url}/api/nvrs", headers=token).json()["nvrs"]
    opened = httpx.get(f"{fleet_hub.url}/api/incidents", headers=token).json()["incidents"]
    assert opened, "the NVR gone offline opened an incident"
    ids = {"nvr_id": nvrs[0]["id"], "camera_id": httpx.get(f"{fleet_hub.url}/api/cameras", headers=token).json()[
        "cameras"][0]["id"], "incident_id": opened[0]["id"]}  # fmt: skip
    error_schema = doc["components"]["responses"]["Error"]["content"]["application/json"]["schema"]
    checked = 0
    for path, item in doc["paths"].items():
        if "get" not in item:
            continue
        operation = item["get"]
        if operation["x-nvrmon-access"] == "admin":
            # No API token is an admin (docs/api.md): refused, in the error shape (test_notify_api.py reads them).
            refused = httpx.get(fleet_hub.url + path, headers=token)
            assert refused.status_code == 403, (path, refused.text)
            validate(doc, error_schema, refused.json())
            continue
        required = {
            p["name"]: p["example"] for p in operation["parameters"] if p.get("required") and p["in"] == "query"
        }
        response = httpx.get(fleet_hub.url + filled(path, ids), params=required, headers=token)
        assert response.status_code == 200, (path, response.text)
        validate(doc, operation["responses"]["200"]["content"]["application/json"]["schema"], response.json())
        checked += 1
        if "{" in path:
            missing = httpx.get(fleet_hub.url + filled(path, dict.fromkeys(ids, 999_999)), headers=token)
            assert missing.status_code == 404
            validate(doc, error_schema, missing.json())
        if any(p["name"] == "limit" for p in operation["parameters"]):
            bad = httpx.get(f"{fleet_hub.url}{path}?limit=0", headers=token)
            assert bad.status_code == 400 and "limit" in bad.json()["error"]["message"]
            validate(doc, error_schema, bad.json())
        if operation["x-nvrmon-access"] != "public":
            validate(doc, error_schema, httpx.get(fleet_hub.url + filled(path, ids)).json())
    assert checked >= 13
    # The availability report's other documented media type: the same rows as CSV.
    report = doc["paths"]["/api/reports/availability"]["get"]["responses"]["200"]["content"]
    assert set(report) == {"application/json", "text/csv"}
    exported = httpx.get(f"{fleet_hub.url}/api/reports/availability?scope=nvr&format=csv", headers=token)
    assert exported.headers["content-type"].startswith("text/csv"), exported.headers
    lines = exported.text.splitlines()
    assert lines[0].startswith("scope,key,name,") and sorted(line.split(",")[5] for line in lines[1:]) == [
        "nvr-east-1", "nvr-west-1"]  # fmt: skip


def test_list_endpoints_page_and_filter_like_the_list_pages(fleet_hub: LiveHub) -> None:
    token = bearer(create_token(fleet_hub.db_path, "lister", "read"))

    def get(path: str) -> dict[str, Any]:
        response = httpx.get(f"{fleet_hub.url}{path}", headers=token)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    assert [n["hostname"] for n in get("/api/nvrs?region=East")["nvrs"]] == ["nvr-east-1"]
    assert [n["hostname"] for n in get("/api/nvrs?site=West%201")["nvrs"]] == ["nvr-west-1"]
    assert [n["hostname"] for n in get("/api/nvrs?status=offline")["nvrs"]] == ["nvr-west-1"]
    assert [n["hostname"] for n in get("/api/nvrs?q=EAST")["nvrs"]] == ["nvr-east-1"]
    first = get("/api/nvrs?limit=1")
    second = get("/api/nvrs?limit=1&offset=1")
    assert (first["count"], first["total"], first["limit"], second["offset"]) == (1, 2, 1, 1)
    assert first["nvrs"][0]["hostname"] == "nvr-east-1" and second["nvrs"][0]["hostname"] == "nvr-west-1"
    cameras = get("/api/cameras?status=offline")
    assert [c["name"] for c in cameras["cameras"]] == ["Cam 2"] and cameras["total"] == 1
    assert get("/api/cameras?status=nvr_offline")["total"] == 2
    assert get("/api/cameras?site=East%201&limit=2")["total"] == 3
    assert len(get("/api/cameras?site=East%201&limit=2")["cameras"]) == 2
    for bad in ("/api/nvrs?status=sleeping", "/api/nvrs?limit=501", "/api/cameras?nvr=x", "/api/events?offset=-1",
                "/api/nvrs?region=" + "r" * 65):  # fmt: skip
        response = httpx.get(f"{fleet_hub.url}{bad}", headers=token)
        assert response.status_code == 400 and response.json()["error"]["code"] == "bad_request", bad


# -- schemathesis: generated requests against the live hub, with a read token --------------------------------------


@pytest.fixture
def read_token(fleet_hub: LiveHub) -> dict[str, str]:
    return bearer(create_token(fleet_hub.db_path, "schemathesis", "read"))


@pytest.fixture
def api_schema(fleet_hub: LiveHub) -> Any:
    return schemathesis.openapi.from_url(f"{fleet_hub.url}/api/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
# Bounded and repeatable: a few examples per operation, derived from a fixed seed instead of random ones.
@settings(max_examples=12, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
def test_schemathesis_finds_no_server_error_or_nonconforming_response(case: Any, read_token: dict[str, str]) -> None:
    checks = [
        schemathesis.checks.not_a_server_error,
        schemathesis.checks.status_code_conformance,
        schemathesis.checks.content_type_conformance,
        schemathesis.checks.response_schema_conformance,
        # Invalid parameters get a 4xx (never accepted silently), valid ones are not refused.
        schemathesis.checks.negative_data_rejection,
        schemathesis.checks.positive_data_acceptance,
    ]
    chosen = case.query or {}
    if case.path.startswith("/api/reports/") and ({"from", "to"} & set(chosen) or chosen.get("range") == "custom"):
        # A custom range's rules tie parameters together (from needed, to after it, at most 366 days), which no
        # parameter schema can state: a schema-valid pair may rightly get a 400 (test_availability_hub.py checks
        # those refusals). Every other report query must still be accepted.
        checks.remove(schemathesis.checks.positive_data_acceptance)
    response = case.call_and_validate(headers=read_token, checks=checks)
    assert response.status_code != 401, "the token was not sent: the run would only have seen refusals"


def test_read_token_never_writes_through_any_documented_path(fleet_hub: LiveHub) -> None:
    """Every method but GET on every documented path: 403 for a read token where the route serves it, else 405."""
    doc = document(fleet_hub)
    token = bearer(create_token(fleet_hub.db_path, "reader", "read"))
    served = app_routes()
    ids = dict.fromkeys(("nvr_id", "camera_id", "incident_id", "window_id", "channel_id"), 1)
    for path in doc["paths"]:
        for method in sorted(METHODS - {"GET"}):
            response = httpx.request(method, fleet_hub.url + filled(path, ids), headers=token, content=b"{not json")
            expected = 403 if (method, path) in served else 405
            assert response.status_code == expected, (method, path, response.text)
            assert response.json()["error"]["code"] == ("read_only_token" if expected == 403 else "method_not_allowed")
