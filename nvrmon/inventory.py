"""Shared vocabulary, the fleet inventory: what operators declare (sites, NVRs, cameras), checked, and its edits.

The file formats (YAML and CSV) are in nvrmon/fleetfile.py; the store applies edits in one transaction
(nvrmon/store/inventory.py). Limits are the agent protocol's, so a declared name fits wherever a reported one does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from nvrmon import names
from nvrmon.protocol import MAX_CAMERA_ID, MAX_HOSTNAME, MAX_TEXT, printable

MAX_TAGS = 16
MAX_TAG = 32
MAX_EXPECTED = 100_000  # per NVR; the hub's per-NVR camera limit is a setting, checked by the store
MAX_NVRS = 20_000  # per file: bounds an import's one transaction
MAX_FILE_BYTES = 8 * 1024 * 1024
_TAG = re.compile(r"^[a-z0-9][a-z0-9._:-]*$")


class InventoryError(Exception):
    """An edit that can't be applied, with an HTTP-like code: 404 no such device, 409 a conflict, 422 bad input.

    `problems` lists every problem found (a file's rows), each naming its line and field."""

    def __init__(self, status: int, code: str, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.problems = problems or (message,)


@dataclass(frozen=True, slots=True)
class SiteDecl:
    name: str
    region: str = ""
    line: int = 0


@dataclass(frozen=True, slots=True)
class CameraDecl:
    id: str  # the camera's id on its NVR (the agent's `cameras[].id`)
    name: str = ""  # "" : not declared (the NVR's own name for it is kept)
    tags: tuple[str, ...] | None = None  # None: not declared
    line: int = 0


@dataclass(frozen=True, slots=True)
class NvrDecl:
    """An expected NVR. Empty text and None mean "not declared here": the current value is kept."""

    hostname: str
    name: str = ""
    region: str = ""
    site: str = ""
    tags: tuple[str, ...] | None = None
    expected_cameras: int | None = None
    cameras: tuple[CameraDecl, ...] = ()
    line: int = 0


@dataclass(frozen=True, slots=True)
class Declaration:
    sites: tuple[SiteDecl, ...] = ()
    nvrs: tuple[NvrDecl, ...] = ()


# -- edits: what the API and the importer ask the hub's writer to do ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Import:
    declaration: Declaration
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class DeclareNvr:
    """One expected NVR (POST /api/nvrs): refused with 409 when the hostname is known already."""

    nvr: NvrDecl


@dataclass(frozen=True, slots=True)
class PatchNvr:
    nvr_id: int
    fields: dict[str, Any]  # checked: device_name, region, site (str), tags (tuple), expected_cameras (int | None)


@dataclass(frozen=True, slots=True)
class DeclareCamera:
    nvr_id: int
    camera: CameraDecl


@dataclass(frozen=True, slots=True)
class PatchCamera:
    camera_id: int
    fields: dict[str, Any]  # checked: name (str), tags (tuple)


@dataclass(frozen=True, slots=True)
class DecommissionCamera:
    camera_id: int


Edit = Import | DeclareNvr | PatchNvr | DeclareCamera | PatchCamera | DecommissionCamera


@dataclass(slots=True)
class Outcome:
    """What an edit changed, in words (one line per device), and the ids it created or touched."""

    changes: list[str] = field(default_factory=list)
    nvr_id: int = 0  # the NVR created or edited (API responses)
    camera_id: int = 0
    new_hostnames: list[tuple[int, str]] = field(default_factory=list)  # NVRs declared anew: the hub learns them
    decommissioned: list[tuple[int, int, str]] = field(default_factory=list)  # (camera id, nvr id, ext id)
    missing: list[tuple[str, str]] = field(default_factory=list)  # (what, where) newly missing, for toasts


# -- checking one value ---------------------------------------------------------------------------------------------


def _fail(where: str, name: str, message: str) -> InventoryError:
    text = f"{where}field '{name}' {message}" if where else f"field '{name}' {message}"
    return InventoryError(422, "invalid_field", text)


def text(value: Any, name: str, where: str = "", *, limit: int = MAX_TEXT) -> str:
    """A name, region or site: a string (numbers are taken as written), at most `limit` characters, printable."""
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _fail(where, name, "must be a string")
    found = " ".join(value.split())
    if len(found) > limit:
        raise _fail(where, name, f"is longer than {limit} characters")
    if not printable(found):
        raise _fail(where, name, "contains a character a name must not contain")
    return found


def hostname(value: Any, where: str = "", name: str = "hostname") -> str:
    host = names.normalise(text(value, name, where, limit=MAX_HOSTNAME))
    if not host:
        raise _fail(where, name, "must not be empty")
    if len(host) > MAX_HOSTNAME or any(ch.isspace() for ch in host):
        raise _fail(where, name, f"must be one word of at most {MAX_HOSTNAME} characters")
    return host


def camera_id(value: Any, where: str = "", name: str = "id") -> str:
    ident = names.normalise(text(value, name, where, limit=MAX_CAMERA_ID))
    if not ident:
        raise _fail(where, name, "must not be empty")
    if len(ident) > MAX_CAMERA_ID:
        raise _fail(where, name, f"is longer than {MAX_CAMERA_ID} characters")
    return ident


def tags(value: Any, where: str = "", name: str = "tags") -> tuple[str, ...] | None:
    """A list of tags, or one string of them separated by spaces, commas or semicolons; None when absent."""
    if value is None:
        return None
    if isinstance(value, str):
        items: list[Any] = re.split(r"[\s,;]+", value.strip()) if value.strip() else []
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise _fail(where, name, "must be a list of tags")
    found: set[str] = set()
    for item in items:
        tag = text(item, name, where, limit=MAX_TAG).lower()
        if not _TAG.match(tag):
            raise _fail(where, name, f"has tag {tag!r}: tags are letters, digits and . _ : - (at most {MAX_TAG})")
        found.add(tag)
    if len(found) > MAX_TAGS:
        raise _fail(where, name, f"has more than {MAX_TAGS} tags")
    return tuple(sorted(found))


def count(value: Any, where: str = "", name: str = "expected_cameras") -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_EXPECTED:
        raise _fail(where, name, f"must be a whole number from 0 to {MAX_EXPECTED}")
    return value


def tag_text(values: tuple[str, ...]) -> str:
    """How the store keeps tags: sorted, space-separated (no tag holds a space)."""
    return " ".join(values)


def tag_tuple(stored: str) -> tuple[str, ...]:
    return tuple(stored.split()) if stored else ()


def check(declaration: Declaration) -> Declaration:
    """Rules across rows: each hostname and camera id once, each site once, expected counts that fit the cameras.

    A site's region is the default for its NVRs, not a rule: an NVR may report another (and export writes what is)."""
    problems: list[str] = []
    regions: dict[str, str] = {}
    for site in declaration.sites:
        known = regions.get(site.name)
        if known is not None and known != site.region:
            problems.append(f"line {site.line}: field 'region': site {site.name!r} is in {known!r} already")
        regions[site.name] = site.region
    seen: dict[str, int] = {}
    skeletons: dict[str, str] = {}
    if len(declaration.nvrs) > MAX_NVRS:
        problems.append(f"more than {MAX_NVRS} NVRs in one file")
    for nvr in declaration.nvrs:
        where = f"line {nvr.line}: "
        if nvr.hostname in seen:
            problems.append(
                f"{where}field 'hostname': {nvr.hostname!r} is declared already on line {seen[nvr.hostname]}"
            )
        seen[nvr.hostname] = nvr.line
        other = skeletons.setdefault(names.skeleton(nvr.hostname), nvr.hostname)
        if other != nvr.hostname:
            problems.append(f"{where}field 'hostname': {nvr.hostname!r} can't be told apart from {other!r}")
        ids: set[str] = set()
        for cam in nvr.cameras:
            if cam.id in ids:
                problems.append(f"line {cam.line}: field 'camera_id': {cam.id!r} appears twice on {nvr.hostname}")
            ids.add(cam.id)
        if nvr.expected_cameras is not None and nvr.expected_cameras < len(nvr.cameras):
            problems.append(
                f"{where}field 'expected_cameras': {nvr.expected_cameras} is fewer than the {len(nvr.cameras)} "
                "cameras declared for it"
            )
    if problems:
        raise InventoryError(422, "invalid_inventory", problems[0], tuple(problems))
    return declaration


def with_site_regions(declaration: Declaration) -> Declaration:
    """NVRs that name a declared site but no region take the site's region."""
    regions = {s.name: s.region for s in declaration.sites if s.region}
    nvrs = tuple(
        NvrDecl(
            n.hostname,
            n.name,
            n.region or regions.get(n.site, ""),
            n.site,
            n.tags,
            n.expected_cameras,
            n.cameras,
            n.line,
        )  # fmt: skip
        for n in declaration.nvrs
    )
    return Declaration(declaration.sites, nvrs)
