"""Look-alike hostnames against a real hub: invisible characters refused, NFKC spellings the same NVR, a confusable
skeleton (Unicode TS #39) refused beside the NVR it imitates, also through an enrollment token."""

from __future__ import annotations

import pytest
import websockets

from tests.agent import Agent, hello
from tests.conftest import LiveHub
from tests.test_tokens import create_token

pytestmark = pytest.mark.anyio


async def refused(hub: LiveHub, hostname: str, token: str | None = None) -> dict[str, object]:
    agent = await Agent.connect(hub.ws_url, token or hub.token)
    answer = await agent.request(hello(hostname, 1))
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await agent.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008, closed.value
    return answer


@pytest.mark.parametrize("char", ["\u200b", "\u202e", "\ufeff", "\u2028"])
async def test_lookalikes_invisible_characters_in_a_hostname_are_refused(live_hub: LiveHub, char: str) -> None:
    agent = await Agent.connect(live_hub.ws_url, live_hub.token)
    answer = await agent.request(hello(f"pn-a{char}", 1))
    assert answer["type"] == "error" and answer["code"] == "invalid_message", answer
    assert f"U+{ord(char):04X}" in str(answer["message"])
    await agent.close()
    assert live_hub.get("/api/nvrs").json()["nvrs"] == []


async def test_lookalikes_a_confusable_hostname_is_refused_beside_the_original(live_hub: LiveHub) -> None:
    original, nvr_id = await Agent.register(live_hub.ws_url, live_hub.token, "pn-a", 1)
    answer = await refused(live_hub, "pn-\u0430")  # Cyrillic а
    assert answer["type"] == "error" and answer["code"] == "hostname_not_allowed", answer
    assert "pn-a" in str(answer["message"])
    # A fullwidth spelling is NFKC-normalised: the same NVR, not a second one.
    twin, twin_id = await Agent.register(live_hub.ws_url, live_hub.token, "ｐｎ－ａ", 1)
    assert twin_id == nvr_id
    assert [n["hostname"] for n in live_hub.get("/api/nvrs").json()["nvrs"]] == ["pn-a"]
    await twin.close()
    await original.close()


async def test_lookalikes_an_enrollment_token_cannot_register_a_lookalike(live_hub: LiveHub) -> None:
    first, _ = await Agent.register(live_hub.ws_url, live_hub.token, "site1-nvr", 1)
    enroll = create_token(live_hub, "enroll", "--uses", "1")
    answer = await refused(live_hub, "sіte1-nvr", enroll)  # Ukrainian і
    assert answer["code"] == "hostname_not_allowed", answer
    # Nothing was spent on the refusal: the same token still enrolls a genuinely new NVR.
    agent = await Agent.connect(live_hub.ws_url, enroll)
    assert (await agent.request(hello("site2-nvr", 1)))["type"] == "welcome"
    await agent.close()
    await first.close()
    hostnames = sorted(n["hostname"] for n in live_hub.get("/api/nvrs").json()["nvrs"])
    assert hostnames == ["site1-nvr", "site2-nvr"]
