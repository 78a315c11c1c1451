"""/api/channels and /api/deliveries on a real hub (admin only), against a real webhook sink."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.conftest import LiveHub, create_user
from tests.sinks import HttpSink, free_port


def csrf(hub: LiveHub, headers: dict[str, str]) -> dict[str, str]:
    html = httpx.get(f"{hub.url}/notifications", headers=headers, timeout=5).text
    token = html.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    return {**headers, "X-CSRF-Token": token}


def test_api_channels_add_list_test_remove(live_hub: LiveHub, webhook: HttpSink) -> None:
    headers = csrf(live_hub, live_hub.headers)
    url = f"json://ops:s3cret@127.0.0.1:{webhook.port}/hook"
    body = {"url": url, "name": "ops", "match": {"region": "North", "severity": "critical,major"}}
    created = httpx.post(f"{live_hub.url}/api/channels", json=body, headers=headers, timeout=5)
    assert created.status_code == 201, created.text
    channel = created.json()
    assert channel["match"] == {"region": "North", "severity": "critical,major"}
    assert channel["target"] == f"json://ops:****@127.0.0.1:{webhook.port}/hook"
    listed = live_hub.get("/api/channels").json()["channels"]
    assert [c["name"] for c in listed] == ["ops"] and "s3cret" not in str(listed)

    tested = httpx.post(f"{live_hub.url}/api/channels/{channel['id']}/test", headers=headers, timeout=10)
    assert tested.status_code == 200 and tested.json() == {"state": "sent", "error": ""}
    assert len(webhook.received()) == 1
    [delivery] = live_hub.get("/api/deliveries").json()["deliveries"]
    assert (delivery["channel"], delivery["kind"], delivery["state"]) == ("ops", "test", "sent")
    assert [a["result"] for a in delivery["attempts"]] == ["sent"]

    removed = httpx.delete(f"{live_hub.url}/api/channels/{channel['id']}", headers=headers, timeout=5)
    assert removed.status_code == 204
    assert live_hub.get("/api/channels").json()["channels"] == []
    again = httpx.delete(f"{live_hub.url}/api/channels/{channel['id']}", headers=headers, timeout=5)
    assert again.status_code == 404 and again.json()["error"] == {"code": "not_found", "message": "no such channel"}
    huge = httpx.post(f"{live_hub.url}/api/channels/{'9' * 20}/test", headers=headers, timeout=5)
    assert huge.status_code == 404, huge.text  # past SQLite's integers: no such channel, not a server error


def test_api_channels_say_what_is_wrong(live_hub: LiveHub) -> None:
    headers = csrf(live_hub, live_hub.headers)

    def post(body: object) -> httpx.Response:
        return httpx.post(f"{live_hub.url}/api/channels", json=body, headers=headers, timeout=5)

    assert "Apprise cannot use" in post({"url": "nosuch://x"}).json()["error"]["message"]
    assert (
        "severity is one of"
        in post({"url": "json://127.0.0.1/x", "match": {"severity": "high"}}).json()["error"]["message"]
    )
    assert post({"url": "json://127.0.0.1/x", "match": ["site"]}).json()["error"] == {
        "code": "bad_request",
        "message": "match is an object of site, region, severity (text, comma-separated values)",
    }
    assert post({"url": "json://127.0.0.1/x", "name": "a"}).status_code == 201
    taken = post({"url": "json://127.0.0.1/y", "name": "a"})
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "conflict"
    dead = post({"url": f"json://127.0.0.1:{free_port()}/x", "name": "dead"}).json()
    failed = httpx.post(f"{live_hub.url}/api/channels/{dead['id']}/test", headers=headers, timeout=10)
    assert failed.status_code == 502 and failed.json()["error"]["code"] == "delivery_failed"
    assert "Connection error" in failed.json()["error"]["message"]
    assert live_hub.get("/api/deliveries?limit=0").json()["error"]["message"] == "limit must be a number from 1 to 200"


def test_api_channels_are_for_admins_only(start_hub: Callable[..., LiveHub]) -> None:
    hub = start_hub()
    create_user(hub.db_path, "olga", "operator", "operator password 1")
    operator = {"Cookie": hub.login("olga", "operator password 1")}
    assert httpx.get(f"{hub.url}/api/channels", headers=operator, timeout=5).status_code == 403
    body = {"url": "json://127.0.0.1/x"}
    refused = httpx.post(f"{hub.url}/api/channels", json=body, headers=csrf(hub, operator), timeout=5)
    assert refused.status_code == 403
    assert httpx.get(f"{hub.url}/api/channels", timeout=5).status_code == 401
