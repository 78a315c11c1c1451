"""Notifier input for tests that run without the incidents engine: incidents and their log, kept in memory.

Shaped as the contract of issue 11 gives nvrmon/incidents.py and nvrmon/store/incidents.py (frozen dataclasses,
entries_after / incident / open_incidents); the end-to-end tests use the real engine through a real hub.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Device:
    nvr_id: int
    camera_id: int | None
    name: str
    hostname: str
    status: str


@dataclass(frozen=True)
class Incident:
    id: int
    state: str
    severity: str
    scope: str
    site: str
    region: str
    title: str
    devices: tuple[Device, ...]
    opened_at: float
    acknowledged_at: float | None = None
    acknowledged_by: str = ""
    ack_note: str = ""
    resolved_at: float | None = None
    updated_seq: int = 0
    merged_into: int | None = None


@dataclass(frozen=True)
class Entry:
    id: int
    incident_id: int
    ts: float
    kind: str
    actor: str = ""
    note: str = ""


@dataclass
class MemoryFeed:
    incidents: dict[int, Incident] = field(default_factory=dict)
    log: list[Entry] = field(default_factory=list)

    def _append(self, incident_id: int, ts: float, kind: str) -> None:
        self.log.append(Entry(len(self.log) + 1, incident_id, ts, kind))

    def open(self, ts: float, site: str, nvrs: list[str], *, region: str = "North", severity: str = "critical",
             cameras: list[str] | None = None, first_nvr: int = 1) -> Incident:  # fmt: skip
        devices = [Device(first_nvr + n, None, host, host, "offline") for n, host in enumerate(nvrs)]
        devices += [Device(first_nvr, 100 + n, name, nvrs[0] if nvrs else "", "offline") for n, name in
                    enumerate(cameras or [])]  # fmt: skip
        scope = "site" if len(nvrs) > 1 else "nvr" if nvrs else "camera"
        incident = Incident(len(self.incidents) + 1, "open", severity, scope, site, region,
                            f"{site}: {', '.join(nvrs or cameras or [])} offline", tuple(devices), ts)  # fmt: skip
        self.incidents[incident.id] = incident
        self._append(incident.id, ts, "opened")
        return incident

    def acknowledge(self, incident_id: int, ts: float, who: str = "alice") -> None:
        self.incidents[incident_id] = replace(
            self.incidents[incident_id], state="acknowledged", acknowledged_at=ts, acknowledged_by=who
        )
        self._append(incident_id, ts, "acknowledged")

    def resolve(self, incident_id: int, ts: float) -> None:
        self.incidents[incident_id] = replace(self.incidents[incident_id], state="resolved", resolved_at=ts)
        self._append(incident_id, ts, "resolved")

    def add_device(self, incident_id: int, ts: float, device: Device) -> None:
        incident = self.incidents[incident_id]
        self.incidents[incident_id] = replace(incident, devices=(*incident.devices, device))
        self._append(incident_id, ts, "devices")

    async def entries_after(self, after_id: int, limit: int) -> list[Entry]:
        return [e for e in self.log if e.id > after_id][:limit]

    async def incident(self, incident_id: int) -> Incident | None:
        return self.incidents.get(incident_id)

    async def open_incidents(self) -> list[Incident]:
        return [i for i in self.incidents.values() if i.state in ("open", "acknowledged")]
