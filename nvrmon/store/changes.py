"""Stage 3, what a write transaction touched: the records the hub's writer and the publisher pass along."""

from __future__ import annotations

from dataclasses import dataclass, field

from nvrmon.models import NvrStatus, Severity, Status


@dataclass(frozen=True, slots=True)
class NewEvent:
    kind: str
    severity: Severity
    message: str
    nvr_id: int | None = None
    camera_id: int | None = None


@dataclass(frozen=True, slots=True)
class Registration:
    nvr_id: int
    previous: NvrStatus | None  # None: first time this hostname registers
    agent_session: str
    agent_seq: int


@dataclass(slots=True)
class CameraRef:
    """The hub's mirror of one camera of a connected NVR, so status frames need no database read."""

    id: int
    status: Status
    reason: str = ""  # why it is offline, as stored


@dataclass(slots=True)
class Changes:
    """What one committed transaction touched; the broadcaster's input."""

    seq: int = 0
    nvr_ids: set[int] = field(default_factory=set)
    camera_ids: set[int] = field(default_factory=set)
    event_ids: list[int] = field(default_factory=list)
    incident_ids: set[int] = field(default_factory=set)  # nvrmon/store/incidents.py: incidents the batch changed

    def __bool__(self) -> bool:
        return bool(self.nvr_ids or self.camera_ids or self.event_ids or self.incident_ids)
