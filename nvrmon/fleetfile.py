"""Shared vocabulary, the fleet file: the inventory as YAML or CSV (docs/inventory.md), read with line numbers, written
back in the same shape, so an exported file imports to the same fleet."""

from __future__ import annotations

import csv
import io
from typing import Any, Literal

import yaml  # type: ignore[import-untyped]  # PyYAML ships no type hints

from nvrmon import inventory as inv
from nvrmon.inventory import CameraDecl, Declaration, InventoryError, NvrDecl, SiteDecl

Format = Literal["yaml", "csv"]
FORMATS: tuple[Format, ...] = ("yaml", "csv")
CSV_COLUMNS = ("hostname", "name", "region", "site", "tags", "expected_cameras", "camera_id", "camera_name",
               "camera_tags")  # fmt: skip
NVR_KEYS = {"hostname", "name", "region", "site", "tags", "expected_cameras", "cameras"}
CAMERA_KEYS = {"id", "name", "tags"}
SITE_KEYS = {"name", "region"}


def format_of(filename: str) -> Format:
    return "csv" if filename.lower().endswith(".csv") else "yaml"


def parse(content: str, fmt: Format) -> Declaration:
    """The declaration in `content`, checked; InventoryError lists every problem with its line and field."""
    if len(content.encode("utf-8", "surrogatepass")) > inv.MAX_FILE_BYTES:
        raise InventoryError(422, "too_large", f"the file is larger than {inv.MAX_FILE_BYTES // 1024 // 1024} MB")
    declaration = _parse_csv(content) if fmt == "csv" else _parse_yaml(content)
    return inv.check(inv.with_site_regions(declaration))


def dump(declaration: Declaration, fmt: Format) -> str:
    return _dump_csv(declaration) if fmt == "csv" else _dump_yaml(declaration)


# -- YAML -------------------------------------------------------------------------------------------------------------


class _Lined(dict[Any, Any]):
    """A mapping that remembers the line it starts on and the line of each key."""

    line = 0
    key_lines: dict[str, int]


class _Loader(yaml.SafeLoader):  # type: ignore[misc]  # untyped base class
    pass


def _mapping(loader: _Loader, node: Any) -> _Lined:
    data = _Lined(loader.construct_mapping(node, deep=True))
    data.line = node.start_mark.line + 1
    data.key_lines = {str(k.value): k.start_mark.line + 1 for k, _ in node.value}
    return data


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _parse_yaml(content: str) -> Declaration:
    try:
        data = yaml.load(content, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass: plain data only
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise InventoryError(422, "invalid_yaml", f"{where}not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if data is None:
        return Declaration()
    if not isinstance(data, _Lined) or set(data) - {"sites", "nvrs"}:
        raise InventoryError(422, "invalid_yaml", "line 1: the file must be a mapping with 'sites' and 'nvrs' lists")
    problems: list[str] = []
    sites = [_collect(problems, _yaml_site, item) for item in _items(problems, data, "sites")]
    nvrs = [_collect(problems, _yaml_nvr, item) for item in _items(problems, data, "nvrs")]
    if problems:
        raise InventoryError(422, "invalid_inventory", problems[0], tuple(problems))
    return Declaration(tuple(s for s in sites if s), tuple(n for n in nvrs if n))


def _items(problems: list[str], data: _Lined, key: str) -> list[_Lined]:
    items = data.get(key) or []
    line = data.key_lines.get(key, 1)
    if not isinstance(items, list) or not all(isinstance(item, _Lined) for item in items):
        problems.append(f"line {line}: field '{key}' must be a list of mappings")
        return []
    return items


def _collect(problems: list[str], read: Any, item: _Lined) -> Any:
    try:
        return read(item)
    except InventoryError as exc:
        problems.append(exc.message)
        return None


def _where(item: _Lined, key: str) -> str:
    return f"line {item.key_lines.get(key, item.line)}: "


def _unknown(item: _Lined, allowed: set[str]) -> None:
    for key in item:
        if key not in allowed:
            raise InventoryError(422, "invalid_field", f"{_where(item, str(key))}unknown field '{key}'")


def _yaml_site(item: _Lined) -> SiteDecl:
    _unknown(item, SITE_KEYS)
    name = inv.text(item.get("name"), "name", _where(item, "name"))
    if not name:
        raise InventoryError(422, "invalid_field", f"{_where(item, 'name')}field 'name' must not be empty")
    return SiteDecl(name, inv.text(item.get("region"), "region", _where(item, "region")), item.line)


def _yaml_nvr(item: _Lined) -> NvrDecl:
    _unknown(item, NVR_KEYS)
    cameras: list[CameraDecl] = []
    raw = item.get("cameras") or []
    if not isinstance(raw, list) or not all(isinstance(c, _Lined) for c in raw):
        raise InventoryError(422, "invalid_field", f"{_where(item, 'cameras')}field 'cameras' must be a list")
    for cam in raw:
        _unknown(cam, CAMERA_KEYS)
        cameras.append(
            CameraDecl(
                inv.camera_id(cam.get("id"), _where(cam, "id")),
                inv.text(cam.get("name"), "name", _where(cam, "name")),
                inv.tags(cam.get("tags"), _where(cam, "tags")),
                cam.line,
            )
        )
    return NvrDecl(
        inv.hostname(item.get("hostname"), _where(item, "hostname")),
        inv.text(item.get("name"), "name", _where(item, "name")),
        inv.text(item.get("region"), "region", _where(item, "region")),
        inv.text(item.get("site"), "site", _where(item, "site")),
        inv.tags(item.get("tags"), _where(item, "tags")),
        inv.count(item.get("expected_cameras"), _where(item, "expected_cameras")),
        tuple(cameras),
        item.line,
    )


def _dump_yaml(declaration: Declaration) -> str:
    data: dict[str, Any] = {}
    if declaration.sites:
        data["sites"] = [{"name": s.name, **({"region": s.region} if s.region else {})} for s in declaration.sites]
    nvrs = []
    for n in declaration.nvrs:
        entry: dict[str, Any] = {"hostname": n.hostname}
        entry.update({k: v for k, v in (("name", n.name), ("region", n.region), ("site", n.site)) if v})
        if n.tags:
            entry["tags"] = list(n.tags)
        if n.expected_cameras is not None:
            entry["expected_cameras"] = n.expected_cameras
        if n.cameras:
            entry["cameras"] = [
                {"id": c.id, **({"name": c.name} if c.name else {}), **({"tags": list(c.tags)} if c.tags else {})}
                for c in n.cameras
            ]
        nvrs.append(entry)
    data["nvrs"] = nvrs
    header = "# nvrmon fleet inventory (docs/inventory.md): `nvrmon inventory import` reads this file back.\n"
    return header + str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120))


# -- CSV --------------------------------------------------------------------------------------------------------------


def _parse_csv(content: str) -> Declaration:
    reader = csv.reader(io.StringIO(content.lstrip("\ufeff")))  # a spreadsheet's UTF-8 byte order mark
    try:
        header = [h.strip().lower() for h in next(reader, [])]
    except csv.Error as exc:
        raise InventoryError(422, "invalid_csv", f"line 1: not valid CSV ({exc})") from None
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown or "hostname" not in header:
        bad = f"unknown column '{unknown[0]}'" if unknown else "no 'hostname' column"
        raise InventoryError(422, "invalid_csv", f"line 1: {bad}; the columns are {', '.join(CSV_COLUMNS)}")
    problems: list[str] = []
    sites: list[SiteDecl] = []
    nvrs: dict[str, dict[str, Any]] = {}
    try:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            row = dict(zip(header, (c.strip() for c in cells), strict=False))
            try:
                _csv_row(row, f"line {line}: ", line, sites, nvrs)
            except InventoryError as exc:
                problems.append(exc.message)
    except csv.Error as exc:
        problems.append(f"line {reader.line_num}: not valid CSV ({exc})")
    if problems:
        raise InventoryError(422, "invalid_inventory", problems[0], tuple(problems))
    return Declaration(tuple(sites), tuple(NvrDecl(**n) for n in nvrs.values()))


def _csv_row(
    row: dict[str, str], where: str, line: int, sites: list[SiteDecl], nvrs: dict[str, dict[str, Any]]
) -> None:
    if not row.get("hostname"):
        if row.get("camera_id") or not row.get("site"):
            raise InventoryError(422, "invalid_field", f"{where}field 'hostname' must not be empty")
        sites.append(SiteDecl(inv.text(row["site"], "site", where), inv.text(row.get("region"), "region", where), line))
        return
    host = inv.hostname(row["hostname"], where)
    fields = {
        "name": inv.text(row.get("name"), "name", where),
        "region": inv.text(row.get("region"), "region", where),
        "site": inv.text(row.get("site"), "site", where),
        "tags": inv.tags(row.get("tags") or None, where),
        "expected_cameras": inv.count(row.get("expected_cameras"), where),
    }
    entry = nvrs.get(host)
    if entry is None:
        entry = nvrs[host] = {"hostname": host, "line": line, "cameras": (), "name": "", "region": "", "site": "",
                              "tags": None, "expected_cameras": None}  # fmt: skip
    for key, value in fields.items():
        if value in ("", None):
            continue
        if entry[key] not in ("", None) and entry[key] != value:
            raise InventoryError(
                422, "invalid_field", f"{where}field '{key}': {host} has {entry[key]!r} on an earlier line"
            )
        entry[key] = value
    if row.get("camera_id"):
        camera = CameraDecl(
            inv.camera_id(row["camera_id"], where, "camera_id"),
            inv.text(row.get("camera_name"), "camera_name", where),
            inv.tags(row.get("camera_tags") or None, where, "camera_tags"),
            line,
        )
        entry["cameras"] = (*entry["cameras"], camera)
    elif row.get("camera_name") or row.get("camera_tags"):
        raise InventoryError(422, "invalid_field", f"{where}field 'camera_id' must not be empty on a camera row")


def _dump_csv(declaration: Declaration) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for s in declaration.sites:
        writer.writerow(["", "", s.region, s.name, "", "", "", "", ""])
    for n in declaration.nvrs:
        expected = "" if n.expected_cameras is None else str(n.expected_cameras)
        writer.writerow([n.hostname, n.name, n.region, n.site, " ".join(n.tags or ()), expected, "", "", ""])
        for c in n.cameras:
            writer.writerow([n.hostname, "", "", "", "", "", c.id, c.name, " ".join(c.tags or ())])
    return out.getvalue()
