"""Stage 2, the hub's work: an agent connection as the hub sees it, the work items it queues, and the batch journal."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from nvrmon.inventory import Edit, InventoryError, Outcome
from nvrmon.models import NvrStatus, Status
from nvrmon.protocol import Message
from nvrmon.store.fleet import CameraRef, Transaction

# Sent to the agent's outbox to make its connection close: (code, reason).
Close = tuple[int, str]


@dataclass(eq=False)
class AgentSession:
    """One agent connection as the hub sees it. Only the hub's writer task mutates it after hello."""

    conn_id: int
    remote: str
    outbox: asyncio.Queue[str | Close] = field(default_factory=lambda: asyncio.Queue(256))
    nvr_id: int | None = None
    hostname: str = ""
    cameras: dict[str, CameraRef] = field(default_factory=dict)
    last_seen: float = field(default_factory=time.time)
    status: NvrStatus = "offline"
    agent_session: str = ""
    last_seq: int = 0  # highest numbered frame committed for agent_session (earlier ones are duplicates)

    def post(self, frame: str | Close) -> None:
        """Queue a frame for the agent without waiting; an agent that stops reading loses frames, not the hub."""
        with contextlib.suppress(asyncio.QueueFull):
            self.outbox.put_nowait(frame)


@dataclass(frozen=True, slots=True)
class Gone:
    reason: str


@dataclass(frozen=True, slots=True)
class Stale:
    """The sweeper saw an NVR miss its heartbeat grace period."""


@dataclass(frozen=True, slots=True)
class Expired:
    """The sweeper saw no frame for heartbeat_timeout seconds."""


@dataclass(frozen=True, slots=True)
class SettleRestart:
    """The start-up grace period is over: NVRs still unknown are offline."""


@dataclass(frozen=True, slots=True)
class Steady:
    nvr_id: int


@dataclass(frozen=True, slots=True)
class Prune:
    before: float
    every: float = 0.0  # how often the sweeper asks: hubs sharing a database prune once per this between them


@dataclass(frozen=True, slots=True)
class Remove:
    """An admin removes an NVR (decommissioned, or simulated): its rows become tombstones, its agent is closed."""

    hostname: str
    actor: str


@dataclass(frozen=True, slots=True)
class Outside:
    """Another process (the CLI) committed seqs the hub did not write: publish what they stamped."""


@dataclass(eq=False)
class InventoryWork:
    """A fleet inventory edit for the writer (applied by nvrmon/ingest/inventory.py); it fills `outcome` or `error`
    while applying, read by the caller after the commit."""

    edit: Edit
    actor: str
    address: str = ""  # where the request came from, for the audit log
    outcome: Outcome | None = None
    error: InventoryError | None = None


@dataclass(frozen=True, slots=True)
class Call:
    """Work another room hands the writer (acknowledging an incident, a maintenance window), run in its transaction;
    the function returns what the caller awaits. The hub gets it as a value, so ingest imports nothing of that room."""

    fn: Callable[[Transaction], Awaitable[int]]


Work = Message | Gone | Stale | Expired | SettleRestart | Steady | Prune | Remove | Outside | InventoryWork | Call


@dataclass(eq=False)
class Item:
    session: AgentSession
    work: Work
    done: asyncio.Future[int] | None = None


@dataclass(frozen=True, slots=True)
class _Saved:
    nvr_id: int | None
    hostname: str
    cameras: dict[str, CameraRef]
    last_seen: float
    status: NvrStatus
    agent_session: str
    last_seq: int


class Journal:
    """What a batch changed in the hub's memory, kept until its transaction commits.

    Applying a frame updates the hub's mirror (sessions, camera statuses, last_seq) before the COMMIT; when the
    COMMIT fails, `rollback` puts every touched value back, so a retry sees exactly what the database has and a
    frame that never committed is never taken for a duplicate (and acknowledged).
    """

    def __init__(self, sessions: dict[int, AgentSession]) -> None:
        self._sessions = sessions
        self._sessions_before: dict[int, AgentSession] | None = None
        self._saved: dict[AgentSession, _Saved] = {}
        self._cameras: list[tuple[CameraRef, Status, str]] = []
        self._undo: list[Callable[[], None]] = []

    def keep(self, session: AgentSession) -> None:
        """Call before the first change to `session` in this batch."""
        if session not in self._saved:
            self._saved[session] = _Saved(
                session.nvr_id, session.hostname, session.cameras, session.last_seen, session.status,
                session.agent_session, session.last_seq,
            )  # fmt: skip

    def keep_sessions(self) -> None:
        """Call before changing which connection speaks for an NVR."""
        if self._sessions_before is None:
            self._sessions_before = dict(self._sessions)

    def set_camera(self, ref: CameraRef, status: Status, reason: str = "") -> None:
        self._cameras.append((ref, ref.status, ref.reason))
        ref.status, ref.reason = status, reason

    def on_rollback(self, undo: Callable[[], None]) -> None:
        self._undo.append(undo)

    def rollback(self) -> None:
        for undo in reversed(self._undo):
            undo()
        for ref, status, reason in reversed(self._cameras):
            ref.status, ref.reason = status, reason
        for session, saved in self._saved.items():
            session.nvr_id, session.hostname, session.cameras, session.last_seen = (
                saved.nvr_id, saved.hostname, saved.cameras, saved.last_seen,
            )  # fmt: skip
            session.status, session.agent_session, session.last_seq = (
                saved.status, saved.agent_session, saved.last_seq,
            )  # fmt: skip
        if self._sessions_before is not None:
            self._sessions.clear()
            self._sessions.update(self._sessions_before)
