"""Test helpers for incidents: raw agents closed at the end of a test, polling, and the incidents API."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.agent import Agent
from tests.conftest import LiveHub


def incidents(hub: LiveHub, **params: str) -> list[dict[str, Any]]:
    response = hub.get("/api/incidents", params=params, timeout=5)
    assert response.status_code == 200, response.text
    return list(response.json()["incidents"])


def active(hub: LiveHub) -> list[dict[str, Any]]:
    return incidents(hub, state="active")


async def eventually(check: Callable[[], Any], timeout: float = 8.0) -> Any:
    """Poll until `check` returns something truthy; fails with the last value it saw."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    value = check()
    while not value:
        assert loop.time() < deadline, f"not reached in {timeout} s; last saw {value!r}"
        await asyncio.sleep(0.1)
        value = check()
    return value


def engine_failures(hub: LiveHub) -> list[str]:
    return [line for line in hub.log().splitlines() if "incidents could not be derived" in line]


class Agents:
    """Raw protocol agents of one test, all closed at its end."""

    def __init__(self) -> None:
        self.opened: list[Agent] = []

    async def register(self, hub: LiveHub, name: str, cameras: int = 4, **kw: Any) -> tuple[Agent, int]:
        agent, nvr_id = await Agent.register(hub.ws_url, hub.token, name, cameras, **kw)
        self.opened.append(agent)
        return agent, nvr_id

    async def site(self, hub: LiveHub, names: list[str], region: str) -> dict[str, tuple[Agent, int]]:
        """NVRs of one site (tests/agent.py names the site "<region> 1")."""
        return {name: await self.register(hub, name, region=region) for name in names}


@pytest.fixture
async def agents() -> AsyncIterator[Agents]:
    made = Agents()
    yield made
    for agent in made.opened:
        with contextlib.suppress(Exception):
            await agent.close()
