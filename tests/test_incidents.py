"""Incidents from real outages: a real hub, raw protocol agents, the JSON API; topology, recovery and restarts."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from datetime import datetime

import pytest

from tests.conftest import LiveHub, run_cli
from tests.incident_helpers import Agents, active, agents, engine_failures, eventually, incidents
from tests.sse import open_stream

pytestmark = pytest.mark.anyio
__all__ = ["agents"]  # the fixture


async def test_whole_site_down_is_one_site_incident_and_cameras_raise_none(live_hub: LiveHub, agents: Agents) -> None:
    site = await agents.site(live_hub, ["north-a", "north-b", "north-c"], "North")
    await agents.site(live_hub, ["south-a"], "South")
    for agent, _ in site.values():
        await agent.close()
    found = await eventually(lambda: [i for i in active(live_hub) if len(i["devices"]) == 3])
    assert len(active(live_hub)) == 1, active(live_hub)
    incident = found[0]
    assert (incident["scope"], incident["state"], incident["severity"]) == ("site", "open", "critical")
    assert incident["site"] == "North 1" and incident["region"] == "North"
    assert sorted(d["hostname"] for d in incident["devices"]) == ["north-a", "north-b", "north-c"]
    assert {d["kind"] for d in incident["devices"]} == {"nvr"}
    everything = incidents(live_hub)
    assert not [i for i in everything if i["scope"] == "camera"], "cameras behind a down NVR raise no incidents"
    # NVR incidents opened while the site was going down were merged into the site's, not left beside it.
    assert all(i["merged_into"] == incident["id"] for i in everything if i["id"] != incident["id"])

    for name in site:
        await agents.register(live_hub, name, region="North")
    await eventually(lambda: not active(live_hub))
    detail = live_hub.get(f"/api/incidents/{incident['id']}").json()
    assert detail["state"] == "resolved" and detail["resolved_at"]
    kinds = [e["kind"] for e in detail["timeline"]]
    assert kinds[0] == "opened" and kinds[-1] == "resolved"
    assert "all devices back after" in detail["timeline"][-1]["note"]
    assert not engine_failures(live_hub)


async def test_one_nvr_down_is_one_incident_and_its_cameras_show_nvr_offline(live_hub: LiveHub, agents: Agents) -> None:
    site = await agents.site(live_hub, ["east-a", "east-b"], "East")
    agent, nvr_id = site["east-a"]
    await agent.close()
    found = await eventually(lambda: active(live_hub))
    await asyncio.sleep(0.5)  # nothing else follows
    assert len(active(live_hub)) == 1
    incident = found[0]
    assert (incident["scope"], incident["severity"], incident["title"]) == ("nvr", "critical", "NVR east-a offline")
    assert [(d["nvr_id"], d["camera_id"], d["status"]) for d in incident["devices"]] == [(nvr_id, None, "offline")]
    cameras = live_hub.get(f"/api/nvrs/{nvr_id}").json()["cameras"]
    assert {c["display_status"] for c in cameras} == {"nvr_offline"}

    await agents.register(live_hub, "east-a", region="East")
    await eventually(lambda: not active(live_hub))
    resolved = live_hub.get(f"/api/incidents/{incident['id']}").json()
    assert resolved["devices"][0]["status"] == "recovered"
    notes = [e["note"] for e in resolved["timeline"] if e["kind"] == "devices"]
    assert any("east-a recovered after" in note for note in notes), notes


async def test_camera_down_on_a_healthy_nvr_is_its_own_incident(live_hub: LiveHub, agents: Agents) -> None:
    site = await agents.site(live_hub, ["west-a", "west-b"], "West")
    agent, nvr_id = site["west-a"]
    camera = live_hub.get(f"/api/nvrs/{nvr_id}").json()["cameras"][1]
    await agent.send({"type": "camera_status", "camera_id": camera["ext_id"], "status": "offline"})
    found = await eventually(lambda: active(live_hub))
    incident = found[0]
    assert (incident["scope"], incident["severity"]) == ("camera", "major")
    assert [(d["camera_id"], d["name"]) for d in incident["devices"]] == [(camera["id"], camera["name"])]
    await agent.send({"type": "camera_status", "camera_id": camera["ext_id"], "status": "online"})
    await eventually(lambda: not active(live_hub))
    assert len(incidents(live_hub)) == 1


async def test_hub_killed_mid_outage_neither_duplicates_nor_loses_incidents(
    start_hub: Callable[..., LiveHub], agents: Agents
) -> None:
    hub = start_hub(STARTUP_GRACE="20")
    site = await agents.site(hub, ["gate-a", "gate-b"], "Gate")
    agent_a, _ = site["gate-a"]
    agent_b, nvr_b = site["gate-b"]
    camera = hub.get(f"/api/nvrs/{nvr_b}").json()["cameras"][0]
    await agent_b.send({"type": "camera_status", "camera_id": camera["ext_id"], "status": "offline"})
    await agent_a.close()
    before = await eventually(lambda: len(active(hub)) == 2 and active(hub))
    assert {i["scope"] for i in before} == {"nvr", "camera"}

    hub.stop(signal.SIGKILL)
    hub.start()
    # gate-b is back with its camera still down; gate-a stays down.
    await agents.register(hub, "gate-b", region="Gate", offline=(1,))
    await asyncio.sleep(1.0)
    after = active(hub)
    assert sorted(i["id"] for i in after) == sorted(i["id"] for i in before), (before, after)
    assert len(incidents(hub)) == 2

    await agents.register(hub, "gate-a", region="Gate")
    await eventually(lambda: len(active(hub)) == 1)
    assert active(hub)[0]["scope"] == "camera"
    assert not engine_failures(hub)


async def test_flapping_nvr_keeps_one_minor_incident_while_unstable(
    start_hub: Callable[..., LiveHub], agents: Agents
) -> None:
    hub = start_hub(FLAP_THRESHOLD="3", FLAP_WINDOW="60")
    agent, _ = (await agents.site(hub, ["mast-a", "mast-b"], "Mast"))["mast-a"]
    for _ in range(3):  # offline, online, offline: the third change marks it unstable
        await agent.close()
        await eventually(lambda: api_nvr(hub, "mast-a")["status"] == "offline")
        agent, _ = await agents.register(hub, "mast-a", region="Mast")
    found = await eventually(lambda: [i for i in active(hub) if i["devices"][0]["status"] == "unstable"])
    assert len(active(hub)) == 1
    assert (found[0]["severity"], found[0]["scope"]) == ("minor", "nvr")
    assert api_nvr(hub, "mast-a")["unstable"] is True


def api_nvr(hub: LiveHub, hostname: str) -> dict[str, object]:
    return next(n for n in hub.get("/api/nvrs").json()["nvrs"] if n["hostname"] == hostname)


async def test_removing_a_down_nvr_resolves_its_incident(live_hub: LiveHub, agents: Agents) -> None:
    site = await agents.site(live_hub, ["silo-a", "silo-b"], "Silo")
    await site["silo-a"][0].close()
    incident = (await eventually(lambda: active(live_hub)))[0]
    # Another process, next to the running hub: the hub publishes what it committed, and derives from it.
    removed = await asyncio.to_thread(run_cli, live_hub.database, "nvr", "remove", "silo-a")
    assert removed.returncode == 0, removed.stderr
    await eventually(lambda: not active(live_hub))
    detail = live_hub.get(f"/api/incidents/{incident['id']}").json()
    assert detail["state"] == "resolved" and detail["devices"][0]["status"] == "removed"


def cursor_of(hub: LiveHub) -> str:
    health = hub.get("/healthz").json()
    return f"{health['epoch']}-{health['seq']}"


async def test_incident_pages_get_changes_live_and_on_replay_from_a_cursor(live_hub: LiveHub, agents: Agents) -> None:
    site = await agents.site(live_hub, ["yard-a", "yard-b"], "Yard")
    before = cursor_of(live_hub)
    async with (
        open_stream(live_hub, f"view=incidents&since={before}") as listing,
        open_stream(live_hub, f"view=dashboard&since={before}") as dashboard,
    ):
        await site["yard-a"][0].close()
        row = await listing.until(lambda m: 'id="incident-rows"' in m.data and "NVR yard-a offline" in m.data)
        assert 'data-state="open"' in row.data
        await dashboard.until(lambda m: 'id="incident-panel"' in m.data and "NVR yard-a offline" in m.data)
    incident = active(live_hub)[0]
    # A page that was away (its cursor from before the outage) gets the incident on reconnect, as it is now.
    async with open_stream(live_hub, f"view=incident&id={incident['id']}&since={before}") as late:
        msg = await late.until(lambda m: 'id="incident-summary"' in m.data)
        assert "NVR yard-a offline" in msg.data and 'id="incident-timeline"' in msg.data
    assert "Traceback" not in live_hub.log()


async def test_nvr_incidents_open_before_the_whole_site_went_down_are_merged_into_it(
    live_hub: LiveHub, agents: Agents
) -> None:
    site = await agents.site(live_hub, ["cove-a", "cove-b", "cove-c"], "Cove")
    await site["cove-a"][0].close()
    first = (await eventually(lambda: active(live_hub)))[0]
    await site["cove-b"][0].close()
    second = (await eventually(lambda: [i for i in active(live_hub) if i["id"] != first["id"]]))[0]
    assert (first["scope"], second["scope"]) == ("nvr", "nvr")
    await site["cove-c"][0].close()
    merged = await eventually(lambda: [i for i in active(live_hub) if i["scope"] == "site"])
    assert [i["id"] for i in active(live_hub)] == [first["id"]], "the oldest NVR incident became the site's"
    assert len(merged[0]["devices"]) == 3 and merged[0]["title"] == "Site Cove 1 down (Cove)"
    gone = live_hub.get(f"/api/incidents/{second['id']}").json()
    assert (gone["state"], gone["merged_into"]) == ("resolved", first["id"])
    assert gone["timeline"][-1]["note"] == f"merged into incident #{first['id']} (the whole site is down)"
    assert len(incidents(live_hub)) == 2


async def test_blips_shorter_than_the_incident_delay_open_nothing(
    start_hub: Callable[..., LiveHub], agents: Agents
) -> None:
    hub = start_hub(INCIDENT_DELAY="2")
    agent, nvr_id = (await agents.site(hub, ["reef-a", "reef-b"], "Reef"))["reef-a"]
    blip, lasting = hub.get(f"/api/nvrs/{nvr_id}").json()["cameras"][:2]
    await agent.send({"type": "camera_status", "camera_id": blip["ext_id"], "status": "offline"})
    await agent.send({"type": "camera_status", "camera_id": lasting["ext_id"], "status": "offline"})
    await asyncio.sleep(0.5)
    await agent.send({"type": "camera_status", "camera_id": blip["ext_id"], "status": "online"})
    await asyncio.sleep(1.0)
    assert incidents(hub) == [], "nothing before the delay"
    found = await eventually(lambda: active(hub), timeout=4)  # the hub's own timer, no further change needed
    assert [d["camera_id"] for i in found for d in i["devices"]] == [lasting["id"]]
    opened = datetime.fromisoformat(found[0]["opened_at"]).timestamp()
    down = datetime.fromisoformat(found[0]["devices"][0]["down_since"]).timestamp()
    assert opened - down >= 1.5, "the device's own down time, not the incident's"
    await asyncio.sleep(0.5)
    assert len(incidents(hub)) == 1
