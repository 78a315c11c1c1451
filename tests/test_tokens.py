"""Agent tokens against a real hub: hostname binding, revocation from another process, enrollment, rate and
connection limits, and the fleet token switch."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
import websockets

from nvrmon.access import agent_tokens as tokens
from tests.agent import Agent, hello
from tests.conftest import LiveHub, run_cli

pytestmark = pytest.mark.anyio


def create_token(hub: LiveHub, *args: str) -> str:
    result = run_cli(hub.database, "token", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


async def closed_with(agent: Agent) -> tuple[list[dict[str, object]], int | None]:
    """Every frame until the hub closes the connection, and the close code."""
    frames = []
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            frames.append(await agent.recv(timeout=5))
    return frames, closed.value.rcvd.code if closed.value.rcvd else None


async def test_nvr_token_speaks_only_for_its_own_hostname(live_hub: LiveHub) -> None:
    token = create_token(live_hub, "create", "nvr-own")
    assert token.startswith("nvrt_") and len(token) > 40
    intruder = await Agent.connect(live_hub.ws_url, token)
    reply = await intruder.request(hello("nvr-someone-else"))
    assert reply["code"] == "hostname_not_allowed"
    frames, code = await closed_with(intruder)
    assert code == 1008
    assert live_hub.get("/api/summary").json()["nvrs_total"] == 0
    agent, nvr_id = await Agent.register(live_hub.ws_url, token, "nvr-own")
    assert live_hub.get(f"/api/nvrs/{nvr_id}").json()["status"] == "online"
    await agent.close()


async def test_revoking_a_token_with_the_cli_closes_its_live_connection_at_once(live_hub: LiveHub) -> None:
    token = create_token(live_hub, "create", "nvr-revoked")
    agent, nvr_id = await Agent.register(live_hub.ws_url, token, "nvr-revoked")
    revoked_at = time.monotonic()
    assert run_cli(live_hub.database, "token", "revoke", "nvr-revoked").returncode == 0  # another process
    frames, code = await closed_with(agent)
    took = time.monotonic() - revoked_at
    assert [f.get("code") for f in frames] == ["token_revoked"] and code == 1008
    assert took < 3, took
    with pytest.raises(websockets.InvalidStatus) as refused:
        await Agent.connect(live_hub.ws_url, token)
    assert refused.value.response.status_code == 403
    assert live_hub.get(f"/api/nvrs/{nvr_id}").json()["status"] == "offline"


async def test_revoking_one_nvrs_token_leaves_other_agents_connected(live_hub: LiveHub) -> None:
    doomed = create_token(live_hub, "create", "nvr-doomed")
    kept = create_token(live_hub, "create", "nvr-kept")
    agent_doomed, _ = await Agent.register(live_hub.ws_url, doomed, "nvr-doomed")
    agent_kept, kept_id = await Agent.register(live_hub.ws_url, kept, "nvr-kept")
    fleet, fleet_id = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-fleet")
    run_cli(live_hub.database, "token", "revoke", "nvr-doomed")
    await closed_with(agent_doomed)
    await agent_kept.send({"type": "heartbeat"})
    await fleet.send({"type": "heartbeat"})
    await asyncio.sleep(0.3)
    assert live_hub.get(f"/api/nvrs/{kept_id}").json()["status"] == "online"
    assert live_hub.get(f"/api/nvrs/{fleet_id}").json()["status"] == "online"
    await agent_kept.close()
    await fleet.close()


async def test_expired_token_is_refused(start_hub: Callable[..., LiveHub]) -> None:
    hub = start_hub()
    token = create_token(hub, "create", "nvr-brief", "--expires", "1s")
    await asyncio.sleep(1.1)
    with pytest.raises(websockets.InvalidStatus) as refused:
        await Agent.connect(hub.ws_url, token)
    assert refused.value.response.status_code == 403


async def test_enrollment_token_registers_a_new_nvr_once_and_hands_it_its_own_token(live_hub: LiveHub) -> None:
    enroll = create_token(live_hub, "enroll", "--uses", "1")
    agent = await Agent.connect(live_hub.ws_url, enroll)
    welcome = await agent.request(hello("nvr-enrolled"))
    assert welcome["type"] == "welcome" and str(welcome["agent_token"]).startswith("nvrt_")
    assert (await agent.request(hello("nvr-enrolled")))["type"] == "welcome"  # a second hello: no new token
    await agent.close()
    with pytest.raises(websockets.InvalidStatus) as spent:  # a second NVR may not enroll
        await Agent.connect(live_hub.ws_url, enroll)
    assert spent.value.response.status_code == 403
    # The issued token is an ordinary per-NVR token for that hostname.
    own, _ = await Agent.register(live_hub.ws_url, str(welcome["agent_token"]), "nvr-enrolled")
    await own.close()
    listed = run_cli(live_hub.database, "token", "list").stdout
    assert "nvr-enrolled" in listed and str(welcome["agent_token"]) not in listed and enroll not in listed


async def test_enrollment_cannot_take_over_a_registered_hostname(live_hub: LiveHub) -> None:
    existing, _ = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-existing")
    enroll = create_token(live_hub, "enroll", "--uses", "5")
    hijack = await Agent.connect(live_hub.ws_url, enroll)
    assert (await hijack.request(hello("nvr-existing")))["code"] == "enrollment_refused"
    _, code = await closed_with(hijack)
    assert code == 1008
    await existing.send({"type": "heartbeat"})  # the real agent was never replaced
    await existing.close()


async def test_agent_flooding_frames_is_told_then_closed(start_hub: Callable[..., LiveHub]) -> None:
    hub = start_hub(AGENT_RATE="20", AGENT_BURST="30")
    agent, nvr_id = await Agent.register(hub.ws_url, hub.token, "nvr-flood")
    for i in range(40):
        await agent.send({"type": "alert", "severity": "info", "message": f"m{i}"})
    first = await agent.recv()
    assert first["code"] == "rate_limited"
    await asyncio.sleep(0.5)
    for i in range(100):  # keeps flooding regardless
        await agent.send({"type": "alert", "severity": "info", "message": f"n{i}"})
    frames, code = await closed_with(agent)
    assert code == 1008 and frames[-1]["code"] == "rate_limited"
    stored = [e["message"] for e in hub.get("/api/events?limit=500").json()["events"]]
    assert 25 <= sum(m.startswith(("m", "n")) for m in stored) < 80  # the burst and the rate, not the flood


async def test_agents_within_the_rate_are_never_limited(start_hub: Callable[..., LiveHub]) -> None:
    hub = start_hub(AGENT_RATE="50", AGENT_BURST="10")
    agent, _ = await Agent.register(hub.ws_url, hub.token, "nvr-calm")
    for i in range(20):
        await agent.send({"type": "alert", "severity": "info", "message": f"calm {i}"})
        await asyncio.sleep(0.03)
    with pytest.raises(TimeoutError):
        await agent.recv(timeout=0.3)  # no error frame
    await agent.close()


async def test_connections_beyond_the_limit_are_told_to_come_back_later(start_hub: Callable[..., LiveHub]) -> None:
    hub = start_hub(MAX_AGENT_CONNECTIONS="2")
    first, _ = await Agent.register(hub.ws_url, hub.token, "nvr-c1")
    second, _ = await Agent.register(hub.ws_url, hub.token, "nvr-c2")
    third = await Agent.connect(hub.ws_url, hub.token)
    frames, code = await closed_with(third)
    assert [f["code"] for f in frames] == ["server_busy"] and code == 1013
    await first.close()
    await asyncio.sleep(0.2)
    fourth, _ = await Agent.register(hub.ws_url, hub.token, "nvr-c3")  # a slot is free again
    for agent in (second, fourth):
        await agent.close()


async def test_fleet_token_can_be_switched_off(start_hub: Callable[..., LiveHub]) -> None:
    hub = start_hub(FLEET_TOKEN="0")
    with pytest.raises(websockets.InvalidStatus) as refused:
        await Agent.connect(hub.ws_url, hub.token)
    assert refused.value.response.status_code == 403
    own = create_token(hub, "create", "nvr-only-own")
    agent, _ = await Agent.register(hub.ws_url, own, "nvr-only-own")
    await agent.close()


def test_tokens_are_stored_as_sha256_hashes_only() -> None:
    token = tokens.new_token("nvr")
    assert tokens.hash_token(token) != token and len(tokens.hash_token(token)) == 64
    assert tokens.new_token("nvr") != token


@pytest.mark.parametrize(("text", "seconds"), [("45s", 45), ("30m", 1800), ("12h", 43200), ("7d", 604800)])
def test_durations_parse(text: str, seconds: float) -> None:
    assert tokens.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "7", "0d", "-1d", "1y", "99999999d"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(tokens.TokenError):
        tokens.parse_duration(text)
