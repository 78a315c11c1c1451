"""Stage 2, registration: an agent's hello in commit order (look-alikes refused, replaced connections closed)."""

from __future__ import annotations

from nvrmon import protocol
from nvrmon.ingest.batch import Effects
from nvrmon.ingest.liveness import Liveness
from nvrmon.ingest.registry import Hostnames
from nvrmon.ingest.session import AgentSession
from nvrmon.protocol import Hello
from nvrmon.store.fleet import NewEvent, Transaction


async def register(
    tx: Transaction,
    session: AgentSession,
    work: Hello,
    out: Effects,
    hostnames: Hostnames,
    sessions: dict[int, AgentSession],
    liveness: Liveness,
) -> int:
    """Register the hello's NVR in the writer's transaction; returns its id (0: a refused look-alike)."""
    original = hostnames.lookalike(work.nvr.hostname)
    if original is not None:
        # Checked again here, in commit order: two look-alike hellos may have passed the endpoint together.
        out.frames.append((session, lookalike_refusal(work.nvr.hostname, original)))
        out.closes.append((session, (1008, "hostname not allowed")))
        return 0
    await out.flush_flips(tx)
    reg = await tx.register_nvr(work.nvr)
    nvr_id = reg.nvr_id
    hostnames.add(nvr_id, work.nvr.hostname)
    out.journal.keep(session)
    out.journal.keep_sessions()
    previous = sessions.get(nvr_id)
    if previous is not None and previous is not session:
        text = "another connection now speaks for this NVR"
        out.frames.append((previous, protocol.error_frame("replaced", text)))
        out.closes.append((previous, (4000, "replaced by a newer connection")))
    sessions[nvr_id] = session
    session.nvr_id, session.hostname, session.status, session.last_seen = (
        nvr_id, work.nvr.hostname, "online", tx.now,
    )  # fmt: skip
    session.agent_session = work.session
    same_run = bool(work.session) and work.session == reg.agent_session
    session.last_seq = reg.agent_seq if same_run else 0
    session.cameras, flips = await tx.replace_cameras(nvr_id, work.cameras)
    if reg.previous is None:
        out.events.append(NewEvent("status", "info", f"NVR {work.nvr.hostname} registered", nvr_id))
        out.notify("success", f"{work.nvr.hostname} registered", work.nvr.site)
    elif reg.previous == "offline":
        await liveness.transition(tx, out, session, "online", "connected")
    # previous "unknown" (back after a hub restart) or "online"/"stale" (a replaced connection): nothing to announce
    out.flip_events(session, flips)
    return nvr_id


def lookalike_refusal(hostname: str, original: str) -> str:
    return protocol.error_frame(
        "hostname_not_allowed", f"hostname {hostname!r} can't be told apart from the registered NVR {original!r}"
    )
