"""Agent side, the link to the hub: protocol v1 over one WebSocket that reconnects, numbers and replays its frames.

Shared by the simulator and the device prober. The reference for a reliable agent: it reconnects with exponential
backoff and jitter, numbers its frames within a session, keeps them until the hub acknowledges them, and after a
reconnect replays exactly those the hub reports it never committed (welcome.last_seq). The hello carries the whole
state anyway, so frames dropped past the buffer's bound are repaired by the next hello.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import websockets
from websockets.exceptions import InvalidStatus

from nvrmon.agent.redact import redact

log = logging.getLogger("nvrmon.agent.link")

REMOVED_CLOSE = 4004  # an admin removed this NVR from the hub: reconnecting would register it again
REFUSED_STATUSES = (401, 403)  # the hub refuses the upgrade itself: a wrong, revoked or expired token
BUFFER = 10_000  # frames kept while the hub is away or has not acknowledged them
MAX_BACKOFF = 30.0

Hello = Callable[[], dict[str, Any]]
Stats = Callable[[float], dict[str, Any]]  # seconds since this connection opened -> heartbeat stats


class Link:
    """One agent's connection to the hub. `hello()` builds the hello frame from the agent's current state (called on
    every connect); `stats(connected_for)` the heartbeat's stats; `on_token(token)` hears the token an enrollment
    token was exchanged for, so the agent can store it for its next start."""

    def __init__(
        self,
        url: str,
        token: str,
        name: str,
        hello: Hello,
        *,
        stats: Stats | None = None,
        on_token: Callable[[str], None] | None = None,
        heartbeat: float = 10.0,
        verbose: bool = False,
    ) -> None:
        self.url = url
        self.token = token
        self.name = name
        self._hello = hello
        self._stats = stats
        self._on_token = on_token
        self.heartbeat = heartbeat
        # A lone agent says each new connection problem once at INFO; a simulated fleet of thousands stays quiet.
        self._say = log.info if verbose else log.debug
        self.nvr_id: int | None = None
        self.connected = asyncio.Event()
        self.attempted = asyncio.Event()  # set after the first attempt, however it went
        self.session = f"{time.time_ns():x}-{random.getrandbits(32):08x}"
        self.seq = 0
        self.acked = 0
        # Frames not yet acknowledged, oldest first; bounded: past this the oldest go (the next hello repairs them).
        self.unacked: deque[tuple[int, str]] = deque(maxlen=BUFFER)
        # Set by an error `storage_unavailable` until the next ack: the hub holds (or lost) the frames sent, not stored.
        self.hub_degraded = False
        # What the last connection attempt ran into, for the operator: "" once connected; `refused` ends the link.
        self.last_error = ""
        self.refused = ""
        self.removed = False
        self.offline_for = 0.0
        # Frames not yet written on this connection; never more than `unacked` holds (the same bound), so a hub that
        # stops reading (backpressure, a full disk) delays frames but never loses them from the connection.
        self._unsent: deque[str] = deque(maxlen=BUFFER)
        self._wake = asyncio.Event()
        self._drop = asyncio.Event()

    def send(self, frame: dict[str, Any]) -> None:
        """Number the frame and keep it until acknowledged; send now if connected, else after the next welcome."""
        self.seq += 1
        text = json.dumps({**frame, "seq": self.seq})
        self.unacked.append((self.seq, text))
        if self.connected.is_set():
            self._unsent.append(text)
            self._wake.set()

    def drop(self, seconds: float) -> None:
        """Close the connection and stay away for `seconds` (the simulator's power cut)."""
        self.offline_for = seconds
        self._drop.set()

    def _acknowledged(self, seq: int) -> None:
        self.acked = max(self.acked, seq)
        self.hub_degraded = False
        while self.unacked and self.unacked[0][0] <= seq:
            self.unacked.popleft()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Hold the connection until `stop` is set, the hub refuses the token (`refused`) or removes the NVR."""
        attempt = 0
        while stop is None or not stop.is_set():
            if self.offline_for:
                await asyncio.sleep(self.offline_for)
                self.offline_for = 0.0
                self._drop.clear()
            try:
                async with websockets.connect(
                    self.url,
                    additional_headers={"Authorization": f"Bearer {self.token}"},
                    open_timeout=10,
                    max_size=2**20,
                ) as ws:
                    await self._welcome(ws)
                    self._say("%s: connected to the hub (NVR id %s)", self.name, self.nvr_id)
                    attempt = 0
                    await self._session(ws)
                    if ws.close_code == REMOVED_CLOSE:
                        log.info("%s: removed from the hub; this agent stops", self.name)
                        self.removed = True
                        return
            except asyncio.CancelledError:
                raise
            except InvalidStatus as exc:
                code = exc.response.status_code
                self.last_error = f"HTTP {code}"
                if code in REFUSED_STATUSES:
                    self.refused = f"HTTP {code}"
                    self.attempted.set()
                    return
            except Exception as exc:  # any network failure: back off and reconnect
                error = redact(str(exc) or type(exc).__name__)
                if error != self.last_error:
                    self._say("%s: hub not reachable or connection lost (%s); retrying with backoff", self.name, error)
                self.last_error = error
            finally:
                self.connected.clear()
                self._unsent.clear()
            self.attempted.set()
            if self.offline_for:
                continue
            attempt += 1
            await asyncio.sleep(min(MAX_BACKOFF, 0.5 * 2 ** min(attempt, 6)) * random.uniform(0.7, 1.3))

    async def _welcome(self, ws: websockets.ClientConnection) -> None:
        await ws.send(json.dumps({**self._hello(), "session": self.session}))
        welcome = json.loads(await ws.recv())
        if welcome.get("type") != "welcome":
            self.hub_degraded = welcome.get("code") == "storage_unavailable"  # then 1013: back off
            raise ConnectionError(f"hub refused hello: {welcome.get('code')}: {welcome.get('message')}")
        self.nvr_id = welcome["nvr_id"]
        self.last_error = ""
        self.heartbeat = float(welcome.get("heartbeat_interval", self.heartbeat))
        issued = welcome.get("agent_token")
        if isinstance(issued, str) and issued and issued != self.token:
            # Enrollment: this NVR's own token, sent once; every later connection must use it.
            self.token = issued
            log.info("%s: enrolled; the hub issued this NVR its own token", self.name)
            if self._on_token is not None:
                self._on_token(issued)
        self._acknowledged(int(welcome.get("last_seq", 0)))
        self._unsent.extend(text for _, text in self.unacked)  # replay what the hub never committed
        self._wake.set()
        self.connected.set()
        self.attempted.set()

    async def _session(self, ws: websockets.ClientConnection) -> None:
        up_since = time.monotonic()

        async def beat() -> None:
            while True:
                await asyncio.sleep(self.heartbeat * random.uniform(0.9, 1.0))
                frame: dict[str, Any] = {"type": "heartbeat"}
                if self._stats is not None:
                    frame["stats"] = self._stats(time.monotonic() - up_since)
                await ws.send(json.dumps(frame))

        async def drain_incoming() -> None:
            async for raw in ws:
                frame = json.loads(raw)
                if frame.get("type") == "ack":
                    self._acknowledged(int(frame["seq"]))
                elif frame.get("type") == "error" and frame.get("code") == "storage_unavailable":
                    # Retryable: keep every unacknowledged frame; the hub stores what it holds once it can, and
                    # whatever it lost is replayed after the next welcome (welcome.last_seq).
                    if not self.hub_degraded:
                        log.info("%s: hub cannot store now; keeping %d frames", self.name, len(self.unacked))
                    self.hub_degraded = True
                elif frame.get("type") == "error":
                    log.warning("%s: hub says %s: %s", self.name, frame.get("code"), frame.get("message"))

        async def forward() -> None:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._unsent:
                    await ws.send(self._unsent.popleft())

        async def dropped() -> None:
            await self._drop.wait()

        tasks = [asyncio.create_task(t()) for t in (beat, drain_incoming, forward, dropped)]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
