"""Command line, the fleet inventory: `nvrmon inventory import FILE` (YAML or CSV, all or nothing, `--dry-run`) and
`nvrmon inventory export [--format yaml|csv] [FILE]`, on the hub's database, also while the hub runs.

An import is one write transaction on the same WAL file that takes the next seq, as `nvrmon nvr remove` does; a
running hub sees the seq move past what it wrote (within about a second) and publishes the rows, so open pages show
the declared NVRs (missing until they connect) without a reload.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from nvrmon import fleetfile
from nvrmon.access.audit import CLI_ADDRESS, cli_actor
from nvrmon.cli import target
from nvrmon.inventory import Import, InventoryError
from nvrmon.settings import Settings
from nvrmon.store import inventory, inventory_rows
from nvrmon.store.fleet import Store

COMMANDS = ("inventory",)


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    text = "the expected fleet: import sites, NVRs and cameras from YAML or CSV, export the fleet (docs/inventory.md)"
    group = commands.add_parser("inventory", help=text, description=text).add_subparsers(dest="action", required=True)
    load = group.add_parser("import", help="declare the fleet in FILE (all or nothing; the same file twice is a no-op)")
    load.add_argument("file", type=Path, help="fleet.yaml or fleet.csv (by its name; or --format)")
    load.add_argument("--dry-run", action="store_true", help="show what would change and change nothing")
    export = group.add_parser("export", help="write the current fleet, declared and discovered, in the import format")
    export.add_argument("file", type=Path, nargs="?", help="where to write (default: standard output)")
    for parser in (load, export):
        parser.add_argument("--format", choices=fleetfile.FORMATS, help="yaml or csv (default: by the file's name)")
        target.add_flags(parser)


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env(**target.overrides(args))
    except ValueError as exc:
        print(f"nvrmon: {exc}", file=sys.stderr)
        return 2
    fmt: fleetfile.Format = args.format or (fleetfile.format_of(args.file.name) if args.file else "yaml")
    if args.action == "export":
        where = settings.database
        if isinstance(where, Path) and not where.exists():
            print(f"nvrmon: no database at {where} (pass --db or --database-url)", file=sys.stderr)
            return 1
        return asyncio.run(_export(settings, args.file, fmt))
    try:
        content = args.file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"nvrmon: can't read {args.file}: {exc}", file=sys.stderr)
        return 1
    try:
        declaration = fleetfile.parse(content, fmt)
    except InventoryError as exc:
        return _refused(args.file, exc)
    return asyncio.run(_import(settings, Import(declaration, args.dry_run), args.file))


def _refused(path: Path, exc: InventoryError) -> int:
    print(f"nvrmon: {path}: nothing imported; {len(exc.problems)} problem(s):", file=sys.stderr)
    for problem in exc.problems:
        print(f"  {path}: {problem}", file=sys.stderr)
    return 1


async def _import(settings: Settings, edit: Import, path: Path) -> int:
    store = await Store.open(settings.database, pool_size=1)
    limit = settings.max_cameras_per_nvr
    try:
        if edit.dry_run:
            found = await inventory.preview(store.database, edit, cli_actor(), max_cameras=limit)
        else:
            async with store.transaction(time.time()) as tx:
                found = await inventory.apply(tx, edit, cli_actor(), max_cameras=limit, address=CLI_ADDRESS)
    except InventoryError as exc:
        return _refused(path, exc)
    finally:
        await store.close()
    if not found.changes:
        print(f"{path}: nothing to change; the fleet already matches it")
        return 0
    for line in found.changes:
        print(f"  {line}")
    verb = "would change" if edit.dry_run else "changed"
    print(f"{path}: {verb} {len(found.changes)} thing(s)" + ("" if edit.dry_run else "; open pages show it shortly"))
    return 0


async def _export(settings: Settings, path: Path | None, fmt: fleetfile.Format) -> int:
    store = await Store.open(settings.database, pool_size=1)
    try:
        content = fleetfile.dump(await inventory_rows.declaration(store.database), fmt)
    finally:
        await store.close()
    if path is None:
        sys.stdout.write(content)
    else:
        path.write_text(content, encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)
    return 0
