"""Stage 6, revocation: ends live connections (agent sockets, SSE streams) whose right was revoked or expired.

Revocations happen in the hub (logout, the admin page) or in another process (`nvrmon user remove`, `nvrmon token
revoke`). Every one bumps a counter in the database's meta table; the hub reads that counter every second, so a CLI
revocation reaches live connections within about a second, and an in-process one wakes the check at once. A full check
also runs every 15 s for what expires by itself (session timeouts, embed expiry).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Literal, Protocol, runtime_checkable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nvrmon.settings import Settings
from nvrmon.store.credentials import Credentials

log = logging.getLogger("nvrmon.access.revocation")

HeldKind = Literal["session", "embed", "agent"]
POLL_INTERVAL = 1.0
FULL_CHECK_INTERVAL = 15.0
# A session's last_seen is written at most once a minute (not on every request), and more often when the idle timeout
# is short: an open stream or steady requests must refresh it well within the timeout.
TOUCH_INTERVAL = 60.0
PRUNE_INTERVAL = 3600.0  # timed-out sessions are deleted (they are refused anyway; this keeps the table small)


def touch_interval(idle_timeout: float) -> float:
    """How stale a used session's last_seen may get: a third of the idle timeout, a minute at most."""
    return min(TOUCH_INTERVAL, idle_timeout / 3)


class Revocations:
    def __init__(self, credentials: Credentials, settings: Settings) -> None:
        self.credentials = credentials
        self.settings = settings
        self._held: dict[tuple[HeldKind, str], set[Callable[[], None]]] = {}
        self._wake = asyncio.Event()
        # Called whenever something may have been revoked (before each check, and on notify): caches of rights.
        self.on_check: list[Callable[[], None]] = []
        self._recheck = False
        self.epoch = 0  # how many times they were emptied: a right read before and held after must be checked again

    def hold(self, kind: HeldKind, key: str | int, on_revoke: Callable[[], None]) -> Callable[[], None]:
        """Call `on_revoke` once when the right `key` ends; returns the release function (idempotent)."""
        slot = (kind, str(key))
        self._held.setdefault(slot, set()).add(on_revoke)

        def release() -> None:
            callbacks = self._held.get(slot)
            if callbacks is not None:
                callbacks.discard(on_revoke)
                if not callbacks:
                    del self._held[slot]

        return release

    def held(self, kind: HeldKind) -> list[str]:
        return [key for held_kind, key in self._held if held_kind == kind]

    def notify(self) -> None:
        """Something was revoked in this process: check now rather than at the next poll."""
        self._forget()
        self._wake.set()

    def recheck(self) -> None:
        """A right read before the caches were last emptied is held now: check it (nothing new was revoked)."""
        self._recheck = True
        self._wake.set()

    def _forget(self) -> None:
        self.epoch += 1
        for hook in self.on_check:
            hook()

    async def run(self) -> None:
        generation = await self.credentials.generation()
        last_full = last_touch = time.monotonic()
        last_prune = 0.0
        while True:
            # asyncio.timeout rather than wait_for: on 3.11, wait_for can swallow a cancellation that arrives as the
            # wait completes, and this loop would then outlive the hub's shutdown.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_INTERVAL):
                    await self._wake.wait()
            woken, recheck = self._wake.is_set(), self._recheck
            self._wake.clear()
            self._recheck = False
            try:
                current = await self.credentials.generation()
                if woken or current != generation or time.monotonic() - last_full > FULL_CHECK_INTERVAL:
                    if not recheck or current != generation:
                        self._forget()  # not for a mere recheck: that would make every stream in flight ask again
                    generation, last_full = current, time.monotonic()
                    await self.check(time.time())
                # Sessions with an open stream are in use (a wall display), however short the idle timeout.
                if time.monotonic() - last_touch >= touch_interval(self.settings.session_idle_timeout) - POLL_INTERVAL:
                    last_touch = time.monotonic()
                    await self.credentials.touch_sessions(self.held("session"), time.time())
                if time.monotonic() - last_prune > PRUNE_INTERVAL:
                    last_prune, now = time.monotonic(), time.time()
                    settings = self.settings
                    await self.credentials.prune_sessions(
                        now - settings.session_idle_timeout, now - settings.session_max_age
                    )
            except Exception:
                # A busy or locked database must not end revocation for good: try again at the next poll.
                log.exception("revocation check failed")

    async def check(self, now: float) -> None:
        """End everything held whose right is gone."""
        settings = self.settings
        sessions = self.held("session")
        if sessions:
            live = await self.credentials.live_sessions(
                sessions, now - settings.session_idle_timeout, now - settings.session_max_age
            )
            self._end("session", [key for key in sessions if key not in live])
        embeds = self.held("embed")
        if embeds:
            usable = {str(i) for i in await self.credentials.usable_embeds([int(k) for k in embeds], now)}
            self._end("embed", [key for key in embeds if key not in usable])
        agents = self.held("agent")
        if agents:
            usable = {str(i) for i in await self.credentials.usable_agent_tokens([int(k) for k in agents], now)}
            self._end("agent", [key for key in agents if key not in usable])

    def _end(self, kind: HeldKind, keys: list[str]) -> None:
        for key in keys:
            for on_revoke in self._held.pop((kind, key), set()):
                on_revoke()
        if keys:
            log.info("ended %d live %s connection group(s) whose right was revoked or expired", len(keys), kind)


@runtime_checkable
class Revocable(Protocol):
    """A response that ends itself when its right goes (the SSE stream): `revoke` ends it now; `when_over` runs a
    release once it is over. Revocation then costs nothing per send (compare Bound)."""

    def revoke(self) -> None: ...

    def when_over(self, release: Callable[[], object]) -> None: ...


class Bound:
    """An ASGI response (an SSE stream) that ends as soon as `ended` is set: its session or embed token was revoked
    or expired. `release` runs when the response is over, however it ended."""

    def __init__(self, app: ASGIApp, ended: asyncio.Event, release: Callable[[], object]) -> None:
        self.app = app
        self.ended = ended
        self.release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        response = asyncio.ensure_future(self.app(scope, receive, sending))
        ending = asyncio.ensure_future(self.ended.wait())
        try:
            await asyncio.wait({response, ending}, return_when=asyncio.FIRST_COMPLETED)
            if response.done():
                response.result()
                return
            response.cancel()  # the stream's own cleanup (unsubscribing) runs here
            with contextlib.suppress(asyncio.CancelledError):
                await response
            if started:
                with contextlib.suppress(Exception):  # the client may have gone meanwhile
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
            else:
                await send({"type": "http.response.start", "status": 410, "headers": [(b"content-length", b"0")]})
                await send({"type": "http.response.body", "body": b""})
        finally:
            ending.cancel()
            if not response.done():
                response.cancel()
            self.release()
