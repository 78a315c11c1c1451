"""The audit log of notification channels and Web Push subscriptions on a real hub, against a real webhook sink:
added, removed and tested by the admin page's forms, by /api/channels with the session's CSRF token and by the
command line, each once (its masked target, never the secret); refused ones (no CSRF token, an operator, an API
token, a bad URL, a taken name) not at all."""

from __future__ import annotations

import getpass
import json
import re
from collections.abc import Callable

import httpx

from tests.audit_helpers import AuditTrail, page_csrf
from tests.conftest import LiveHub, create_user, run_cli
from tests.sinks import HttpSink, free_port
from tests.test_api_tokens import bearer, create_token
from tests.test_notify_webpush import BrowserKeys

HERE = "127.0.0.1"


def test_audit_records_channel_changes_from_the_admin_page_the_api_and_the_cli(
    live_hub: LiveHub, webhook: HttpSink
) -> None:
    admin, trail = live_hub.username, AuditTrail(live_hub.db_path)
    csrf = page_csrf(live_hub, "/admin", live_hub.headers)
    create_user(live_hub.db_path, "olga", "operator", "operator password 1")
    operator = {"Cookie": live_hub.login("olga", "operator password 1")}
    token = bearer(create_token(live_hub.db_path, "runbook", "operator"))
    url = f"json://ops:s3cret@127.0.0.1:{webhook.port}/hook"
    shown = f"json://ops:****@127.0.0.1:{webhook.port}/hook"

    def form(path: str, who: dict[str, str] | None = None, **fields: str) -> httpx.Response:
        return httpx.post(f"{live_hub.url}{path}", data={"csrf_token": csrf, **fields},
                          headers=who or live_hub.headers, timeout=10)  # fmt: skip

    def api(method: str, path: str, body: object = None, headers: dict[str, str] | None = None) -> httpx.Response:
        sent = headers if headers is not None else {**live_hub.headers, "X-CSRF-Token": csrf}
        return httpx.request(method, f"{live_hub.url}{path}", json=body, headers=sent, timeout=10)

    trail.mark()
    # Refused: no entry.
    assert api("POST", "/api/channels", {"url": url}, headers=live_hub.headers).status_code == 403  # no CSRF token
    assert api("POST", "/api/channels", {"url": url}, headers=token).status_code == 403  # no token is an admin
    assert form("/admin/channels", operator, url=url).status_code == 403
    assert api("POST", "/api/channels", {"url": "nosuch://x"}).status_code == 400
    assert form("/admin/channels", url="nosuch://x").status_code == 400
    trail.none()

    # The admin page's form: added (its rule and masked target in the detail), tested, removed.
    added = form("/admin/channels", url=url, name="ops", region="North", severity="critical")
    assert added.status_code == 200 and "Added channel ops" in added.text
    actor, action, target, detail, address = trail.one()
    assert (actor, action, target, address) == (admin, "channel.add", "ops", HERE)
    assert detail.endswith(f"apprise {shown}, takes region=North severity=critical") and "s3cret" not in detail
    ops = next(c for c in api("GET", "/api/channels").json()["channels"] if c["name"] == "ops")
    assert api("POST", "/api/channels", {"url": url, "name": "ops"}).status_code == 409  # the name is taken
    assert form(f"/admin/channels/{ops['id']}/test", operator).status_code == 403
    trail.none()
    assert "Test message sent to ops" in form(f"/admin/channels/{ops['id']}/test").text
    assert trail.one() == (admin, "channel.test", "ops", f"id {ops['id']}, sent", HERE)
    assert "Removed channel ops" in form(f"/admin/channels/{ops['id']}/remove").text
    assert trail.one() == (admin, "channel.remove", "ops", f"id {ops['id']}, apprise {shown}", HERE)
    assert form(f"/admin/channels/{ops['id']}/remove").status_code == 404
    trail.none()

    # JSON with CSRF: the same three; a failed test is still recorded (a message went out), with its error.
    made = api("POST", "/api/channels", {"url": f"json://127.0.0.1:{free_port()}/x", "name": "dead"})
    assert made.status_code == 201
    dead = made.json()["id"]
    assert trail.one()[:3] == (admin, "channel.add", "dead")
    assert api("POST", f"/api/channels/{dead}/test").status_code == 502
    actor, action, target, detail, _ = trail.one()
    assert (actor, action, target) == (admin, "channel.test", "dead") and "failed" in detail, detail
    assert api("DELETE", f"/api/channels/{dead}", headers=live_hub.headers).status_code == 403  # no CSRF token
    assert api("POST", f"/api/channels/{dead}/test", headers=token).status_code == 403
    trail.none()
    assert api("DELETE", f"/api/channels/{dead}").status_code == 204
    assert trail.one()[:3] == (admin, "channel.remove", "dead")
    assert api("DELETE", f"/api/channels/{dead}").status_code == 404
    trail.none()

    # The command line: actor cli:<os user>, from "local".
    cli = f"cli:{getpass.getuser()}"
    assert run_cli(live_hub.db_path, "channel", "add", "nosuch://x").returncode == 2
    trail.none()
    assert run_cli(live_hub.db_path, "channel", "add", url, "--name", "desk").returncode == 0
    actor, action, target, detail, address = trail.one()
    assert (actor, action, target, address) == (cli, "channel.add", "desk", "local") and "s3cret" not in detail
    assert run_cli(live_hub.db_path, "channel", "test", "desk").returncode == 0
    assert trail.one()[:3] == (cli, "channel.test", "desk")
    assert run_cli(live_hub.db_path, "channel", "remove", "nosuch").returncode == 1
    trail.none()
    assert run_cli(live_hub.db_path, "channel", "remove", "desk").returncode == 0
    assert trail.one()[:3] == (cli, "channel.remove", "desk")
    assert len(webhook.received()) == 2  # the two tests that were sent, nothing else

    # The audit page's family filter knows channels.
    page = httpx.get(f"{live_hub.url}/admin/audit", params={"action": "channel"}, headers=live_hub.headers, timeout=5)
    assert '<option value="channel" selected>channel.*</option>' in page.text
    assert len(re.findall(r'<td class="mono">channel\.(?:add|test|remove)</td>', page.text)) == 9


def test_audit_records_push_subscriptions_of_their_owner(start_hub: Callable[..., LiveHub], webhook: HttpSink) -> None:
    live_hub = start_hub(WEBPUSH_ALLOW_PRIVATE="1")  # its push service is on 127.0.0.1
    trail = AuditTrail(live_hub.db_path)
    create_user(live_hub.db_path, "vera", "viewer", "viewer password 12")
    viewer = {"Cookie": live_hub.login("vera", "viewer password 12")}
    csrf = page_csrf(live_hub, "/notifications", viewer)
    keys = BrowserKeys.new()
    subscription = json.dumps(keys.subscription(f"http://127.0.0.1:{webhook.port}/push/secret-path"))

    def post(path: str, headers: dict[str, str], **fields: str) -> httpx.Response:
        return httpx.post(f"{live_hub.url}{path}", headers=headers, data=fields, timeout=10)

    trail.mark()
    assert post("/notifications/push", viewer, subscription=subscription).status_code == 403  # no CSRF token
    assert post("/notifications/push", {**viewer, "X-CSRF-Token": csrf}, subscription="{}").status_code == 400
    trail.none()
    made = post("/notifications/push", {**viewer, "X-CSRF-Token": csrf}, subscription=subscription, label="Pixel")
    assert made.status_code == 201, made.text
    channel_id = made.json()["id"]
    actor, action, target, detail, address = trail.one()
    assert (actor, action, target, address) == ("vera", "push.subscribe", "push vera Pixel", HERE)
    assert detail.startswith(f"id {channel_id}, webpush ") and "secret-path" not in detail
    # Subscribing the same browser again changes nothing and records nothing.
    again = post("/notifications/push", {**viewer, "X-CSRF-Token": csrf}, subscription=subscription, label="Pixel")
    assert again.json()["id"] == channel_id
    trail.none()

    tested = post(f"/notifications/push/{channel_id}/test", viewer, csrf_token=csrf)
    assert tested.status_code == 200 and "Test push sent" in tested.text
    assert trail.one() == ("vera", "push.test", "push vera Pixel", f"id {channel_id}, sent", HERE)
    # Someone else's subscription is not theirs to remove (404), and the owner needs the CSRF token.
    admin_csrf = page_csrf(live_hub, "/notifications", live_hub.headers)
    assert post(f"/notifications/push/{channel_id}/remove", live_hub.headers, csrf_token=admin_csrf).status_code == 404
    assert post(f"/notifications/push/{channel_id}/remove", viewer).status_code == 403
    trail.none()
    gone = post(f"/notifications/push/{channel_id}/remove", viewer, csrf_token=csrf)
    assert gone.status_code == 200 and "no longer gets alerts" in gone.text
    actor, action, target, detail, address = trail.one()
    assert (actor, action, target, address) == ("vera", "push.unsubscribe", "push vera Pixel", HERE)
