from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from nvrmon.application import create_app
from nvrmon.settings import Settings
from tests.conftest import ADMIN, PASSWORD, TOKEN, create_user, login_form_token


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """A TestClient logged in as an admin (through the login form)."""
    create_user(tmp_path / "pages.db", ADMIN, "admin", PASSWORD)
    app = create_app(Settings(db_path=tmp_path / "pages.db", agent_token=TOKEN))
    with TestClient(app) as client:
        token = login_form_token(client.get("/login").text)
        login = client.post("/login", data={"username": ADMIN, "password": PASSWORD, "csrf_token": token})
        assert login.status_code == 200 and login.url.path == "/"
        yield client


def register(client: TestClient, hostname: str, statuses: tuple[str, ...] = ("online", "offline")) -> int:
    with client.websocket_connect("/ws/agent", headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
        ws.send_json({"type": "hello", "protocol": 1, "nvr": {"hostname": hostname, "region": "West"},
                      "cameras": [{"id": f"c{i}", "name": f"{hostname} cam {i}", "status": s}
                                  for i, s in enumerate(statuses, 1)]})  # fmt: skip
        welcome = ws.receive_json()
        assert welcome["type"] == "welcome"
        ws.send_json({"type": "alert", "severity": "warning", "message": "Disk usage above 90%"})
    nvr_id = int(welcome["nvr_id"])
    # The socket has closed; the hub marks the NVR offline after the alert (frames apply in order).
    for _ in range(200):
        if client.get(f"/api/nvrs/{nvr_id}").json()["status"] == "offline":
            return nvr_id
        time.sleep(0.01)
    raise AssertionError("NVR never went offline after its agent disconnected")


def test_pages_render_server_side_with_cursor_in_connect_url(client: TestClient) -> None:
    nvr_id = register(client, "nvr-page")
    for path in ["/", "/nvrs", "/cameras", f"/nvrs/{nvr_id}"]:
        response = client.get(path)
        assert response.status_code == 200, path
        match = re.search(
            r'hx-sse:connect="/events\?view=(\w+)(?:&amp;id=\d+)?&amp;since=([0-9a-f]+-\d+)"', response.text
        )
        assert match is not None, path


def test_nvr_page_shows_status_without_javascript(client: TestClient) -> None:
    nvr_id = register(client, "nvr-js-off")
    html = client.get("/nvrs").text
    row = html.split(f'id="nvr-{nvr_id}"', 1)[1].split("</tr>", 1)[0]
    # The test client's WebSocket closed, so the NVR is offline, and the page says so in markup, not only colour.
    assert 'data-status="offline"' in row and "Offline" in row


def test_camera_page_distinguishes_nvr_offline(client: TestClient) -> None:
    register(client, "nvr-cams")
    html = client.get("/cameras").text
    assert html.count('data-status="nvr_offline"') >= 2 and "NVR offline" in html


def test_dashboard_shows_kpis_and_recent_alerts(client: TestClient) -> None:
    register(client, "nvr-dash", ("online",))
    html = client.get("/").text
    assert re.search(r'data-kpi="nvrs_total">1<', html)
    assert "Disk usage above 90%" in html


def test_unknown_device_pages_are_404(client: TestClient) -> None:
    assert client.get("/nvrs/999", headers={"Accept": "text/html"}).status_code == 404
    assert client.get("/cameras/999").status_code == 404


def test_static_assets_are_vendored_with_version_and_license(client: TestClient) -> None:
    html = client.get("/").text
    for name in ["htmx-4.0.1.min.js", "hx-sse-4.0.1.js", "hx-upsert-4.0.1.js", "transport.js", "ui.js", "app.css"]:
        match = re.search(rf'"(/static/{re.escape(name)}\?v=[0-9a-f]+)"', html)
        assert match is not None, name
        assert client.get(match.group(1)).status_code == 200
    assert client.get("/static/htmx-LICENSE.txt").status_code == 200


def test_events_rejects_bad_view_with_400_and_unknown_device_with_404(client: TestClient) -> None:
    assert client.get("/events?view=bogus").status_code == 400
    assert client.get("/events?view=nvr&id=abc").status_code == 400
    assert client.get("/events?view=nvr&id=4242").status_code == 404


def test_api_reports_state_and_validates_filters(client: TestClient) -> None:
    nvr_id = register(client, "nvr-api")
    summary = client.get("/api/summary").json()
    assert summary["nvrs_total"] == 1 and summary["cameras_total"] == 2
    nvr = client.get(f"/api/nvrs/{nvr_id}").json()
    assert nvr["hostname"] == "nvr-api" and len(nvr["cameras"]) == 2
    cameras = client.get("/api/cameras", params={"status": "nvr_offline", "nvr": nvr_id}).json()
    assert cameras["count"] == 2
    camera_id = cameras["cameras"][0]["id"]
    assert client.get(f"/api/cameras/{camera_id}").json()["display_status"] == "nvr_offline"
    assert client.get("/api/nvrs", params={"status": "offline"}).json()["count"] == 1
    assert client.get("/api/cameras", params={"status": "sideways"}).status_code == 400
    assert client.get("/api/cameras", params={"nvr": "x"}).status_code == 400
    assert client.get("/api/nvrs/999").status_code == 404
    assert client.get("/healthz").json()["status"] == "ok"


def test_responses_carry_security_headers(client: TestClient) -> None:
    response = client.get("/")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


def test_nvr_list_filters_sort_and_page_live_in_the_url(client: TestClient) -> None:
    offline = register(client, "nvr-down")
    html = client.get("/nvrs", params={"status": "offline", "sort": "-hostname", "junk": "1"}).text
    assert f'id="nvr-{offline}"' in html
    # The stream subscribes to exactly this view: normalised filters in its `id`, unknown parameters dropped.
    assert "view=nvrs&amp;id=status%3Doffline%26sort%3D-hostname&amp;since=" in html
    assert 'aria-sort="descending"' in html and 'data-facet="status:offline" aria-current="true"' in html
    assert f'id="nvr-{offline}"' not in client.get("/nvrs", params={"status": "online"}).text
    assert 'data-stat="matching">0<' in client.get("/nvrs", params={"q": "no-such-host"}).text


def test_page_past_the_end_redirects_to_the_last_page(client: TestClient) -> None:
    register(client, "nvr-one")
    response = client.get("/nvrs", params={"page": "9"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/nvrs"


def test_camera_layout_toggle_is_remembered_per_browser(client: TestClient) -> None:
    register(client, "nvr-tiles")
    assert 'id="camera-rows"' in client.get("/cameras").text
    tiles = client.get("/cameras", params={"layout": "grid"})
    assert 'id="camera-tiles"' in tiles.text and 'class="tile' in tiles.text
    assert 'id="camera-tiles"' in client.get("/cameras").text  # the cookie remembers the choice
    assert 'id="camera-rows"' in client.get("/cameras", params={"layout": "table"}).text


def test_detail_fragment_is_the_page_content_without_the_page(client: TestClient) -> None:
    nvr_id = register(client, "nvr-modal")
    fragment = client.get(f"/nvrs/{nvr_id}", params={"fragment": "detail"}).text
    assert fragment.startswith(f'<div id="nvr-{nvr_id}-detail"') and "<html" not in fragment
    assert f'id="nvr-{nvr_id}-cameras"' in fragment and f'id="nvr-{nvr_id}-events"' in fragment
    page = client.get(f"/nvrs/{nvr_id}").text
    assert f'id="nvr-{nvr_id}-detail"' in page and "<html" in page


def test_pages_have_no_inline_scripts_handlers_or_styles(client: TestClient) -> None:
    nvr_id = register(client, "nvr-csp")
    camera_id = client.get(f"/api/nvrs/{nvr_id}").json()["cameras"][0]["id"]
    for path in ["/", "/nvrs", "/cameras", "/cameras?layout=grid", f"/nvrs/{nvr_id}", f"/cameras/{camera_id}"]:
        html = client.get(path).text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert not re.search(r"\son[a-z]+=", html), path
        assert not re.search(r"\sstyle=", html), path
