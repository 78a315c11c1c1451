"""Alerts, the input: the shape of incidents and of their log as the notifier reads them (nvrmon/incidents.py).

Structural types, so the incidents vocabulary's frozen dataclasses (Incident, IncidentDevice, IncidentEntry) and the
store reads of nvrmon/store/incidents.py satisfy them as they are; the notifier needs nothing else from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from nvrmon.store import incidents as incident_store
from nvrmon.store.database import Database

# A device's status once it is no longer down (it stays listed in its incident).
NOT_DOWN = frozenset({"recovered", "removed"})
# The transitions that change what a site's group says; acknowledgements, comments and our own "notified" entries
# change nothing a channel is told (an acknowledged incident only stops getting reminders).
TRANSITIONS = frozenset({"opened", "devices", "resolved"})


class Device(Protocol):
    @property
    def nvr_id(self) -> int: ...
    @property
    def camera_id(self) -> int | None: ...
    @property
    def name(self) -> str: ...
    @property
    def hostname(self) -> str: ...
    @property
    def status(self) -> str: ...


class Incident(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def state(self) -> str: ...  # open | acknowledged | resolved
    @property
    def severity(self) -> str: ...  # critical | major | minor
    @property
    def scope(self) -> str: ...  # site | nvr | camera
    @property
    def site(self) -> str: ...
    @property
    def region(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def devices(self) -> Sequence[Device]: ...
    @property
    def opened_at(self) -> float: ...
    @property
    def acknowledged_by(self) -> str: ...
    @property
    def resolved_at(self) -> float | None: ...
    @property
    def merged_into(self) -> int | None: ...  # resolved because a site incident took its devices over


class Entry(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def incident_id(self) -> int: ...
    @property
    def ts(self) -> float: ...
    @property
    def kind(self) -> str: ...


class Feed(Protocol):
    """The incidents' reads the notifier uses (over the hub's database)."""

    async def entries_after(self, after_id: int, limit: int) -> Sequence[Entry]: ...
    async def incident(self, incident_id: int) -> Incident | None: ...
    async def open_incidents(self) -> Sequence[Incident]: ...


def group_key(incident: Incident) -> str:
    """Incidents group by site (Alertmanager's group_by), a site being named within its region."""
    return f"{incident.region}/{incident.site}"


def device_keys(incident: Incident) -> list[str]:
    """What a channel was told about an incident's devices: a new device or status is news, the same ones are not."""
    return sorted(f"{d.nvr_id}:{'' if d.camera_id is None else d.camera_id}:{d.status}" for d in incident.devices)


class StoreFeed:
    """The Feed over the hub's database: the incidents store's reads (nvrmon/store/incidents.py)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def entries_after(self, after_id: int, limit: int) -> Sequence[Entry]:
        return await incident_store.entries_after(self.database, after_id, limit)

    async def incident(self, incident_id: int) -> Incident | None:
        return await incident_store.incident(self.database, incident_id)

    async def open_incidents(self) -> Sequence[Incident]:
        return await incident_store.open_incidents(self.database)
