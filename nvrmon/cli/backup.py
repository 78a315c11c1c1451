"""Command line, safekeeping: `nvrmon backup FILE` (online, while the hub runs) and `nvrmon restore FILE` (stopped).

See docs/operations.md: a backup is the database as of one commit, whose seq it prints; a restore refuses while a
hub has the database open, checks the copy first, keeps the file it replaces, and gives the restored database a new
epoch so every open page reloads its regions rather than trusting a cursor from another history.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nvrmon.cli import target
from nvrmon.settings import Settings
from nvrmon.store.backup import BackupError, backup, restore

COMMANDS = ("backup", "restore")


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    text = "copy the hub's database to FILE while the hub runs (SQLite's online backup)"
    take = commands.add_parser("backup", help=text, description=text)
    take.add_argument("file", type=Path, metavar="FILE")
    take.add_argument("--force", action="store_true", help="replace FILE if it exists")
    text = "replace the hub's database with the backup FILE (stop the hub first; the old file is kept beside it)"
    put = commands.add_parser("restore", help=text, description=text)
    put.add_argument("file", type=Path, metavar="FILE")
    for parser in (take, put):
        target.add_flags(parser)


def run(args: argparse.Namespace) -> int:
    try:
        where = Settings.from_env(**target.overrides(args)).database
        if not isinstance(where, Path):
            # A PostgreSQL database is backed up by PostgreSQL's own tools (docs/operations.md, "Backends").
            raise BackupError(
                f"{args.command} copies a SQLite file; for PostgreSQL use pg_dump (backup) and pg_restore or psql "
                "(restore) on the database in NVRMON_DATABASE_URL"
            )
        db_path = where
        if args.command == "backup":
            taken = backup(db_path, args.file, force=args.force)
            print(f"nvrmon: backed up {db_path} at seq {taken.seq} to {taken.path} ({taken.size} bytes)")
        else:
            put = restore(args.file, db_path)
            kept = f"; the replaced database is kept as {put.kept}" if put.kept else ""
            print(f"nvrmon: restored {args.file} (seq {put.seq}) to {db_path} under the new epoch {put.epoch}{kept}")
    except (BackupError, ValueError, OSError) as exc:
        print(f"nvrmon {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0
