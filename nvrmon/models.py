"""Shared vocabulary: the immutable records that flow from store to renderer, pages and the API."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:  # the inventory's vocabulary imports this module's neighbours, not this one
    from nvrmon.inventory import Edit, Outcome

Status = Literal["online", "offline"]
# online: frames arrive; stale: late beyond the grace period but not yet timed out; offline: disconnected or timed out;
# unknown: the hub restarted and the agent has not reconnected yet (shown as such, not as a failure).
# missing: declared in the fleet inventory (docs/inventory.md) and never connected; the store derives it.
NvrStatus = Literal["online", "stale", "offline", "unknown", "missing"]
# What a camera shows: its own status, or why it can't be known ("nvr_offline", "unknown"), or "missing": expected
# (declared, or listed before) but not in its NVR's latest camera list.
CameraDisplay = Literal["online", "offline", "nvr_offline", "unknown", "missing"]
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
    cameras_online: int = 0
    cameras_total: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
    # The fleet inventory (docs/inventory.md): declared by an operator, its tags, how many cameras it should have
    # (None: not declared) and how many of its cameras are missing (counted in cameras_total, never online).
    declared: bool = False
    tags: tuple[str, ...] = ()
    cameras_expected: int | None = None
    cameras_missing: int = 0

    def __post_init__(self) -> None:
        # One rule for every reader (lists, detail, API, sorting, Summary.of): while the NVR can't be reached its
        # cameras' last reported statuses say nothing, so none of them counts as online.
        if not self.reachable and self.cameras_online:
            object.__setattr__(self, "cameras_online", 0)

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

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
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
        return self.status

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["display_status"] = self.display
        return data


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
    nvrs_missing: int = 0  # declared in the inventory, never connected
    cameras_missing: int = 0  # expected, not in their NVR's list

    @classmethod
    def of(cls, fleet: Iterable[Nvr], seq: int = 0) -> Summary:
        """The one producer of fleet figures: from the NVR rows (with camera counts) the charts and lists use too.

        Cameras count as they show (Camera.display): all 'NVR offline' or 'unknown' while their NVR is, else by their
        own status.
        """
        nvrs = dict.fromkeys(("online", "stale", "offline", "unknown", "missing"), 0)
        cams = dict.fromkeys(("online", "offline", "nvr_offline", "unknown", "missing"), 0)
        last = 0.0
        for nvr in fleet:
            nvrs[nvr.status] += 1
            last = max(last, nvr.status_changed)
            listed = nvr.cameras_total - nvr.cameras_missing  # missing cameras show missing whatever the NVR does
            cams["missing"] += nvr.cameras_missing
            if nvr.status in ("offline", "missing"):
                cams["nvr_offline"] += listed
            elif nvr.status == "unknown":
                cams["unknown"] += listed
            else:
                cams["online"] += nvr.cameras_online
                cams["offline"] += listed - nvr.cameras_online
        return cls(seq, sum(nvrs.values()), nvrs["online"], nvrs["stale"], nvrs["unknown"], sum(cams.values()),
                   cams["online"], cams["offline"], cams["nvr_offline"], cams["unknown"], last, nvrs["missing"],
                   cams["missing"])  # fmt: skip

    @property
    def nvrs_offline(self) -> int:
        return self.nvrs_total - self.nvrs_online - self.nvrs_stale - self.nvrs_unknown - self.nvrs_missing

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
