"""One Summary producer: the JSON API and the dashboard's KPI cards show the same fleet figures."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

from starlette.testclient import TestClient

from nvrmon.application import create_app
from nvrmon.protocol import CameraInfo, NvrInfo
from nvrmon.settings import Settings
from nvrmon.store.fleet import Store
from tests.conftest import ADMIN, PASSWORD, TOKEN, create_user, login_form_token


async def _earlier_fleet(path: Path) -> None:
    """What a previous hub left: one NVR offline (with cameras), one online that this hub will show as unknown."""
    store = await Store.open(path)
    try:
        async with store.transaction(time.time()) as tx:
            for hostname, statuses in (("nvr-down", ("online", "offline", "online")), ("nvr-was-up", ("online",))):
                nvr_id = (await tx.register_nvr(NvrInfo(hostname, region="East"))).nvr_id
                cams = [CameraInfo(f"c{i}", f"cam {i}", "", s) for i, s in enumerate(statuses)]  # type: ignore[arg-type]
                await tx.replace_cameras(nvr_id, cams)
                if hostname == "nvr-down":
                    await tx.set_nvr_status(nvr_id, "offline", "agent disconnected")
    finally:
        await store.close()


def _kpis(html: str) -> dict[str, int]:
    return {name: int(value) for name, value in re.findall(r'id="kpi-(\w+?)-(\d+)"', html)}


def test_api_summary_equals_the_dashboard_kpis_with_offline_and_unknown_nvrs(tmp_path: Path) -> None:
    path = tmp_path / "summary.db"
    asyncio.run(_earlier_fleet(path))
    create_user(path, ADMIN, "admin", PASSWORD)
    with TestClient(create_app(Settings(db_path=path, agent_token=TOKEN))) as client:
        token = login_form_token(client.get("/login").text)
        client.post("/login", data={"username": ADMIN, "password": PASSWORD, "csrf_token": token})
        with client.websocket_connect("/ws/agent", headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
            ws.send_json({"type": "hello", "protocol": 1, "nvr": {"hostname": "nvr-live", "region": "West"},
                          "cameras": [{"id": "a", "name": "a", "status": "online"},
                                      {"id": "b", "name": "b", "status": "offline"}]})  # fmt: skip
            assert ws.receive_json()["type"] == "welcome"
            api = client.get("/api/summary").json()
            kpis = _kpis(client.get("/").text)
    assert (api["nvrs_total"], api["nvrs_online"], api["nvrs_offline"], api["nvrs_unknown"]) == (3, 1, 1, 1)
    assert (api["cameras_total"], api["cameras_online"], api["cameras_nvr_offline"]) == (6, 1, 3)
    assert kpis == {
        "nvrs_total": api["nvrs_total"],
        "nvrs_online": api["nvrs_online"],
        "nvrs_offline": api["nvrs_offline"],
        "cameras_total": api["cameras_total"],
        "cameras_online": api["cameras_online"],
        "cameras_offline": api["cameras_offline"] + api["cameras_nvr_offline"],
        "nvrs_degraded": api["nvrs_degraded"],
        "cameras_degraded": api["cameras_degraded"],
    }
