"""Stage 2, one writer batch: the side effects gathered while applying it, released only after its COMMIT."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nvrmon.ingest.session import AgentSession, Close, Journal
from nvrmon.models import Status, Toast
from nvrmon.store.fleet import NewEvent, Transaction


@dataclass
class Effects:
    """Nothing here leaves the hub unless the transaction commits: acks, frames and closes are posted afterwards, and
    on a failed COMMIT the journal puts the hub's memory back as the database has it."""

    journal: Journal
    events: list[NewEvent] = field(default_factory=list)
    toasts: list[Toast] = field(default_factory=list)
    flips: dict[int, tuple[Status, str]] = field(default_factory=dict)  # camera id -> (status, reason)
    details: dict[int, str] = field(default_factory=dict)  # camera id -> stream detail JSON, stored unstamped
    flip_nvrs: set[int] = field(default_factory=set)
    beats: dict[int, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    frames: list[tuple[AgentSession, str]] = field(default_factory=list)
    closes: list[tuple[AgentSession, Close]] = field(default_factory=list)
    acks: dict[AgentSession, int] = field(default_factory=dict)
    agent_seqs: dict[int, tuple[str, int]] = field(default_factory=dict)

    def notify(
        self, level: str, title: str, body: str = "", device: str = "", kind: str = "", change: str = ""
    ) -> None:
        """A toast for the browsers (level success | error | warning | info), published only after the commit."""
        self.toasts.append(Toast(level, title, body, device, kind, change=change))

    async def flush_flips(self, tx: Transaction) -> None:
        """Write buffered camera status flips; done before anything that must observe them, keeping frame order."""
        if self.flips:
            await tx.set_camera_states(
                (camera_id, status, reason) for camera_id, (status, reason) in self.flips.items()
            )
            for nvr_id in self.flip_nvrs:
                await tx.touch_nvr(nvr_id)
            self.flips, self.flip_nvrs = {}, set()

    def flip_events(self, session: AgentSession, flips: list[tuple[int, str, Status, str]]) -> None:
        for camera_id, name, status, reason in flips:
            online = status == "online"
            text = f"Camera {name} on {session.hostname} is {status}" + (f" ({reason})" if reason else "")
            self.events.append(NewEvent("status", "info" if online else "warning", text, session.nvr_id, camera_id))
            body = f"{session.hostname}: {reason}" if reason else session.hostname
            self.notify("success" if online else "error", f"Camera {name} {status}", body, name, "camera")

    async def write(self, tx: Transaction) -> None:
        """The batch's buffered rows, last in the transaction."""
        await self.flush_flips(tx)
        await tx.record_details((detail, camera_id) for camera_id, detail in self.details.items())
        await tx.add_events(self.events)
        await tx.record_heartbeats((nvr_id, ts, stats) for nvr_id, (ts, stats) in self.beats.items())
        await tx.record_agent_seqs((nvr_id, name, seq) for nvr_id, (name, seq) in self.agent_seqs.items())
