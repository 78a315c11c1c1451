from __future__ import annotations

import asyncio
import html
import json

import httpx
import pytest
import websockets

from tests.agent import Agent, hello
from tests.conftest import LiveHub
from tests.sse import open_stream

pytestmark = pytest.mark.anyio


def cursor_of(hub: LiveHub) -> str:
    health = hub.get("/healthz").json()
    return f"{health['epoch']}-{health['seq']}"


async def test_hello_row_appears_on_subscribed_stream(live_hub: LiveHub) -> None:
    async with open_stream(live_hub, f"view=nvrs&since={cursor_of(live_hub)}") as stream:
        agent, nvr_id = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-e2e-1", cameras=3)
        msg = await stream.until(lambda m: f"nvr-{nvr_id}" in m.ids("nvr-"))
        assert 'data-status="online"' in msg.data
        assert "nvr-e2e-1" in msg.data
        assert msg.id is not None and msg.id.endswith(f"-{msg.id.rsplit('-', 1)[1]}")
        await agent.close()


async def test_camera_status_fragment_arrives(live_hub: LiveHub) -> None:
    agent, nvr_id = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-e2e-2", cameras=2)
    camera = live_hub.get(f"/api/nvrs/{nvr_id}").json()["cameras"][0]
    async with open_stream(live_hub, f"view=cameras&since={cursor_of(live_hub)}") as stream:
        await agent.send({"type": "camera_status", "camera_id": camera["ext_id"], "status": "offline"})
        msg = await stream.until(lambda m: f"camera-{camera['id']}" in m.ids("camera-"))
        row = msg.data.split(f'id="camera-{camera["id"]}"', 1)[1].split("</tr>", 1)[0]
        assert 'data-status="offline"' in row
    assert live_hub.get(f"/api/cameras/{camera['id']}").json()["status"] == "offline"
    await agent.close()


async def test_disconnect_sets_nvr_and_cameras_offline(live_hub: LiveHub) -> None:
    agent, nvr_id = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-e2e-3", cameras=2)
    async with open_stream(live_hub, f"view=nvr&id={nvr_id}&since={cursor_of(live_hub)}") as stream:
        await agent.close()
        msg = await stream.until(lambda m: f'id="nvr-{nvr_id}-facts"' in m.data)
        assert 'data-status="offline"' in msg.data
    data = live_hub.get(f"/api/nvrs/{nvr_id}").json()
    assert data["status"] == "offline" and data["status_reason"] == "agent disconnected"
    assert {c["display_status"] for c in data["cameras"]} == {"nvr_offline"}


async def test_stale_cursor_replays_missed_changes(live_hub: LiveHub) -> None:
    agent, nvr_id = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-e2e-4", cameras=4)
    before = cursor_of(live_hub)
    cameras = live_hub.get(f"/api/nvrs/{nvr_id}").json()["cameras"]
    for cam in cameras[:3]:
        await agent.send({"type": "camera_status", "camera_id": cam["ext_id"], "status": "offline"})
    await asyncio.sleep(0.5)
    # A browser that was away since `before` reconnects with Last-Event-ID: it gets exactly the rows that changed.
    async with open_stream(live_hub, "view=cameras&since=ignored-0", last_event_id=before) as stream:
        msg = await stream.next()
        assert msg.ids("camera-") == {f"camera-{c['id']}" for c in cameras[:3]}
        assert msg.id == cursor_of(live_hub)
    await agent.close()


async def test_unknown_epoch_gets_full_refresh(live_hub: LiveHub) -> None:
    agent, _ = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-e2e-5", cameras=2)
    async with open_stream(live_hub, "view=nvrs&since=deadbeef-3") as stream:
        msg = await stream.next()
        assert 'id="nvr-rows"' in msg.data and 'hx-swap-oob="true"' in msg.data
    await agent.close()


async def test_bad_frames_get_errors_and_other_agents_are_unaffected(live_hub: LiveHub) -> None:
    good, good_id = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-good", cameras=1)
    bad, _ = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-bad", cameras=1)
    assert (await bad.request("{not json"))["code"] == "invalid_json"
    assert (await bad.request({"type": "launch"}))["code"] == "unknown_type"
    assert (await bad.request({"type": "camera_status", "camera_id": "cam1", "status": "purple"}))["code"] == (
        "invalid_message"
    )
    assert (await bad.request({"type": "camera_status", "camera_id": "nope", "status": "offline"}))["code"] == (
        "unknown_camera"
    )
    reply = await bad.request("x" * 2_000_000)
    assert reply["code"] == "frame_too_large"
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await bad.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    # The well-behaved agent still works and its NVR is untouched.
    await good.send({"type": "camera_status", "camera_id": "cam1", "status": "offline"})
    await asyncio.sleep(0.3)
    data = live_hub.get(f"/api/nvrs/{good_id}").json()
    assert data["status"] == "online" and data["cameras"][0]["status"] == "offline"
    await good.close()


async def test_missing_hello_is_refused(live_hub: LiveHub) -> None:
    agent = await Agent.connect(live_hub.ws_url, live_hub.token)
    reply = await agent.request({"type": "heartbeat"})
    assert reply["code"] == "hello_required"
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await agent.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert live_hub.get("/api/summary").json()["nvrs_total"] == 0


@pytest.mark.parametrize("token", [None, "wrong-token"])
async def test_agent_without_valid_token_is_refused_before_any_state_changes(
    live_hub: LiveHub, token: str | None
) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        agent = await Agent.connect(live_hub.ws_url, token)
        await agent.request(hello("nvr-intruder"))
    assert refused.value.response.status_code == 403
    assert live_hub.get("/api/summary").json()["nvrs_total"] == 0


async def test_status_survives_hub_restart(live_hub: LiveHub) -> None:
    agent, nvr_id = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-e2e-6", cameras=2, offline=(2,))
    await agent.close()
    await asyncio.sleep(0.3)
    live_hub.stop()
    live_hub.start()
    data = live_hub.get(f"/api/nvrs/{nvr_id}").json()
    assert data["status"] == "offline"
    assert [c["status"] for c in data["cameras"]] == ["online", "offline"]


async def test_toasts_travel_inside_the_change_message(live_hub: LiveHub) -> None:
    async with open_stream(live_hub, f"view=nvrs&since={cursor_of(live_hub)}") as stream:
        agent, nvr_id = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-e2e-7", cameras=1)
        msg = await stream.until(lambda m: 'id="toast-inbox"' in m.data)
        assert f'id="nvr-{nvr_id}"' in msg.data  # the row and its notification arrive together
        raw = msg.data.split('data-toasts="', 1)[1].split('"', 1)[0]
        toasts = json.loads(html.unescape(raw))
        assert toasts[0]["level"] == "success" and "nvr-e2e-7" in toasts[0]["title"]
        await agent.close()


async def test_demo_fleet_populates_hub_and_changes_by_itself(start_hub: object) -> None:
    hub = start_hub(DEMO="4")  # type: ignore[operator]
    deadline = asyncio.get_running_loop().time() + 15
    summary: dict[str, int] = {}
    while asyncio.get_running_loop().time() < deadline:
        summary = hub.get("/api/summary").json()
        if summary["nvrs_online"] == 4 and summary["seq"] > 6:
            break
        await asyncio.sleep(0.2)
    assert summary["nvrs_online"] == 4 and summary["cameras_total"] == 32
    assert summary["seq"] > 6  # statuses keep changing after the four registrations


async def test_stream_opens_with_ready_event_and_randomised_retry(live_hub: LiveHub) -> None:
    async with open_stream(live_hub, f"view=nvrs&since={cursor_of(live_hub)}") as stream:
        first = await stream.next(skip_heartbeats=False)
        assert first.event == "ready" and json.loads(first.data) == {"view": "nvrs"}
    raw = httpx.Client(base_url=live_hub.url, headers=live_hub.headers)
    with raw.stream("GET", "/events?view=nvrs") as response:
        head = next(response.iter_lines())
        assert head.startswith("event: ready") or head.startswith("retry:")


async def test_long_poll_holds_until_a_change_then_returns_fragments_and_next_cursor(live_hub: LiveHub) -> None:
    agent, nvr_id = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-poll", cameras=1)
    since = cursor_of(live_hub)
    async with httpx.AsyncClient(base_url=live_hub.url, headers=live_hub.headers, timeout=30) as client:
        pending = asyncio.create_task(client.get(f"/poll?view=nvrs&since={since}"))
        await asyncio.sleep(0.5)
        assert not pending.done()  # nothing changed yet: the request is held
        await agent.send({"type": "camera_status", "camera_id": "cam1", "status": "offline"})
        response = await asyncio.wait_for(pending, 5)
    html = response.text
    assert response.status_code == 200 and f'id="nvr-{nvr_id}"' in html
    assert f'data-cursor="{cursor_of(live_hub)}"' in html and 'hx-trigger="load"' in html
    await agent.close()


async def test_long_poll_and_sse_replay_send_identical_fragments(live_hub: LiveHub) -> None:
    agent, _ = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-same", cameras=3)
    since = cursor_of(live_hub)
    for cam in ("cam1", "cam3"):
        await agent.send({"type": "camera_status", "camera_id": cam, "status": "offline"})
    await asyncio.sleep(0.4)
    polled = live_hub.get(f"/poll?view=cameras&since={since}&wait=0").text
    async with open_stream(live_hub, f"view=cameras&since={since}") as stream:
        replayed = (await stream.next()).data
    fragments = polled.split('<div id="live"', 1)[0]
    assert fragments.replace("\n", "") == replayed.replace("\n", "")
    await agent.close()


async def test_long_poll_without_change_returns_after_timeout_with_same_cursor(start_hub: object) -> None:
    hub = start_hub(POLL_TIMEOUT="1")  # type: ignore[operator]
    since = cursor_of(hub)
    started = asyncio.get_running_loop().time()
    response = hub.get(f"/poll?view=dashboard&since={since}", timeout=10)
    assert 0.9 < asyncio.get_running_loop().time() - started < 5
    assert f'data-cursor="{since}"' in response.text


async def test_sigterm_tells_open_streams_to_come_back_later(live_hub: LiveHub) -> None:
    async with open_stream(live_hub, f"view=nvrs&since={cursor_of(live_hub)}") as stream:
        await stream.next(skip_heartbeats=False)  # ready
        assert live_hub.process is not None
        live_hub.process.terminate()
        bye = await stream.until(lambda m: m.event == "bye", timeout=5)
        assert bye.event == "bye"
    live_hub.process.wait(10)


async def test_numbered_frames_are_acked_and_replays_are_dropped(live_hub: LiveHub) -> None:
    agent = await Agent.connect(live_hub.ws_url, live_hub.token)
    welcome = await agent.request({**hello("nvr-seq", 2), "session": "run-1"})
    assert welcome["last_seq"] == 0
    await agent.send({"type": "camera_status", "camera_id": "cam1", "status": "offline", "seq": 1})
    assert await agent.recv() == {"type": "ack", "seq": 1}
    await agent.close()
    # The agent reconnects, is told seq 1 is committed, and replays 1 (a duplicate) and 2.
    agent = await Agent.connect(live_hub.ws_url, live_hub.token)
    welcome = await agent.request({**hello("nvr-seq", 2, offline=(1,)), "session": "run-1"})
    assert welcome["last_seq"] == 1
    await agent.send({"type": "alert", "severity": "warning", "message": "replayed", "seq": 1})
    await agent.send({"type": "alert", "severity": "warning", "message": "new", "seq": 2})
    ack = await agent.recv()
    if ack["seq"] == 1:  # acks are cumulative: one per commit, so the two may share one
        ack = await agent.recv()
    assert ack == {"type": "ack", "seq": 2}
    messages = [e["message"] for e in live_hub.get("/api/events?limit=10").json()["events"]]
    assert "new" in messages and "replayed" not in messages
    await agent.close()


async def test_cursor_ahead_of_the_head_gets_a_full_refresh_on_stream_and_poll(live_hub: LiveHub) -> None:
    # A browser whose cursor this database never handed out (e.g. the database was restored from an older backup)
    # shows rows the store doesn't have: it must be refreshed, not told it is up to date.
    agent, nvr_id = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-ahead", cameras=2)
    epoch, seq = cursor_of(live_hub).rsplit("-", 1)
    ahead = f"{epoch}-{int(seq) + 1000}"
    async with open_stream(live_hub, "view=nvrs", last_event_id=ahead) as stream:
        msg = await stream.next(timeout=3)
        assert 'id="nvr-rows"' in msg.data and 'hx-swap-oob="true"' in msg.data and f'id="nvr-{nvr_id}"' in msg.data
        assert msg.id == cursor_of(live_hub)
    polled = live_hub.get(f"/poll?view=nvrs&since={ahead}", timeout=10).text
    assert 'id="nvr-rows"' in polled and f'id="nvr-{nvr_id}"' in polled
    assert f'data-cursor="{cursor_of(live_hub)}"' in polled
    await agent.close()
