"""Web Push against a local push service (a real HTTP server on 127.0.0.1) that decrypts what the hub sends.

Chromium here cannot subscribe (it only talks to Google's push service, and headless Chromium refuses push
registration: "Registration failed - permission denied"), so the test makes the subscription as a browser would:
a P-256 key pair and an auth secret, registered through the hub's own subscribe endpoint. The browser part that
can run here (the page, its service worker under the CSP, the error it shows) is checked in Chromium below.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
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
from tests.sinks import HttpSink, Request, wait_for


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


def subscribe(hub: LiveHub, keys: BrowserKeys, endpoint: str) -> int:
    _, csrf = page_values(hub)
    response = httpx.post(
        f"{hub.url}/notifications/push", headers={**hub.headers, "X-CSRF-Token": csrf},
        data={"subscription": json.dumps(keys.subscription(endpoint)), "label": "Linux x86_64"}, timeout=5,
    )  # fmt: skip
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


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
    live_hub: LiveHub, webhook: HttpSink
) -> None:
    keys = BrowserKeys.new()
    channel_id = subscribe(live_hub, keys, f"http://127.0.0.1:{webhook.port}/push/abc123")
    page = live_hub.get("/notifications").text
    assert "web push via 127.0.0.1" in page and "abc123" not in page  # the endpoint path is a capability: not shown
    tested = post_form(live_hub, f"/notifications/push/{channel_id}/test")
    assert tested.status_code == 200 and "Test push sent" in tested.text
    [request] = webhook.received()
    assert request.path == "/push/abc123" and int(request.headers["ttl"]) > 0
    assert keys.decrypt(request)["title"].startswith("nvrmon test message for channel push admin")
    verify_vapid(request, page_values(live_hub)[0], f"http://127.0.0.1:{webhook.port}")


def test_webpush_carries_a_real_incident_and_keeps_its_vapid_key_across_restarts(
    start_hub: Callable[..., LiveHub], webhook: HttpSink
) -> None:
    hub = start_hub(GROUP_WAIT="0.5")
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


def test_webpush_subscription_gone_at_the_push_service_is_removed(live_hub: LiveHub, webhook: HttpSink) -> None:
    channel_id = subscribe(live_hub, BrowserKeys.new(), f"http://127.0.0.1:{webhook.port}/push/old")
    webhook.status = 410
    tested = post_form(live_hub, f"/notifications/push/{channel_id}/test")
    assert tested.status_code == 502 and "subscription has ended" in tested.text
    assert f'data-channel-id="{channel_id}"' not in live_hub.get("/notifications").text


@pytest.mark.parametrize(
    ("subscription", "problem"),
    [
        ("{}", "http(s) endpoint"),
        ('{"endpoint": "http://127.0.0.1/x", "keys": {}}', "keys.p256dh"),
        ("x" * 3000, "at most"),
    ],
)
def test_webpush_refuses_what_is_not_a_subscription(live_hub: LiveHub, subscription: str, problem: str) -> None:
    _, csrf = page_values(live_hub)
    response = httpx.post(f"{live_hub.url}/notifications/push", headers={**live_hub.headers, "X-CSRF-Token": csrf},
                          data={"subscription": subscription}, timeout=5)  # fmt: skip
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
