"""Alerts, delivery: the worker that claims due outbox rows, sends them (Apprise, Web Push), and retries with backoff.

Exactly once, as near as a network allows: a row is claimed (state `sending`, attempt counted) in a commit before
the send, and its result committed right after. A hub killed between those two commits leaves the row `sending`;
the next start records it as `unknown` and does not send it again: a duplicate is ruled out, and the one message
that may be lost is the one whose send was in flight at the moment of the crash (visible on the admin page).
A send that fails plainly (refused, an error status, a timeout before connecting) is retried; one that timed out
after it was written (Apprise's timeout, Web Push's after the request went out) is `unknown`, not retried.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from nvrmon.alerts import webpush
from nvrmon.alerts.maintenance import Writer
from nvrmon.settings import Settings
from nvrmon.store.channels import Channel, Channels
from nvrmon.store.database import Database
from nvrmon.store.outbox import Attempt, Outbox, OutboxRow, timeline

log = logging.getLogger("nvrmon.alerts")

LEVELS = frozenset({"failure", "warning", "success", "info"})  # Apprise's notify types, by value
BATCH = 8  # sends in flight at once: one slow channel does not hold up the others for long
TICK = 0.5


@dataclass(frozen=True, slots=True)
class Outcome:
    result: str  # sent | error | unknown (it may have arrived: never retried)
    error: str = ""
    gone: bool = False  # the push service says the subscription ended: the channel goes (after the record)


def send_apprise(url: str, title: str, body: str, level: str, timeout: float) -> Outcome:
    """One Apprise notify, synchronous (Apprise sends with requests/smtplib): run it in a thread."""
    import apprise  # on the first send: Apprise and requests are ~8 MB of memory a hub without channels never needs

    service = apprise.Apprise()
    if not service.add(url):
        return Outcome("error", "Apprise cannot use this URL")
    result = service.notify(
        body=body or title,
        title=title,
        notify_type=apprise.NotifyType(level if level in LEVELS else "info"),
        timeout=timeout,
    )
    if result:
        return Outcome("sent")
    errors = [str(entry).split(" - ", 2)[-1] for entry in result.logs() if " - WARNING - " in str(entry) or
              " - ERROR - " in str(entry)]  # fmt: skip
    if any(r.status == apprise.AppriseResultStatus.TIMEOUT for r in result.results):
        # It may have reached the service; a retry could deliver it twice.
        return Outcome("unknown", "timed out while sending: " + "; ".join(errors)[:400])
    return Outcome("error", "; ".join(errors)[:480] or f"Apprise reported {result.status.name.lower()}")


class Delivery:
    """Sends what the outbox holds; owned by the hub's lifespan (`run`), or used once by `nvrmon channel test`."""

    def __init__(
        self, database: Database, settings: Settings, clock: Callable[[], float] = time.time,
        writer: Writer | None = None,
    ) -> None:  # fmt: skip
        self.writer = writer  # the hub: timeline entries through its transactions (seq, live); None: the CLI
        self.outbox = Outbox(database, settings.node, settings.hub_lease)
        self.channels = Channels(database)
        self.database = database
        self.settings = settings
        self.clock = clock

    async def run(self) -> None:
        recovered = await self.outbox.recover(self.clock())
        if recovered:
            log.warning(
                "%d notification(s) were being sent when the hub stopped; marked unknown, not resent", recovered
            )
        while True:
            try:
                rows = await self.outbox.claim(self.clock(), BATCH)
                if rows:
                    await asyncio.gather(*(self.deliver(row) for row in rows))
                    continue
            except Exception:  # the store refusing writes (disk full): claimed rows stay 'sending' -> unknown
                log.exception("notification delivery step failed; retrying")
            await asyncio.sleep(TICK)

    async def deliver(self, row: OutboxRow) -> str:
        """Send a claimed row and record the attempt; returns its state after it."""
        started = self.clock()
        channel = await self.channels.get(row.channel_id)
        if channel is None:
            return "removed"
        try:
            outcome = await self.send(channel, row.title, row.body, row.level)
        except Exception as exc:  # a library failing in a new way must not stop the worker: it is this row's error
            outcome = Outcome("error", f"{type(exc).__name__}: {exc}"[:480])
        now = self.clock()
        retry_at = None
        if outcome.result == "error" and row.attempts < self.settings.notify_max_attempts:
            delay = self.settings.notify_retry_base * 2 ** (row.attempts - 1)
            retry_at = now + min(delay, self.settings.notify_retry_cap)
        attempt = Attempt(row.id, now, outcome.result, outcome.error, now - started)
        # The result first, in a commit of its own right after the send (the narrowest window); the timeline entry
        # after it, through the hub's writer when there is one, so open incident pages show it live.
        writer = self.writer
        state = await self.outbox.finish(
            row, attempt, None if outcome.gone else retry_at, "" if writer else channel.name
        )
        if state == "sent" and writer is not None and row.incidents:
            try:
                await writer.call(partial(timeline, row=row, channel=channel.name, ts=now))
            except Exception:  # the delivery is recorded; only its line on the timeline is missing
                log.exception("notification %d: could not put it on the incidents' timelines", row.id)
        await self._forget(channel, outcome)
        if state != "sent":
            log.warning("notification %d to %s: %s (%s)", row.id, channel.name, outcome.error, state)
        return state

    async def send(self, channel: Channel, title: str, body: str, level: str) -> Outcome:
        timeout = self.settings.notify_timeout
        if channel.kind == "webpush":
            keys = await webpush.keys(self.database)
            try:
                await webpush.push(
                    keys, channel.target, title, body, self.settings.vapid_subject, timeout,
                    bool(self.settings.webpush_allow_private),
                )  # fmt: skip
            except webpush.Gone as exc:
                return Outcome("error", str(exc), gone=True)
            except webpush.MaybeSent as exc:  # timed out after it was written: it may have arrived, never resent
                return Outcome("unknown", str(exc)[:480])
            except webpush.PushError as exc:
                return Outcome("error", str(exc)[:480])
            except (TimeoutError, RuntimeError) as exc:
                return Outcome("error", f"{type(exc).__name__}: {exc}"[:480])
            return Outcome("sent")
        return await asyncio.to_thread(send_apprise, channel.target, title, body, level, timeout)

    async def test(self, channel: Channel) -> tuple[str, str]:
        """Send a test message now (through the outbox, so it shows among the deliveries); (state, error)."""
        from nvrmon.alerts import messages

        message = messages.test(channel.name)
        row = await self.outbox.add_test(channel.id, message.title, message.body, self.clock())
        started = self.clock()
        try:
            outcome = await self.send(channel, message.title, message.body, message.level)
        except Exception as exc:  # reported to the person testing, like any other failure
            outcome = Outcome("error", f"{type(exc).__name__}: {exc}"[:480])
        now = self.clock()
        state = await self.outbox.finish(row, Attempt(row.id, now, outcome.result, outcome.error, now - started), None)
        await self._forget(channel, outcome)
        return state, outcome.error

    async def _forget(self, channel: Channel, outcome: Outcome) -> None:
        if outcome.gone:  # the browser unsubscribed (or was reset): nothing will reach it again
            log.warning("push subscription %s ended at its push service; channel removed", channel.name)
            await self.channels.remove(channel.id)
