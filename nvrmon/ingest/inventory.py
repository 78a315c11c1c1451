"""Stage 2, inventory edits through the single writer: declared NVRs and cameras, patches and decommissions,
committed in the hub's order with its other work, so their seqs are in commit order like every change."""

from __future__ import annotations

from nvrmon.ingest.batch import Effects
from nvrmon.ingest.registry import Hostnames
from nvrmon.ingest.session import AgentSession, InventoryWork
from nvrmon.inventory import InventoryError
from nvrmon.store import inventory
from nvrmon.store.fleet import Transaction

TOAST_EACH = 3  # more newly missing devices than this in one edit: one toast that counts them


async def apply(
    tx: Transaction, work: InventoryWork, out: Effects, hostnames: Hostnames, sessions: dict[int, AgentSession],
    max_cameras: int,
) -> int:  # fmt: skip
    """Apply the edit in the writer's transaction. A refused edit wrote nothing (the store checks first), so the rest
    of the batch commits; its error reaches the caller after the commit."""
    try:
        found = await inventory.apply(tx, work.edit, work.actor, max_cameras=max_cameras, address=work.address)
    except InventoryError as exc:
        work.error = exc
        return 0
    work.outcome = found
    for nvr_id, hostname in found.new_hostnames:
        hostnames.add(nvr_id, hostname)  # a look-alike agent can't register beside a declared NVR
        out.journal.on_rollback(lambda nvr_id=nvr_id: hostnames.forget(nvr_id))  # type: ignore[misc]
    for camera_id, nvr_id, ext_id in found.decommissioned:
        session = sessions.get(nvr_id)
        if session is not None and ext_id in session.cameras:
            # Its status frames speak for no camera now; its NVR listing it again brings it back.
            out.journal.keep(session)
            session.cameras = {k: ref for k, ref in session.cameras.items() if ref.id != camera_id}
    if len(found.missing) > TOAST_EACH:
        out.notify("warning", f"{len(found.missing)} devices missing", f"declared by {work.actor}; not connected yet")
    else:
        for what, where in found.missing:
            kind, device = what.split(" ", 1)
            out.notify("warning", f"{what} missing", where, device, kind.lower(), "missing")
    return found.nvr_id or found.camera_id or 1
