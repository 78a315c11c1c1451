"""The admin page: lists accounts and tokens, creates embed and agent tokens (shown once), revokes them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from nvrmon.application import create_app
from nvrmon.settings import Settings
from tests.conftest import PASSWORD, TOKEN, create_user, login_form_token


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[TestClient]:
    create_user(tmp_path / "admin.db", "ada", "admin", PASSWORD)
    create_user(tmp_path / "admin.db", "vera", "viewer", PASSWORD)
    with TestClient(create_app(Settings(db_path=tmp_path / "admin.db", agent_token=TOKEN))) as client:
        token = login_form_token(client.get("/login").text)
        client.post("/login", data={"username": "ada", "password": PASSWORD, "csrf_token": token})
        yield client


def csrf(client: TestClient) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', client.get("/admin").text)
    assert match is not None
    return match.group(1)


def test_admin_page_lists_accounts_without_secrets(admin: TestClient) -> None:
    html = admin.get("/admin").text
    assert "ada" in html and "vera" in html and "$argon2" not in html


def test_creating_an_embed_shows_its_url_once_and_lists_it(admin: TestClient) -> None:
    form = {"view": "nvrs", "region": "North", "origins": "https://portal.example", "expires": "7d", "label": "lobby",
            "csrf_token": csrf(admin)}  # fmt: skip
    created = admin.post("/admin/embeds", data=form)
    assert created.status_code == 200
    url = re.search(r'id="created-embed-url">(http://testserver/embed/emb_[\w-]+)<', created.text)
    assert url is not None
    token = url.group(1).rsplit("/", 1)[1]
    assert admin.get(f"/embed/{token}").status_code == 200
    later = admin.get("/admin").text
    assert "nvrs in region North" in later and "https://portal.example" in later and token not in later


def test_invalid_embed_form_explains_what_is_wrong(admin: TestClient) -> None:
    form = {"view": "nvr", "origins": "https://*.example", "csrf_token": csrf(admin)}
    response = admin.post("/admin/embeds", data=form)
    assert response.status_code == 400 and "form-error" in response.text


def test_revoking_an_embed_from_the_admin_page(admin: TestClient) -> None:
    created = admin.post("/admin/embeds", data={"view": "kpis", "expires": "1d", "csrf_token": csrf(admin)})
    url = re.search(r"/embed/(emb_[\w-]+)<", created.text)
    assert url is not None
    embed_id = re.search(r'data-embed-id="(\d+)"', created.text)
    assert embed_id is not None
    admin.post(f"/admin/embeds/{embed_id.group(1)}/revoke", data={"csrf_token": csrf(admin)})
    assert admin.get(f"/embed/{url.group(1)}").status_code == 404
    assert "revoked" in admin.get("/admin").text


def test_creating_and_revoking_an_agent_token(admin: TestClient) -> None:
    created = admin.post("/admin/tokens", data={"hostname": "nvr-web", "csrf_token": csrf(admin)})
    token = re.search(r'id="created-agent-token">(nvrt_[\w-]+)<', created.text)
    assert token is not None
    with admin.websocket_connect("/ws/agent", headers={"Authorization": f"Bearer {token.group(1)}"}) as ws:
        ws.send_json({"type": "hello", "protocol": 1, "nvr": {"hostname": "nvr-web"}})
        assert ws.receive_json()["type"] == "welcome"
    token_id = re.search(r'data-token-id="(\d+)"', created.text)
    assert token_id is not None
    admin.post(f"/admin/tokens/{token_id.group(1)}/revoke", data={"csrf_token": csrf(admin)})
    assert "revoked" in admin.get("/admin").text


def test_admin_forms_without_csrf_token_change_nothing(admin: TestClient) -> None:
    assert admin.post("/admin/embeds", data={"view": "kpis"}).status_code == 403
    assert "No embed tokens yet." in admin.get("/admin").text
