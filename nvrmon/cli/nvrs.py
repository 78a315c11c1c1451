"""Command line, the fleet: `nvrmon nvr list|remove` on the hub's database, also while the hub runs.

A removal is one write transaction on the same WAL file that takes the next seq, as the hub's own writer does; a
running hub sees the seq move past what it wrote (within about a second), publishes the tombstones so open pages
drop the rows, and closes the NVR's agent connection.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from nvrmon.cli import target
from nvrmon.settings import Settings
from nvrmon.store.fleet import Store

COMMANDS = ("nvr",)
Action = Callable[[Store, argparse.Namespace], Awaitable[int]]


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    text = "registered NVRs: list them, remove decommissioned or simulated ones"
    group = commands.add_parser("nvr", help=text, description=text).add_subparsers(dest="action", required=True)
    listing = group.add_parser("list", help="list NVRs with status and cameras")
    remove = group.add_parser("remove", help="remove an NVR with its cameras and agent tokens (logged as yours)")
    remove.add_argument("hostname")
    for parser in (listing, remove):
        target.add_flags(parser)


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env(**target.overrides(args))
    except ValueError as exc:
        print(f"nvrmon: {exc}", file=sys.stderr)
        return 2
    where = settings.database
    if isinstance(where, Path) and not where.exists():
        print(f"nvrmon: no database at {where} (pass --db or --database-url)", file=sys.stderr)
        return 1
    action: Action = _list if args.action == "list" else _remove
    return asyncio.run(_with_store(where, action, args))


async def _with_store(path: Path | str, action: Action, args: argparse.Namespace) -> int:
    store = await Store.open(path, pool_size=1)
    try:
        return await action(store, args)
    finally:
        await store.close()


def _actor() -> str:
    try:
        return f"{getpass.getuser()} (command line)"
    except (KeyError, OSError):  # no name for this uid (a container)
        return "the command line"


async def _list(store: Store, args: argparse.Namespace) -> int:
    rows = [("HOSTNAME", "STATUS", "REGION", "SITE", "CAMERAS", "LAST SEEN")]
    for nvr in await store.nvrs():
        seen = datetime.fromtimestamp(nvr.last_seen, UTC).strftime("%Y-%m-%d %H:%M UTC") if nvr.last_seen else "never"
        rows.append((nvr.hostname, nvr.status, nvr.region, nvr.site, str(nvr.cameras_total), seen))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


async def _remove(store: Store, args: argparse.Namespace) -> int:
    async with store.transaction(time.time()) as tx:
        removed = await tx.remove_nvr(args.hostname, _actor())
    if removed is None:
        print(f"nvrmon: no NVR {args.hostname!r} (`nvrmon nvr list` shows them)", file=sys.stderr)
        return 1
    print(
        f"removed {removed.hostname} with {len(removed.camera_ids)} cameras and {removed.tokens} agent token(s); "
        "a running hub drops it from open pages and closes its agent within about a second"
    )
    return 0
