"""Stage 3, the fleet inventory's writes: the edits (import, declare, patch, decommission) applied in one of the
store's write transactions (its columns and reads are in nvrmon/store/inventory_rows.py).

Every edit checks everything first and writes only after: a refused edit (InventoryError) leaves its transaction as
it found it, so the hub's writer can refuse it and still commit the rest of the batch. Nothing is written (no seq
taken) when nothing differs, so importing the same file twice changes nothing the second time.
"""

from __future__ import annotations

import time
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from nvrmon import names
from nvrmon.inventory import (
    CameraDecl,
    Declaration,
    DeclareCamera,
    DeclareNvr,
    Edit,
    Import,
    InventoryError,
    NvrDecl,
    Outcome,
    PatchCamera,
    PatchNvr,
    tag_text,
)
from nvrmon.store import audit
from nvrmon.store import inventory_rows as rows
from nvrmon.store.dialect import Connection
from nvrmon.store.inventory_rows import NvrRow
from nvrmon.store.transaction import NewEvent, Transaction


class Writer(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[Connection]: ...


NEVER_CONNECTED = "declared in the inventory; its agent has not connected yet"
# -- edits ------------------------------------------------------------------------------------------------------------


async def apply(tx: Transaction, edit: Edit, actor: str, *, max_cameras: int, address: str = "") -> Outcome:
    """Apply `edit` in `tx`, or raise InventoryError before writing anything; audited in the same transaction (who,
    from `address`, and the changes in words) when it changed something."""
    out = Outcome()
    events: list[NewEvent] = []
    if isinstance(edit, Import | DeclareNvr):
        decl = edit.declaration if isinstance(edit, Import) else Declaration(nvrs=(edit.nvr,))
        await _import(tx, decl, actor, max_cameras, out, events, create_only=isinstance(edit, DeclareNvr))
    elif isinstance(edit, PatchNvr):
        nvr = await rows.nvr_by_id(tx.connection, edit.nvr_id)
        await _update_nvr(tx, nvr, edit.fields, actor, out, events)
        out.nvr_id = nvr.id
    elif isinstance(edit, DeclareCamera):
        nvr = await rows.nvr_by_id(tx.connection, edit.nvr_id)
        existing = await rows.cameras_of(tx.connection, [nvr.id])
        found = existing.get((nvr.id, edit.camera.id))
        if found is not None and not found[4]:
            raise InventoryError(
                409, "exists", f"{nvr.hostname} has a camera {edit.camera.id!r} already (id {found[0]})"
            )
        _check_room(nvr.hostname, sum(1 for k, c in existing.items() if not c[4]) + 1, max_cameras)
        out.camera_id = await _declare_camera(tx, nvr, edit.camera, actor, out, events)
    else:
        camera = await rows.camera_by_id(tx.connection, edit.camera_id)
        if isinstance(edit, PatchCamera):
            await _update_camera(tx, camera, edit.fields, out, events, actor)
        else:
            await _decommission(tx, camera, actor, out, events)
        out.camera_id = edit.camera_id
    await tx.add_events(events)
    if out.changes:
        action, target = _audited(edit, out)
        await audit.record(tx.connection, actor, action, target, "; ".join(out.changes), address, now=tx.now)
    return out


def _audited(edit: Edit, out: Outcome) -> tuple[str, str]:
    """The audit log's action and target of an edit that changed something."""
    if isinstance(edit, Import):
        return "inventory.import", f"{len(edit.declaration.nvrs)} NVRs, {len(edit.declaration.sites)} sites"
    if isinstance(edit, DeclareNvr):
        return "nvr.declare", edit.nvr.hostname
    if isinstance(edit, PatchNvr):
        return "nvr.edit", f"nvr {edit.nvr_id}"
    kind = {DeclareCamera: "declare", PatchCamera: "edit"}.get(type(edit), "decommission")
    return f"camera.{kind}", f"camera {out.camera_id}"


async def _import(
    tx: Transaction, decl: Declaration, actor: str, max_cameras: int, out: Outcome, events: list[NewEvent],
    *, create_only: bool,
) -> None:  # fmt: skip
    db = tx.connection
    known = {n.hostname: n for n in await rows.nvrs(db)}
    skeletons = {names.skeleton(h): h for h, n in known.items() if not n.removed}
    cameras = await rows.cameras_of(db, [n.id for n in known.values()])
    problems: list[str] = []
    for nvr in decl.nvrs:
        where = f"line {nvr.line}: " if nvr.line else ""
        current = known.get(nvr.hostname)
        if create_only and current is not None and not current.removed:
            raise InventoryError(409, "exists", f"NVR {nvr.hostname} exists already (id {current.id})")
        other = skeletons.get(names.skeleton(nvr.hostname))
        if other is not None and other != nvr.hostname:
            problems.append(f"{where}field 'hostname': {nvr.hostname!r} can't be told apart from the NVR {other!r}")
        listed = 0 if current is None else sum(1 for k, c in cameras.items() if k[0] == current.id and not c[4])
        new = 0 if current is None else sum(1 for c in nvr.cameras if (current.id, c.id) not in cameras)
        try:
            _check_room(nvr.hostname, listed + (new if current else len(nvr.cameras)), max_cameras)
        except InventoryError as exc:
            problems.append(f"{where}field 'cameras': {exc.message}")
    if problems:
        raise InventoryError(409 if create_only else 422, "conflict", problems[0], tuple(problems))
    # Checked: from here on only writes.
    for site in decl.sites:
        cursor = await db.execute(
            "INSERT INTO sites (name, region) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET region = excluded.region "
            "WHERE sites.region != excluded.region RETURNING name",
            (site.name, site.region),
        )
        if await cursor.fetchone() is not None:
            out.changes.append(f"site {site.name}: region {site.region or '(none)'}")
    for nvr in decl.nvrs:
        current = known.get(nvr.hostname)
        if current is None or current.removed:
            current = await _declare_nvr(tx, nvr, actor, out, events)
        else:
            wanted = {"device_name": nvr.name, "region": nvr.region, "site": nvr.site}
            fields: dict[str, Any] = {k: v for k, v in wanted.items() if v}
            if nvr.tags is not None:
                fields["tags"] = nvr.tags
            if nvr.expected_cameras is not None:
                fields["expected_cameras"] = nvr.expected_cameras
            await _update_nvr(tx, current, fields, actor, out, events)
        out.nvr_id = current.id
        for cam in nvr.cameras:
            found = cameras.get((current.id, cam.id))
            if found is None or found[4]:
                await _declare_camera(tx, current, cam, actor, out, events)
            else:
                fields = {"name": cam.name} if cam.name else {}
                if cam.tags is not None:
                    fields["tags"] = cam.tags
                await _update_camera(tx, found, fields, out, events, actor)


def _check_room(hostname: str, total: int, max_cameras: int) -> None:
    if total > max_cameras:
        raise InventoryError(
            422, "too_many_cameras", f"{hostname} would have {total} cameras; the limit is {max_cameras}"
        )


async def _declare_nvr(tx: Transaction, nvr: NvrDecl, actor: str, out: Outcome, events: list[NewEvent]) -> NvrRow:
    seq = await tx.seq()
    values = (nvr.name, nvr.region, nvr.site, tag_text(nvr.tags or ()), nvr.expected_cameras)
    # A decommissioned NVR's tombstone is declared again in place (the hostname is unique): missing until it connects.
    cursor = await tx.connection.execute(
        "INSERT INTO nvrs (hostname, device_name, region, site, tags, expected_cameras, status, status_reason, "
        "last_seen, status_changed, updated_seq, declared) VALUES (?, ?, ?, ?, ?, ?, 'offline', ?, 0, ?, ?, 1) "
        "ON CONFLICT (hostname) DO UPDATE SET device_name = excluded.device_name, region = excluded.region, "
        "site = excluded.site, tags = excluded.tags, expected_cameras = excluded.expected_cameras, status = 'offline', "
        "status_reason = excluded.status_reason, last_seen = 0, status_changed = excluded.status_changed, "
        "updated_seq = excluded.updated_seq, declared = 1, removed = 0, unstable = 0 RETURNING id",
        (nvr.hostname, *values, NEVER_CONNECTED, tx.now, seq),
    )
    row = await cursor.fetchone()
    assert row is not None
    nvr_id = int(row[0])
    tx.changes.nvr_ids.add(nvr_id)
    out.new_hostnames.append((nvr_id, nvr.hostname))
    out.missing.append((f"NVR {nvr.hostname}", "declared; missing until its agent connects"))
    out.changes.append(f"NVR {nvr.hostname}: declared (missing until its agent connects)")
    events.append(NewEvent("status", "warning", f"NVR {nvr.hostname} declared by {actor}; missing until it connects",
                           nvr_id))  # fmt: skip
    fields = {"device_name": nvr.name, "region": nvr.region, "site": nvr.site, "tags": values[3],
              "expected_cameras": nvr.expected_cameras}  # fmt: skip
    return NvrRow(nvr_id, nvr.hostname, fields, True, False)


async def _update_nvr(
    tx: Transaction, nvr: NvrRow, fields: dict[str, Any], actor: str, out: Outcome, events: list[NewEvent]
) -> None:
    wanted = {k: tag_text(v) if k == "tags" else v for k, v in fields.items()}
    diff = {k: v for k, v in wanted.items() if nvr.fields[k] != v}
    if not diff and nvr.declared:
        return
    sets = "".join(f", {k} = ?" for k in diff)
    await tx.connection.execute(
        f"UPDATE nvrs SET declared = 1, updated_seq = ?{sets} WHERE id = ?", (await tx.seq(), *diff.values(), nvr.id)
    )
    tx.changes.nvr_ids.add(nvr.id)
    await _stamp_cameras(tx, nvr.id)  # cameras show their NVR's region and site
    said = ", ".join(f"{_label(k)} {_shown(nvr.fields[k])} → {_shown(v)}" for k, v in diff.items()) or "now declared"
    nvr.fields.update(diff)
    nvr.declared = True
    out.changes.append(f"NVR {nvr.hostname}: {said}")
    events.append(NewEvent("status", "info", f"NVR {nvr.hostname} edited by {actor}: {said}", nvr.id))


async def _declare_camera(
    tx: Transaction, nvr: NvrRow, cam: CameraDecl, actor: str, out: Outcome, events: list[NewEvent]
) -> int:
    seq = await tx.seq()
    name = cam.name or cam.id
    cursor = await tx.connection.execute(
        "INSERT INTO cameras (nvr_id, ext_id, name, status, status_changed, updated_seq, declared, missing, tags) "
        "VALUES (?, ?, ?, 'offline', ?, ?, 1, 1, ?) ON CONFLICT (nvr_id, ext_id) DO UPDATE SET name = excluded.name, "
        "status_changed = excluded.status_changed, updated_seq = excluded.updated_seq, declared = 1, missing = 1, "
        "removed = 0, tags = excluded.tags RETURNING id",
        (nvr.id, cam.id, name, tx.now, seq, tag_text(cam.tags or ())),
    )
    row = await cursor.fetchone()
    assert row is not None
    camera_id = int(row[0])
    tx.changes.camera_ids.add(camera_id)
    await tx.touch_nvr(nvr.id)
    out.missing.append((f"Camera {name}", f"expected on {nvr.hostname}; missing until it lists it"))
    out.changes.append(f"camera {cam.id} on {nvr.hostname}: declared as {name!r} (missing until its NVR lists it)")
    events.append(NewEvent("status", "warning", f"Camera {name} declared on {nvr.hostname} by {actor}; missing "
                           "until its NVR lists it", nvr.id, camera_id))  # fmt: skip
    return camera_id


async def _update_camera(
    tx: Transaction, camera: tuple[Any, ...], fields: dict[str, Any], out: Outcome, events: list[NewEvent], actor: str
) -> None:
    camera_id, nvr_id, ext_id, current, removed, hostname = camera[:6]
    wanted = {k: tag_text(v) if k == "tags" else v for k, v in fields.items()}
    diff = {k: v for k, v in wanted.items() if current[k] != v}
    if not diff and current["declared"]:
        return
    sets = "".join(f", {k} = ?" for k in diff)
    await tx.connection.execute(
        f"UPDATE cameras SET declared = 1, updated_seq = ?{sets} WHERE id = ?",
        (await tx.seq(), *diff.values(), camera_id),
    )
    tx.changes.camera_ids.add(camera_id)
    said = ", ".join(f"{_label(k)} {_shown(current[k])} → {_shown(v)}" for k, v in diff.items()) or "now declared"
    current.update(diff, declared=1)
    out.changes.append(f"camera {ext_id} on {hostname}: {said}")
    events.append(NewEvent("status", "info", f"Camera {ext_id} on {hostname} edited by {actor}: {said}", nvr_id,
                           camera_id))  # fmt: skip


async def _decommission(
    tx: Transaction, camera: tuple[Any, ...], actor: str, out: Outcome, events: list[NewEvent]
) -> None:
    camera_id, nvr_id, ext_id, current, _, hostname = camera[:6]
    await tx.connection.execute(
        "UPDATE cameras SET removed = 1, missing = 0, declared = 0, updated_seq = ? WHERE id = ?",
        (await tx.seq(), camera_id),
    )
    tx.changes.camera_ids.add(camera_id)
    await tx.touch_nvr(nvr_id)
    out.decommissioned.append((camera_id, nvr_id, ext_id))
    out.changes.append(f"camera {ext_id} on {hostname}: decommissioned")
    events.append(NewEvent("status", "info", f"Camera {current['name']} on {hostname} decommissioned by {actor}",
                           nvr_id, camera_id))  # fmt: skip


async def _stamp_cameras(tx: Transaction, nvr_id: int) -> None:
    cursor = await tx.connection.execute(
        "UPDATE cameras SET updated_seq = ? WHERE nvr_id = ? AND removed = 0 RETURNING id", (await tx.seq(), nvr_id)
    )
    tx.changes.camera_ids.update(int(r[0]) for r in await cursor.fetchall())


def _label(key: str) -> str:
    return {"device_name": "name", "expected_cameras": "expected cameras"}.get(key, key)


def _shown(value: Any) -> str:
    return "(none)" if value in ("", None) else repr(value) if isinstance(value, str) else str(value)


class _DryRun(Exception):
    pass


async def preview(database: Writer, edit: Edit, actor: str, *, max_cameras: int) -> Outcome:
    """What `edit` would change, applied in a transaction that is then rolled back (a dry run)."""
    found = Outcome()
    try:
        async with database.transaction() as db:
            found = await apply(Transaction(db, time.time()), edit, actor, max_cameras=max_cameras)
            raise _DryRun
    except _DryRun:
        pass
    return found
