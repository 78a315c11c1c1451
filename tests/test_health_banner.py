"""The storage banner reaches open pages live: a real hub whose database really refuses writes, then recovers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.agent import Agent, hello
from tests.sse import SseMessage, open_stream
from tests.test_storage_faults import Outage, alert, frames_until, outage, start_hub_on  # noqa: F401

pytestmark = pytest.mark.anyio


def banner(state: str) -> object:
    def shows(msg: SseMessage) -> bool:
        return 'id="hub-health"' in msg.data and f'data-storage="{state}"' in msg.data

    return shows


async def test_storage_state_is_pushed_to_every_open_page_and_to_pages_that_connect(
    outage: Outage,  # noqa: F811
    tmp_path: Path,
) -> None:
    hub = start_hub_on(outage, tmp_path)
    try:
        agent = await Agent.connect(hub.ws_url, hub.token)
        await agent.request({**hello("nvr-banner", 1), "session": "run-banner"})
        for seq in range(1, 6):
            await agent.send(alert(seq))
        await frames_until(agent, lambda f: f.get("seq") == 5, timeout=10)
        await asyncio.sleep(1.5)  # the hub is idle: nothing else is about to write
        async with (
            open_stream(hub, "view=cameras&since=x-0") as cameras,
            open_stream(hub, "view=dashboard&since=x-0") as dashboard,
        ):
            for stream in (cameras, dashboard):
                assert banner("ok")(await stream.next())  # the refresh carries the banner as it is
            outage.break_storage(hub)
            for seq in range(6, 30):
                await agent.send(alert(seq))
            for stream in (cameras, dashboard):
                msg = await stream.until(banner("degraded"), timeout=outage.notice + 10)
                assert "cannot store" in msg.data and 'hx-swap-oob="true"' in msg.data
                assert msg.id is None  # no rows: the page's cursor stays where it is
            health = hub.get("/healthz").json()
            # A page that connects now, already at the head, still learns of the outage.
            async with open_stream(hub, f"view=nvrs&since={health['epoch']}-{health['seq']}") as late:
                assert banner("degraded")(await late.next())
            polled = hub.get(f"/poll?view=nvrs&since={health['epoch']}-{health['seq']}&wait=0").text
            assert 'data-storage="degraded"' in polled and 'hx-swap-oob="true"' in polled
            outage.repair_storage(hub)
            for stream in (cameras, dashboard):
                msg = await stream.until(banner("ok"), timeout=15)
                assert " hidden" in msg.data and "cannot store" not in msg.data
        await agent.close()
    finally:
        hub.stop()
    assert "Traceback" not in hub.log()
