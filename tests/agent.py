"""A scripted agent for tests: a real WebSocket client speaking protocol v1, one frame at a time."""

from __future__ import annotations

import json
from typing import Any

import websockets


def hello(hostname: str, cameras: int = 2, *, region: str = "North", offline: tuple[int, ...] = ()) -> dict[str, Any]:
    return {
        "type": "hello",
        "protocol": 1,
        "nvr": {"hostname": hostname, "device_name": f"{hostname} recorder", "region": region, "site": f"{region} 1",
                "model": "NV-8000", "firmware": "4.2.1", "ip_address": "10.0.0.2"},
        "cameras": [{"id": f"cam{i}", "name": f"Cam {i}", "ip_address": f"10.0.0.{10 + i}",
                     "status": "offline" if i in offline else "online"} for i in range(1, cameras + 1)],
    }  # fmt: skip


class Agent:
    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def connect(cls, url: str, token: str | None) -> Agent:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return cls(await websockets.connect(url, additional_headers=headers, open_timeout=5))

    @classmethod
    async def register(cls, url: str, token: str, hostname: str, cameras: int = 2, **kw: Any) -> tuple[Agent, int]:
        agent = await cls.connect(url, token)
        welcome = await agent.request(hello(hostname, cameras, **kw))
        assert welcome["type"] == "welcome", welcome
        return agent, int(welcome["nvr_id"])

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def recv(self, timeout: float = 5) -> dict[str, Any]:
        import asyncio

        return dict(json.loads(await asyncio.wait_for(self.ws.recv(), timeout)))

    async def request(self, frame: dict[str, Any] | str) -> dict[str, Any]:
        await self.send(frame)
        return await self.recv()

    async def close(self) -> None:
        await self.ws.close()
