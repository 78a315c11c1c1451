"""Command line, the database flags: `--db PATH` and `--database-url URL` on every command that opens the store."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

DB_HELP = "the hub's SQLite database (default ./nvrmon.db; NVRMON_DB_PATH)"
URL_HELP = "the hub's database as a URL: postgresql://USER:PASSWORD@HOST/DB or sqlite:///PATH (NVRMON_DATABASE_URL)"


def add_flags(parser: argparse.ArgumentParser, db_help: str = DB_HELP) -> None:
    parser.add_argument("--db", type=Path, help=db_help)
    parser.add_argument("--database-url", help=URL_HELP)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Settings overrides: --database-url wins, then --db (a file named on the command line beats the environment's
    NVRMON_DATABASE_URL), then the environment."""
    url = getattr(args, "database_url", None)
    db = getattr(args, "db", None)
    return {"db_path": db, "database_url": url if url else ("" if db is not None else None)}
