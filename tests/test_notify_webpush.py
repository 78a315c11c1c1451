"""Web Push against a local push service (a real HTTP server on 127.0.0.1) that decrypts what the hub sends.

Chromium here cannot subscribe (it only talks to Google's push service, and headless Chromium refuses push
registration: "Registration failed - permission denied"), so the test makes the subscription as a browser would:
a P-256 key pair and an auth secret, registered through the hub's own subscribe endpoint. The browser part that
can run here (the page, its service worker under the CSP, the error it shows) is checked in Chromium below.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import http_ece
import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from playwright.sync_api import expect

from tests.agent import Agent
from tests.browsing import Browsing
from tests.conftest import LiveHub, run_async
from tests.sinks import HttpSink, Request, free_port, wait_for


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class BrowserKeys:
    """What a browser makes when it subscribes: a P-256 key pair and a 16-byte auth secret (RFC 8291)."""

    private: ec.EllipticCurvePrivateKey
    auth: bytes

    @classmethod
    def new(cls) -> BrowserKeys:
        return cls(ec.generate_private_key(ec.SECP256R1()), os.urandom(16))

    def subscription(self, endpoint: str) -> dict[str, Any]:
        point = self.private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"endpoint": endpoint, "expirationTime": None, "keys": {"p256dh": b64(point), "auth": b64(self.auth)}}

    def decrypt(self, request: Request) -> dict[str, Any]:
        assert request.headers["content-encoding"] == "aes128gcm"
        plain = http_ece.decrypt(request.body, private_key=self.private, auth_secret=self.auth, version="aes128gcm")
        return dict(json.loads(plain))


def page_values(hub: LiveHub) -> tuple[str, str]:
    html = hub.get("/notifications").text
    key = re.search(r'data-key="([^"]+)"', html)
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert key and csrf
    return key.group(1), csrf.group(1)


@pytest.fixture
def push_hub(start_hub: Callable[..., LiveHub]) -> LiveHub:
    """A hub that takes push endpoints on 127.0.0.1 (the tests' push service); by default it refuses them."""
    return start_hub(WEBPUSH_ALLOW_PRIVATE="1")


def post_subscription(hub: LiveHub, subscription: str) -> httpx.Response:
    _, csrf = page_values(hub)
    return httpx.post(
        f"{hub.url}/notifications/push", headers={**hub.headers, "X-CSRF-Token": csrf},
        data={"subscription": subscription, "label": "Linux x86_64"}, timeout=10,
    )  # fmt: skip


def subscribe(hub: LiveHub, keys: BrowserKeys, endpoint: str) -> int:
    response = post_subscription(hub, json.dumps(keys.subscription(endpoint)))
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def page_error(response: httpx.Response) -> str:
    found = re.search(r'<div class="form-error" role="alert">([^<]*)</div>', response.text)
    assert found is not None, response.text[:300]
    return html.unescape(found.group(1))


def post_form(hub: LiveHub, path: str) -> httpx.Response:
    _, csrf = page_values(hub)
    return httpx.post(f"{hub.url}{path}", headers=hub.headers, data={"csrf_token": csrf}, timeout=10)


def verify_vapid(request: Request, public_key: str, audience: str) -> None:
    """The push service's check (RFC 8292): the JWT names this service and is signed by the hub's VAPID key."""
    match = re.fullmatch(r"vapid t=([^,]+),\s*k=(.+)", request.headers["authorization"])
    assert match is not None, request.headers["authorization"]
    token, key = match.groups()
    assert key == public_key
    head, claims, signature = token.split(".")
    assert json.loads(unb64(claims))["aud"] == audience
    raw = unb64(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    vapid = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64(public_key))
    vapid.verify(der, f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))  # raises if forged


def test_webpush_test_push_is_encrypted_for_the_subscriber_and_vapid_signed(
    push_hub: LiveHub, webhook: HttpSink
) -> None:
    keys = BrowserKeys.new()
    channel_id = subscribe(push_hub, keys, f"http://127.0.0.1:{webhook.port}/push/abc123")
    page = push_hub.get("/notifications").text
    assert "web push via 127.0.0.1" in page and "abc123" not in page  # the endpoint path is a capability: not shown
    tested = post_form(push_hub, f"/notifications/push/{channel_id}/test")
    assert tested.status_code == 200 and "Test push sent" in tested.text
    [request] = webhook.received()
    assert request.path == "/push/abc123" and int(request.headers["ttl"]) > 0
    assert keys.decrypt(request)["title"].startswith("nvrmon test message for channel push admin")
    verify_vapid(request, page_values(push_hub)[0], f"http://127.0.0.1:{webhook.port}")


def test_webpush_carries_a_real_incident_and_keeps_its_vapid_key_across_restarts(
    start_hub: Callable[..., LiveHub], webhook: HttpSink
) -> None:
    hub = start_hub(GROUP_WAIT="0.5", WEBPUSH_ALLOW_PRIVATE="1")
    vapid_key = page_values(hub)[0]
    keys = BrowserKeys.new()
    subscribe(hub, keys, f"http://127.0.0.1:{webhook.port}/push/dev1")
    again = subscribe(hub, keys, f"http://127.0.0.1:{webhook.port}/push/dev1")  # the same browser: the same channel

    async def outage() -> None:
        agent, _ = await Agent.register(hub.ws_url, hub.token, "east-a", 4, region="East")
        await agent.close()

    run_async(outage())
    [request] = wait_for(lambda: webhook.received(), timeout=10)
    assert keys.decrypt(request)["title"] == "East 1: 1 NVR offline (east-a), 4 cameras"
    hub.stop()
    hub.start()
    assert page_values(hub)[0] == vapid_key  # subscriptions are bound to it: it must not change
    assert f'data-channel-id="{again}"' in hub.get("/notifications").text


def test_webpush_subscription_gone_at_the_push_service_is_removed(push_hub: LiveHub, webhook: HttpSink) -> None:
    channel_id = subscribe(push_hub, BrowserKeys.new(), f"http://127.0.0.1:{webhook.port}/push/old")
    webhook.status = 410
    tested = post_form(push_hub, f"/notifications/push/{channel_id}/test")
    assert tested.status_code == 502 and "subscription has ended" in tested.text
    assert f'data-channel-id="{channel_id}"' not in push_hub.get("/notifications").text


@pytest.mark.parametrize(
    ("subscription", "problem"),
    [
        ("{}", "https endpoint"),
        ('{"endpoint": "https://fcm.googleapis.com/fcm/send/x", "keys": {}}', "keys.p256dh"),
        ("x" * 3000, "at most"),
    ],
)
def test_webpush_refuses_what_is_not_a_subscription(push_hub: LiveHub, subscription: str, problem: str) -> None:
    response = post_subscription(push_hub, subscription)
    assert response.status_code == 400 and problem in response.json()["error"]


def test_webpush_subscribe_needs_the_csrf_token(live_hub: LiveHub) -> None:
    body = {"subscription": json.dumps(BrowserKeys.new().subscription("http://127.0.0.1:9/x"))}
    response = httpx.post(f"{live_hub.url}/notifications/push", headers=live_hub.headers, data=body, timeout=5)
    assert response.status_code == 403


@pytest.mark.browser
def test_webpush_page_registers_its_service_worker_and_says_why_it_cannot_subscribe(browsing: Browsing) -> None:
    context = browsing.context(permissions=["notifications"])
    page = browsing.open(browsing.hub.url + "/notifications", context, live=False)
    button = page.get_by_role("button", name="Get alerts on this device")
    expect(button).to_be_visible()
    button.click()
    # Headless Chromium refuses push registration; the page must say so in words, not hang.
    expect(page.locator("#push-status")).to_have_text(re.compile(r"^Could not subscribe: .+"), timeout=25_000)
    expect(button).to_be_enabled()
    state = page.evaluate(
        "navigator.serviceWorker.getRegistration('/static/').then(r => r && r.active && r.active.state)"
    )
    assert state == "activated"  # the worker loaded under the hub's CSP
    page.screenshot(path="/tmp/nt/notifications.png", full_page=True)
    assert browsing.errors == []


def test_webpush_libraries_load_only_when_a_push_or_subscription_needs_them() -> None:
    # pywebpush, aiohttp and py_vapid are ~30 MB of every hub's memory; most hubs never use Web Push.
    code = "import sys, nvrmon.application; print(sorted({'pywebpush', 'aiohttp', 'py_vapid'} & set(sys.modules)))"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert found.stdout.strip() == "[]"


# -- what a subscription may make the hub POST to (SSRF) ------------------------------------------------------------


def test_webpush_refuses_endpoints_that_are_not_public_push_services_by_default(
    live_hub: LiveHub, webhook: HttpSink
) -> None:
    keys = BrowserKeys.new()
    refused = {
        f"http://127.0.0.1:{webhook.port}/push/x": "https endpoint",  # the tests' own push service: plain http
        "https://127.0.0.1/push/x": "IP address",
        "https://10.1.2.3/push/x": "IP address",
        "https://[::1]/push/x": "IP address",
        "https://169.254.169.254/latest/meta-data": "IP address",
        "https://localhost/push/x": "not a public push service",  # a name that resolves to loopback
        "https://user:pw@fcm.googleapis.com/fcm/send/x": "user name or password",
        "https://fcm.googleapis.com/fcm/send/" + "x" * 1100: "at most 1024 characters",
        "ftp://fcm.googleapis.com/x": "https endpoint",
    }
    for endpoint, problem in refused.items():
        response = post_subscription(live_hub, json.dumps(keys.subscription(endpoint)))
        assert response.status_code == 400 and problem in response.json()["error"], (endpoint, response.text)
    good = keys.subscription("https://fcm.googleapis.com/fcm/send/x")
    for bad_keys, problem in (({"p256dh": "AAAA", "auth": good["keys"]["auth"]}, "65 bytes"),
                              ({"p256dh": good["keys"]["p256dh"], "auth": "x" * 500}, "16-byte")):  # fmt: skip
        response = post_subscription(live_hub, json.dumps({**good, "keys": bad_keys}))
        assert response.status_code == 400 and problem in response.json()["error"], response.text
    assert live_hub.get("/api/channels").json()["channels"] == []  # nothing was kept
    assert webhook.received() == []


def vapid_keys() -> Any:
    from py_vapid import Vapid02  # type: ignore[import-untyped]

    from nvrmon.alerts import webpush

    vapid = Vapid02()
    vapid.generate_keys()
    return webpush.Keys(vapid, "")


def test_webpush_send_checks_the_address_it_connects_to(webhook: HttpSink) -> None:
    from nvrmon.alerts import webpush

    keys = vapid_keys()

    def push(endpoint: str, allow_private: bool) -> None:
        target = json.dumps(BrowserKeys.new().subscription(endpoint))
        run_async(webpush.push(keys, target, "t", "b", "mailto:a@example.com", 5, allow_private))

    # Kept before, when allowed or when its name resolved elsewhere: each send checks again, on the addresses the
    # connector is about to use (localhost passes the URL checks as a name: the resolver is what refuses it).
    for endpoint, problem in ((f"https://localhost:{webhook.port}/push/x", "localhost is not on a public address"),
                              (f"https://127.0.0.1:{webhook.port}/push/x", "IP address"),
                              (f"http://127.0.0.1:{webhook.port}/push/x", "https endpoint")):  # fmt: skip
        with pytest.raises(webpush.PushError, match=problem):
            push(endpoint, allow_private=False)
    assert webhook.received() == []
    push(f"http://localhost:{webhook.port}/push/x", allow_private=True)  # the same resolver lets it through then
    assert len(webhook.received()) == 1


def test_webpush_send_refuses_a_redirect(webhook: HttpSink) -> None:
    from nvrmon.alerts import webpush

    inside = HttpSink().start()
    try:
        webhook.status, webhook.answer_headers = 307, {"Location": f"http://127.0.0.1:{inside.port}/admin"}
        target = json.dumps(BrowserKeys.new().subscription(f"http://127.0.0.1:{webhook.port}/push/x"))
        with pytest.raises(webpush.Refused, match="redirect"):
            run_async(webpush.push(vapid_keys(), target, "t", "b", "mailto:a@example.com", 5, True))
        assert inside.received() == []
    finally:
        inside.stop()


def test_webpush_subscriptions_are_capped_per_person_and_per_hub(tmp_path: Path) -> None:
    from nvrmon.alerts import manage
    from nvrmon.store.channels import ChannelError, Channels
    from nvrmon.store.database import Database

    async def fill() -> None:
        database = await Database.open(str(tmp_path / "caps.db"))
        channels = Channels(database)

        async def add(owner: str) -> None:
            text = json.dumps(BrowserKeys.new().subscription("http://127.0.0.1:9/push/x"))
            await manage.add_push(channels, text, owner, "", allow_private=True)

        try:
            for _ in range(manage.MAX_PUSH_PER_OWNER):
                await add("vera")
            with pytest.raises(ChannelError, match="at most 20 webpush subscriptions per person"):
                await add("vera")
            for n in range(manage.MAX_PUSH - manage.MAX_PUSH_PER_OWNER):
                await add(f"user{n // manage.MAX_PUSH_PER_OWNER}")
            with pytest.raises(ChannelError, match="this hub keeps at most 400"):
                await add("newcomer")
            assert len(await channels.all()) == manage.MAX_PUSH
        finally:
            await database.close()

    run_async(fill())


def test_webpush_subscribe_past_the_cap_is_refused_with_409(push_hub: LiveHub) -> None:
    for _ in range(20):
        subscribe(push_hub, BrowserKeys.new(), "http://127.0.0.1:9/push/x")
    response = post_subscription(push_hub, json.dumps(BrowserKeys.new().subscription("http://127.0.0.1:9/push/y")))
    assert response.status_code == 409 and "remove one you no longer use" in response.json()["error"]
    assert len(push_hub.get("/api/channels").json()["channels"]) == 20


# -- what the subscriber is told of a test push (no oracle), and a timeout after the send (unknown) ---------------


def test_webpush_test_push_tells_only_a_coarse_outcome(push_hub: LiveHub, webhook: HttpSink) -> None:
    channel_id = subscribe(push_hub, BrowserKeys.new(), f"http://127.0.0.1:{webhook.port}/push/x")
    webhook.status, webhook.answer = 500, b"internal-banner: redis 7.2 on db-3"
    tested = post_form(push_hub, f"/notifications/push/{channel_id}/test")
    assert tested.status_code == 502 and page_error(tested) == "The push service refused the test push."
    webhook.stop()
    tested = post_form(push_hub, f"/notifications/push/{channel_id}/test")
    error = page_error(tested)
    assert tested.status_code == 502 and error == "The test push failed: the push service could not be reached."
    # The detail is the admin's: in the hub's log and the delivery list.
    assert "answered 500 Internal Server Error" in push_hub.log()
    attempts = [a for d in push_hub.get("/api/deliveries").json()["deliveries"] for a in d["attempts"]]
    assert any("Cannot connect" in (a["error"] or "") for a in attempts), attempts


def test_webpush_timeout_after_the_push_went_out_is_unknown_not_error(
    start_hub: Callable[..., LiveHub], webhook: HttpSink
) -> None:
    hub = start_hub(WEBPUSH_ALLOW_PRIVATE="1", NOTIFY_TIMEOUT="1")
    channel_id = subscribe(hub, BrowserKeys.new(), f"http://127.0.0.1:{webhook.port}/push/slow")
    webhook.delay = 3  # the push service has the push, and answers after the hub stopped waiting
    tested = post_form(hub, f"/notifications/push/{channel_id}/test")
    assert tested.status_code == 502 and "it may still arrive" in page_error(tested)
    [delivery] = hub.get("/api/deliveries").json()["deliveries"]
    assert delivery["state"] == "unknown"
    assert [a["result"] for a in delivery["attempts"]] == ["unknown"]
    assert "may have arrived" in delivery["attempts"][0]["error"]
    assert len(webhook.received()) == 1


def test_webpush_refused_connection_is_an_error_to_retry(webhook: HttpSink) -> None:
    from nvrmon.alerts import webpush

    target = json.dumps(BrowserKeys.new().subscription(f"http://127.0.0.1:{free_port()}/push/x"))
    with pytest.raises(webpush.PushError, match="could not reach the push service"):
        run_async(webpush.push(vapid_keys(), target, "t", "b", "mailto:a@example.com", 5, True))
