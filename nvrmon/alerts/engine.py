"""Alerts, the incidents engine: inside each writer transaction, the incidents its committed change implies.

It runs last in the hub's transaction (Hub(derive=...)), so an incident opens, grows, or resolves with the very
change that caused it, under the same seq, and is published with it after the commit. It is level-triggered: for each
site a change touched, it compares what is down now with the open incidents and writes the difference. A hub
restart therefore resumes exactly (the incidents committed with the state they follow), and a replayed or repeated
change opens nothing twice (there is at most one open incident per site, NVR or camera, enforced by the store).

Topology suppresses children: every NVR of a site offline is one site incident (an NVR incident already open there
becomes it); an NVR down is one incident and its cameras raise none (they can't be seen); a camera down on a
reachable NVR is its own incident. A device in maintenance opens nothing and joins nothing; when its window ends
while it is still down, the window's end stamps it, and this opens its incident then, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from dataclasses import dataclass

from nvrmon.alerts.maintenance import Maintenance, Writer
from nvrmon.incidents import DOWN, Incident, IncidentDevice, IncidentScope, severity, span, worst
from nvrmon.store import incidents as sql
from nvrmon.store.errors import is_storage_failure
from nvrmon.store.incidents import GroupCamera, GroupNvr
from nvrmon.store.transaction import Transaction

log = logging.getLogger("nvrmon.alerts.engine")


@dataclass(frozen=True, slots=True)
class Device:
    """A device of the site as the engine sees it now."""

    key: str
    nvr_id: int
    camera_id: int | None
    name: str
    hostname: str
    condition: str  # up | gone | unknown (can't be seen) | offline | degraded | unstable
    maintenance: bool
    since: float = 0.0  # when its status last changed
    waited: bool = True  # down for incident_delay already (a shorter blip opens nothing)

    @property
    def eligible(self) -> bool:
        """Down for long enough, and not in maintenance: may open or join an incident."""
        return self.condition in DOWN and not self.maintenance and self.waited

    def record(self, now: float) -> IncidentDevice:
        return IncidentDevice(self.nvr_id, self.camera_id, self.name, self.hostname, self.condition, self.since or now)


def nvr_condition(nvr: GroupNvr) -> str:
    if nvr.removed:
        return "gone"
    if nvr.status in ("offline", "unknown", "degraded"):
        return nvr.status  # unknown: the hub restarted and its agent is not back yet: neither down nor up
    return "unstable" if nvr.unstable else "up"


def camera_condition(nvr: GroupNvr | None, camera: GroupCamera) -> str:
    if nvr is None or nvr.removed or camera.removed:
        return "gone"
    if nvr.status in ("offline", "unknown"):
        return "unknown"  # its NVR is down: the camera's last status says nothing
    if camera.status == "online":
        return "up"
    return "degraded" if camera.status == "degraded" else "offline"


class Engine:
    def __init__(self, maintenance: Maintenance, delay: float = 0.0, shared: bool = False) -> None:
        self.maintenance = maintenance
        self.shared = shared  # other hubs write the same database: their maintenance windows count here too
        self.delay = delay  # settings.incident_delay
        self._due: dict[tuple[str, str], float] = {}  # sites with a device waiting out the delay -> when
        self._wake = asyncio.Event()

    async def derive(self, tx: Transaction) -> None:
        """The hub's Derive hook: the sites of the NVRs and cameras this transaction changed."""
        changes = tx.changes
        if not (changes.nvr_ids or changes.camera_ids):
            return
        if self.shared:
            await self.maintenance.refresh(tx)
        await self._run(tx, await sql.groups_of(tx.connection, changes.nvr_ids, changes.camera_ids))

    async def reconcile_all(self, tx: Transaction) -> int:
        """Every site (at start-up: a database from before incidents existed, or a change an engine failure left)."""
        await self._run(tx, await sql.all_groups(tx.connection))
        return len(tx.changes.incident_ids)

    async def _run(self, tx: Transaction, groups: set[tuple[str, str]]) -> None:
        try:
            async with sql.savepoint(tx):
                for region, site in sorted(groups):
                    done = Reconcile(tx, self.maintenance, region, site, self.delay)
                    await done.run()
                    if done.due:
                        self._due[(region, site)] = min(done.due, self._due.get((region, site), done.due))
                        self._wake.set()
        except Exception as exc:
            if is_storage_failure(exc):
                raise
            # A defect here must not cost the agents' frames: the fleet change commits, the incidents stay as they
            # were, and the next change to these sites (or the next start) reconciles them again.
            log.exception("incidents could not be derived for %d sites", len(groups))

    async def run(self, writer: Writer) -> None:
        """Look again at sites whose down devices have waited out incident_delay (the hub's lifespan owns this)."""
        while True:
            due = min(self._due.values(), default=None)
            wait = 60.0 if due is None else max(0.0, due - time.time()) + 0.01
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            self._wake.clear()
            now = time.time()
            ready = {group for group, when in self._due.items() if when <= now}
            for group in ready:
                del self._due[group]
            if not ready:
                continue
            try:
                await writer.call(functools.partial(self._reconcile, ready))
            except Exception as exc:  # the store refuses writes now: try these sites again shortly
                log.warning("could not open incidents that waited out their delay: %r", exc)
                self._due.update(dict.fromkeys(ready, time.time() + 1.0))

    async def _reconcile(self, groups: set[tuple[str, str]], tx: Transaction) -> int:
        await self._run(tx, groups)
        return len(groups)


class Reconcile:
    """One site: what is down now against its open incidents, and the writes that make them agree."""

    def __init__(self, tx: Transaction, maintenance: Maintenance, region: str, site: str, delay: float) -> None:
        self.tx, self.db, self.now = tx, tx.connection, tx.now
        self.delay = delay
        self.due = 0.0  # the earliest moment a device still waiting out the delay may open an incident
        self.maintenance = maintenance
        self.region, self.site = region, site
        self.members: dict[int, dict[str, IncidentDevice]] = {}  # incident id -> device key -> its row
        self.scopes: dict[int, IncidentScope] = {}
        self.added: dict[int, list[str]] = {}

    async def run(self) -> None:
        group = await sql.group(self.db, self.region, self.site)
        for incident in group.incidents:
            self.members[incident.id] = {d.key: d for d in incident.devices}
            self.scopes[incident.id] = incident.scope
        devices = self._devices(group.nvrs, group.cameras)
        owner = {key: iid for iid, devs in self.members.items() for key in devs}
        nvrs = [devices[f"nvr:{n.id}"] for n in group.nvrs if not n.removed]
        site_down = (bool(self.site) and len(nvrs) >= 2 and all(d.condition == "offline" for d in nvrs)
                     and any(d.eligible for d in nvrs))  # fmt: skip
        waiting = [d.since + self.delay for d in devices.values()
                   if d.condition in DOWN and not d.maintenance and not d.waited and d.key not in owner]  # fmt: skip
        self.due = min(waiting, default=0.0)
        site_incident = next((i.id for i in group.incidents if i.scope == "site"), None)
        if site_down and site_incident is None:
            site_incident = await self._site_incident(group.incidents, owner) or None
        for device in nvrs:
            if device.eligible and device.key not in owner:
                if site_incident is not None:
                    await self._join(site_incident, device)
                else:
                    await self._open("nvr", device.key, f"NVR {device.hostname} {device.condition}", [device])
                owner[device.key] = site_incident or 0
        for device in devices.values():
            if device.camera_id is not None and device.eligible and device.key not in owner:
                title = f"Camera {device.name} on {device.hostname} {device.condition}"
                await self._open("camera", device.key, title, [device])
        for incident in group.incidents:
            await self._follow(incident, devices)
        for incident_id in set(self.added) - {i.id for i in group.incidents}:
            await self._follow(None, devices, incident_id)

    def _devices(self, nvrs: list[GroupNvr], cameras: list[GroupCamera]) -> dict[str, Device]:
        found: dict[str, Device] = {}
        by_id = {n.id: n for n in nvrs}
        window = self.maintenance
        for n in nvrs:
            covered = window.nvr_window(n.hostname, self.site, self.region, self.now) is not None
            found[f"nvr:{n.id}"] = Device(f"nvr:{n.id}", n.id, None, n.hostname, n.hostname, nvr_condition(n), covered,
                                          n.since, self._waited(n.since))  # fmt: skip
        for c in cameras:
            nvr = by_id.get(c.nvr_id)
            hostname = nvr.hostname if nvr else ""
            covered = window.camera_window(c.id, hostname, self.site, self.region, self.now) is not None
            found[f"camera:{c.id}"] = Device(f"camera:{c.id}", c.nvr_id, c.id, c.name, hostname,
                                             camera_condition(nvr, c), covered, c.since,
                                             self._waited(c.since))  # fmt: skip
        return found

    def _waited(self, since: float) -> bool:
        return self.delay <= 0 or self.now - since >= self.delay

    async def _site_incident(self, incidents: list[Incident], owner: dict[str, int]) -> int:
        """The whole site is down: its oldest open NVR incident becomes the site's, the others merge into it."""
        title = f"Site {self.site} down" + (f" ({self.region})" if self.region else "")
        nvr_incidents = [i for i in incidents if i.scope == "nvr"]
        if not nvr_incidents:
            return await self._open("site", self._site_key, title, [])
        keep, *others = nvr_incidents
        seq = await self.tx.seq()
        await sql.update(self.db, keep.id, seq, scope="site", scope_key=self._site_key, title=title)
        self.scopes[keep.id] = "site"
        self.tx.changes.incident_ids.add(keep.id)
        await self._log(keep.id, "devices", "the whole site is down: this became the site's incident")
        for other in others:
            await sql.move_devices(self.db, other.id, keep.id)
            for key, device in self.members.pop(other.id).items():
                self.members[keep.id].setdefault(key, device)
                owner[key] = keep.id
            self.tx.changes.incident_ids.add(other.id)
            await sql.update(self.db, other.id, seq, state="resolved", resolved_at=self.now, merged_into=keep.id)
            await self._log(other.id, "resolved", f"merged into incident #{keep.id} (the whole site is down)")
            await self._log(keep.id, "devices", f"incident #{other.id} merged into this one")
        return keep.id

    @property
    def _site_key(self) -> str:
        return f"site:{self.region}/{self.site}"

    async def _open(self, scope: IncidentScope, key: str, title: str, devices: list[Device]) -> int:
        level = worst([severity(scope, d.condition) for d in devices]) if devices else "critical"
        incident_id = await sql.create(
            self.db, await self.tx.seq(), self.now, scope=scope, key=key, severity=level, region=self.region,
            site=self.site, title=title,
        )  # fmt: skip
        if not incident_id:
            return 0  # open already under another site (the device moved): that site's pass follows it
        self.members[incident_id], self.scopes[incident_id] = {}, scope
        self.tx.changes.incident_ids.add(incident_id)
        await self._log(incident_id, "opened", title)
        for device in devices:
            await self._join(incident_id, device)
        return incident_id

    async def _join(self, incident_id: int, device: Device) -> None:
        record = device.record(self.now)
        await sql.add_device(self.db, incident_id, device.key, record)
        self.members[incident_id][device.key] = record
        self.added.setdefault(incident_id, []).append(f"{device.name} {device.condition}")

    async def _follow(self, incident: Incident | None, devices: dict[str, Device], incident_id: int = 0) -> None:
        """Bring one open incident's devices up to date; resolve it when none is down any more."""
        iid = incident.id if incident is not None else incident_id
        if iid not in self.members:
            return  # merged into the site's incident above
        notes = [f"added {', '.join(self.added[iid])}"] if iid in self.added else []
        changed = bool(notes)
        for key, row in list(self.members[iid].items()):
            condition = devices[key].condition if key in devices else "gone"
            if condition in ("up", "gone") and row.down:
                status = "recovered" if condition == "up" else "removed"
                await sql.set_device(self.db, iid, key, status, self.now)
                self.members[iid][key] = _with(row, status, self.now)
                notes.append(f"{row.name} {status} after {span(self.now - row.down_since)}")
            elif condition in DOWN and row.status != condition:
                again = not row.down
                await sql.set_device(self.db, iid, key, condition, None, self.now if again else None)
                self.members[iid][key] = _with(row, condition, None)
                notes.append(f"{row.name} {'down again' if again else 'now'}: {condition}")
            else:
                continue
            changed = True
        if notes:
            await self._log(iid, "devices", "; ".join(notes))
        down = [d for d in self.members[iid].values() if d.down]
        seq = await self.tx.seq() if changed or not down else 0
        if not down:
            opened = incident.opened_at if incident is not None else self.now
            await sql.update(self.db, iid, seq, state="resolved", resolved_at=self.now)
            await self._log(iid, "resolved", f"all devices back after {span(self.now - opened)}")
        elif changed:
            scope = self.scopes[iid]
            level = worst([severity("camera" if d.camera_id else scope, d.status) for d in down])
            await sql.update(self.db, iid, seq, severity=level)
        if changed or not down:
            self.tx.changes.incident_ids.add(iid)

    async def _log(self, incident_id: int, kind: str, note: str) -> None:
        await sql.log(self.db, incident_id, self.now, kind, "", note)


def _with(row: IncidentDevice, status: str, recovered_at: float | None) -> IncidentDevice:
    return IncidentDevice(row.nvr_id, row.camera_id, row.name, row.hostname, status, row.down_since, recovered_at)
