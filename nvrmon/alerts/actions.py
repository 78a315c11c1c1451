"""Alerts, what operators do: acknowledge an incident, comment on it, add and remove maintenance windows; each
through the hub's single writer, so the change takes a seq and reaches every open page after its commit; each is
audited (who, from `address`) in the transaction that makes it, so the change and its entry commit together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

from nvrmon.alerts.engine import Engine
from nvrmon.alerts.maintenance import Maintenance, Writer
from nvrmon.incidents import MAX_NOTE, Incident, Window, iso
from nvrmon.store import incidents as sql
from nvrmon.store.audit import record
from nvrmon.store.database import Database
from nvrmon.store.maintenance import MAX_WINDOWS
from nvrmon.store.transaction import Changes, Transaction

log = logging.getLogger("nvrmon.alerts.actions")


class ActionError(ValueError):
    """A request that can't be done; `status` is its HTTP status (404 no such incident, 409 not now, 400 bad)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _note(note: str, *, required: bool) -> str:
    note = " ".join(note.split())  # one line on the timeline
    if len(note) > MAX_NOTE:
        raise ActionError(f"the note is longer than {MAX_NOTE} characters")
    if required and not note:
        raise ActionError("write a comment first")
    return note


def _target(incident: Incident) -> str:
    """How the audit log names an incident: its number and title, which say what it was about without a lookup."""
    return f"#{incident.id} {incident.title}"


def _span(window: Window) -> str:
    ends = "open-ended" if window.ends_at is None else f"until {iso(window.ends_at)}"
    weekly = (
        f", {window.time_from}-{window.time_to} {window.tz} on days {','.join(map(str, window.days))}"
        if window.recurring
        else ""
    )
    return f"from {iso(window.starts_at)} {ends}{weekly}"


class Alerts:
    """The alerts room as the lifespan owns it: the engine (the hub's derive hook), the windows, and the actions."""

    def __init__(self, database: Database, incident_delay: float = 0.0) -> None:
        self.database = database
        self.maintenance = Maintenance()
        self.engine = Engine(self.maintenance, incident_delay, shared=database.backend != "sqlite")
        self.writer: Writer | None = None  # the hub, set by the application once it exists
        # Set after each commit that changed incidents (a doorbell for the notifier, which reads entries_after).
        self.committed = asyncio.Event()

    def published(self, changes: Changes) -> None:
        """After a commit (the application calls it beside the publisher): ring if incidents changed."""
        if changes.incident_ids:
            self.committed.set()

    def _writer(self) -> Writer:
        assert self.writer is not None, "Alerts.writer is set by the application"
        return self.writer

    async def start(self) -> None:
        """Windows from the store, then one pass over every site (incidents of a database that had none yet)."""
        await self.maintenance.load(self.database)
        try:
            await self._writer().call(self.engine.reconcile_all)
        except Exception as exc:  # the store refuses writes now: each site is reconciled at its next change
            log.warning("incidents were not reconciled at start: %r", exc)

    async def _existing(self, incident_id: int) -> Incident:
        found = await sql.incident(self.database, incident_id)
        if found is None:
            raise ActionError("no such incident", 404)
        return found

    async def acknowledge(self, incident_id: int, actor: str, note: str = "", *, address: str = "") -> Incident:
        note = _note(note, required=False)
        before = await self._existing(incident_id)
        if before.state != "open":
            raise ActionError(self._why_not(before), 409)

        async def write(tx: Transaction) -> int:
            done = await sql.acknowledge(tx, incident_id, actor, note)
            if done:
                await record(tx.connection, actor, "incident.ack", _target(before), note, address, now=tx.now)
            return int(done)

        if not await self._writer().call(write):
            raise ActionError(self._why_not(await self._existing(incident_id)), 409)  # changed in between
        return await self._existing(incident_id)

    @staticmethod
    def _why_not(incident: Incident) -> str:
        if incident.state == "acknowledged":
            return f"already acknowledged by {incident.acknowledged_by}"
        return "this incident is resolved"

    async def comment(self, incident_id: int, actor: str, note: str, *, address: str = "") -> Incident:
        note = _note(note, required=True)
        before = await self._existing(incident_id)

        async def write(tx: Transaction) -> int:
            await record(tx.connection, actor, "incident.comment", _target(before), note, address, now=tx.now)
            return await sql.append_entry(tx, incident_id, kind="comment", actor=actor, note=note)

        await self._writer().call(write)
        return await self._existing(incident_id)

    async def create_window(self, window: Window, *, address: str = "") -> Window:
        async def write(tx: Transaction) -> int:
            window_id = await self.maintenance.create(tx, window)
            if window_id:
                detail = f"id {window_id}, {_span(window)}, reason: {window.reason}"
                await record(tx.connection, window.created_by, "maintenance.create", window.match.describe(), detail,
                             address, now=tx.now)  # fmt: skip
            return window_id

        window_id = await self._call_on_windows(write)
        if not window_id:
            raise ActionError(f"the hub keeps at most {MAX_WINDOWS} maintenance windows; delete old ones first", 409)
        log.info("maintenance window %d (%s) created by %s", window_id, window.match.describe(), window.created_by)
        return replace(window, id=window_id)

    async def delete_window(self, window_id: int, actor: str, *, address: str = "") -> None:
        async def write(tx: Transaction) -> int:
            # The writer's copy of the windows is the store's (it is replaced in each transaction that changes them).
            window = next((w for w in self.maintenance.windows if w.id == window_id), None)
            deleted = await self.maintenance.delete(tx, window_id)
            if deleted:
                target = window.match.describe() if window is not None else f"window {window_id}"
                detail = f"id {window_id}" + (f", reason: {window.reason}" if window is not None else "")
                await record(tx.connection, actor, "maintenance.delete", target, detail, address, now=tx.now)
            return deleted

        if not await self._call_on_windows(write):
            raise ActionError("no such maintenance window", 404)
        log.info("maintenance window %d deleted by %s", window_id, actor)

    async def _call_on_windows(self, write: Callable[[Transaction], Awaitable[int]]) -> int:
        """The hub's copy of the windows is replaced inside the transaction; if that never commits, reload it."""
        try:
            return await self._writer().call(write)
        except BaseException:
            await self.maintenance.load(self.database)
            raise
