"""Cameras behind an offline or unknown NVR are not counted online: the same figure in the list, detail and API."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from nvrmon.models import Nvr, Summary
from tests.test_pages import client, register  # noqa: F401  (client is a fixture)


def nvr(status: str, online: int, total: int) -> Nvr:
    return Nvr(1, "nvr-1", "", "West", "", "", "", "", status, "", 0.0, 0.0, 1,  # type: ignore[arg-type]
               cameras_online=online, cameras_total=total)  # fmt: skip


def test_unreachable_nvr_counts_no_camera_online() -> None:
    assert [nvr(s, 5, 8).cameras_online for s in ("online", "stale", "offline", "unknown")] == [5, 5, 0, 0]
    assert Summary.of([nvr("offline", 5, 8)]).cameras_online == nvr("offline", 5, 8).cameras_online == 0


def test_offline_nvr_api_and_detail_agree_with_the_list(client: TestClient) -> None:  # noqa: F811
    nvr_id = register(client, "nvr-counted", ("online", "online", "offline"))
    api = client.get(f"/api/nvrs/{nvr_id}").json()
    assert api["status"] == "offline" and api["cameras_online"] == 0 and api["cameras_total"] == 3
    assert client.get("/api/nvrs").json()["nvrs"][0]["cameras_online"] == 0
    for html in (client.get(f"/nvrs/{nvr_id}?fragment=detail").text, client.get(f"/nvrs/{nvr_id}").text):
        facts = html.split(f'id="nvr-{nvr_id}-facts"', 1)[1].split("</section>", 1)[0]
        shown = re.sub(r"<[^>]+>", "", facts.split("Cameras online", 1)[1].split("</dd>", 1)[0])
        assert shown.split() == ["—", "of", "3", "(NVR", "offline)"], shown
    row = client.get("/nvrs").text.split(f'id="nvr-{nvr_id}"', 1)[1].split("</tr>", 1)[0]
    assert "—" in row and "/3" in row
