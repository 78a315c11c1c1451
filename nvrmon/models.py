"""Shared vocabulary: the immutable records that flow from store to renderer, pages and the API."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:  # the inventory's vocabulary imports this module's neighbours, not this one
    from nvrmon.inventory import Edit, Outcome

from nvrmon.devices import CameraHealth, NvrHealth, StreamDetail

Status = Literal["online", "offline"]
# online: frames arrive; stale: late beyond the grace period but not yet timed out; offline: disconnected or timed out;
# unknown: the hub restarted and the agent has not reconnected yet (shown as such, not as a failure).
# missing: declared in the fleet inventory (docs/inventory.md) and never connected; the store derives it.
NvrStatus = Literal["online", "stale", "offline", "unknown", "missing"]
# What a camera shows: its own status, or why it can't be known ("nvr_offline", "unknown"), or "missing": expected
# (declared, or listed before) but not in its NVR's latest camera list. "degraded" is online but with a health fact
# that needs someone (not recording, clock off, …): the hub derives it, agents never send it.
CameraDisplay = Literal["online", "degraded", "offline", "nvr_offline", "unknown", "missing"]
# What an NVR shows: its liveness status, or "degraded" while it is online with a failing disk, a wrong clock, …
NvrDisplay = Literal["online", "degraded", "stale", "offline", "unknown", "missing"]
Severity = Literal["info", "warning", "error", "critical"]


@dataclass(frozen=True, slots=True)
class Nvr:
    id: int
    hostname: str
    device_name: str
    region: str
    site: str
    model: str
    firmware: str
    ip_address: str
    status: NvrStatus
    status_reason: str
    last_seen: float
    status_changed: float
    updated_seq: int
    unstable: bool = False
    removed: bool = False  # a tombstone: live pages delete its row
    cameras_online: int = 0  # online by their own status, degraded ones included (cameras up)
    cameras_total: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
    degraded: str = ""  # why it is degraded, in words (the hub derives it from health facts); "" while it is not
    health: NvrHealth | None = None  # the latest health facts (single-NVR reads only; None in lists)
    cameras_degraded: int = 0  # of cameras_online, those degraded
    # The fleet inventory (docs/inventory.md): declared by an operator, its tags, how many cameras it should have
    # (None: not declared) and how many of its cameras are missing (counted in cameras_total, never online).
    declared: bool = False
    tags: tuple[str, ...] = ()
    cameras_expected: int | None = None
    cameras_missing: int = 0

    def __post_init__(self) -> None:
        # One rule for every reader (lists, detail, API, sorting, Summary.of): while the NVR can't be reached its
        # cameras' last reported statuses say nothing, so none of them counts as online.
        if not self.reachable and (self.cameras_online or self.cameras_degraded):
            object.__setattr__(self, "cameras_online", 0)
            object.__setattr__(self, "cameras_degraded", 0)

    @property
    def cameras_short(self) -> int:
        """How many cameras fewer than expected it lists now (missing ones and never-declared ones alike)."""
        if self.cameras_expected is None:
            return 0
        return max(0, self.cameras_expected - (self.cameras_total - self.cameras_missing))

    @property
    def reachable(self) -> bool:
        """Whether its cameras' statuses are current (online or stale); offline or unknown: they can't be seen."""
        return self.status in ("online", "stale")

    @property
    def dom_id(self) -> str:
        return f"nvr-{self.id}"

    @property
    def display(self) -> NvrDisplay:
        return "degraded" if self.status == "online" and self.degraded else self.status

    @property
    def reason(self) -> str:
        """Why it shows what it shows, in words ("" while online): its liveness reason, or why it is degraded."""
        return self.degraded if self.display == "degraded" else self.status_reason

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["display_status"] = self.display
        data["status_reason"] = self.reason
        data["health"] = None if self.health is None else self.health.as_json(time.time())
        data["cameras_short"] = self.cameras_short
        return data


@dataclass(frozen=True, slots=True)
class Camera:
    id: int
    nvr_id: int
    nvr_hostname: str
    nvr_status: NvrStatus
    region: str
    site: str
    ext_id: str
    name: str
    ip_address: str
    status: Status
    status_changed: float
    removed: bool
    updated_seq: int
    status_reason: str = ""  # why it is offline, in the agent's words ("" while online)
    detail: StreamDetail = field(default_factory=StreamDetail)  # the last measured stream (camera_status)
    degraded: str = ""  # why it is degraded, in words (derived by the hub from health facts)
    health: CameraHealth | None = None  # the latest health facts, when the agent sent any
    missing: bool = False  # expected but not in its NVR's latest list (or its NVR never connected)
    declared: bool = False  # declared in the fleet inventory
    tags: tuple[str, ...] = ()

    @property
    def dom_id(self) -> str:
        return f"camera-{self.id}"

    @property
    def display(self) -> CameraDisplay:
        if self.missing:
            return "missing"
        if self.nvr_status in ("offline", "missing"):
            return "nvr_offline"
        if self.nvr_status == "unknown":
            return "unknown"
        if self.status == "online" and self.degraded:
            return "degraded"
        return self.status

    @property
    def reason(self) -> str:
        """Why it shows what it shows, in words; "" while online (the API's status_reason)."""
        return (
            CAMERA_REASONS.get(self.display, "")
            or (self.degraded if self.display == "degraded" else "")
            or (self.status_reason if self.display == "offline" else "")
        )

    @property
    def stream(self) -> StreamDetail:
        """The freshest stream figures: the health message's, else the last camera_status detail."""
        return self.health.stream if self.health is not None and self.health.stream else self.detail

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["display_status"] = self.display
        data["status_reason"] = self.reason
        data["health"] = None if self.health is None else self.health.as_json(time.time())
        return data


# A camera that can't be seen says why in these words (the API's status_reason while its NVR is down).
CAMERA_REASONS: dict[str, str] = {"nvr_offline": "nvr offline", "unknown": "nvr not reconnected after hub restart"}


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    seq: int
    ts: float
    kind: Literal["status", "alert"]
    severity: Severity
    nvr_id: int | None
    nvr_hostname: str
    camera_id: int | None
    camera_name: str
    message: str

    @property
    def dom_id(self) -> str:
        return f"event-{self.id}"

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Summary:
    seq: int
    nvrs_total: int
    nvrs_online: int
    nvrs_stale: int
    nvrs_unknown: int
    cameras_total: int
    cameras_online: int
    cameras_offline: int
    cameras_nvr_offline: int
    cameras_unknown: int
    last_change: float  # the latest NVR status change
    # Online but degraded (not counted in nvrs_online / cameras_online: every figure is one shown status).
    nvrs_degraded: int = 0
    cameras_degraded: int = 0
    nvrs_missing: int = 0  # declared in the inventory, never connected
    cameras_missing: int = 0  # expected, not in their NVR's list

    @classmethod
    def of(cls, fleet: Iterable[Nvr], seq: int = 0) -> Summary:
        """The one producer of fleet figures: from the NVR rows (with camera counts) the charts and lists use too.

        Cameras count as they show (Camera.display): all 'NVR offline' or 'unknown' while their NVR is, else by their
        own status (online, degraded or offline).
        """
        nvrs = dict.fromkeys(("online", "degraded", "stale", "offline", "unknown", "missing"), 0)
        cams = dict.fromkeys(("online", "degraded", "offline", "nvr_offline", "unknown", "missing"), 0)
        last = 0.0
        for nvr in fleet:
            nvrs[nvr.display] += 1
            last = max(last, nvr.status_changed)
            listed = nvr.cameras_total - nvr.cameras_missing  # missing cameras show missing whatever the NVR does
            cams["missing"] += nvr.cameras_missing
            if nvr.status in ("offline", "missing"):
                cams["nvr_offline"] += listed
            elif nvr.status == "unknown":
                cams["unknown"] += listed
            else:
                cams["online"] += nvr.cameras_online - nvr.cameras_degraded
                cams["degraded"] += nvr.cameras_degraded
                cams["offline"] += listed - nvr.cameras_online
        return cls(seq, sum(nvrs.values()), nvrs["online"], nvrs["stale"], nvrs["unknown"], sum(cams.values()),
                   cams["online"], cams["offline"], cams["nvr_offline"], cams["unknown"], last, nvrs["degraded"],
                   cams["degraded"], nvrs["missing"], cams["missing"])  # fmt: skip

    @property
    def nvrs_offline(self) -> int:
        return (
            self.nvrs_total - self.nvrs_online - self.nvrs_degraded - self.nvrs_stale - self.nvrs_unknown
            - self.nvrs_missing
        )  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["nvrs_offline"] = self.nvrs_offline
        return data


@dataclass(frozen=True, slots=True)
class Cursor:
    """A browser's position in the store's history: the database epoch and the last sequence it has applied."""

    epoch: str
    seq: int

    def __str__(self) -> str:
        return f"{self.epoch}-{self.seq}"

    @classmethod
    def parse(cls, raw: str | None) -> Cursor | None:
        if not raw or "-" not in raw or len(raw) > 64:
            return None
        epoch, _, seq = raw.rpartition("-")
        if not epoch or not seq.isdigit():
            return None
        return cls(epoch, int(seq))


@dataclass(frozen=True, slots=True)
class Toast:
    """A notification for the browsers watching, born from a committed change. `device` and `kind` name what it is
    about (a burst summary names the first few); they are not part of its identity, so compare=False."""

    level: str  # success | error | warning | info
    title: str
    body: str = ""
    device: str = field(default="", compare=False)
    kind: str = field(default="", compare=False)  # nvr | camera | "" (alerts, system)
    link: str = ""  # a page listing what the toast is about
    change: str = field(default="", compare=False)  # "degraded" | "recovered": a device's health changed (bursts group)
    status: str = field(default="", compare=False)  # "missing": a device the inventory expects went missing


class StorageInfo(Protocol):
    """Whether the hub's store accepts writes (nvrmon.ingest.health.StorageHealth provides it)."""

    @property
    def status(self) -> str: ...
    @property
    def degraded(self) -> bool: ...
    def as_json(self) -> dict[str, Any]: ...


class HubInfo(Protocol):
    """What pages and /healthz show about the hub process (nvrmon.ingest.hub.Hub provides it), so the web and
    live rooms never import ingest."""

    @property
    def started(self) -> float: ...
    @property
    def node(self) -> str: ...
    @property
    def agents_connected(self) -> int: ...
    @property
    def last_event(self) -> float: ...
    @property
    def health(self) -> StorageInfo: ...


class FleetAdmin(Protocol):
    """What the admin pages ask of the hub's single writer (nvrmon.ingest.hub.Hub provides it)."""

    async def remove_nvr(self, hostname: str, actor: str) -> bool: ...
    async def edit_inventory(self, edit: Edit, actor: str, address: str = "") -> Outcome:
        """Apply a fleet inventory edit through the writer: what it changed, or its InventoryError."""
        ...
