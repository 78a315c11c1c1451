"""Test helpers for the audit log: what a hub's database recorded since a mark, read from its SQLite file."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import httpx

from tests.conftest import LiveHub

Entry = tuple[str, str, str, str, str]  # actor, action, target, detail, address


class AuditTrail:
    """The audit log of one hub's database: `mark()` before an action, `since()` the entries it added."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.last = 0

    def _rows(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.db_path) as db:
            return list(db.execute(sql, params))

    def mark(self) -> None:
        self.last = int(self._rows("SELECT coalesce(max(id), 0) FROM audit_log")[0][0])  # type: ignore[call-overload]

    def since(self) -> list[Entry]:
        """The entries added since the last mark (and mark again), oldest first."""
        rows = self._rows(
            "SELECT id, actor, action, target, detail, address FROM audit_log WHERE id > ? ORDER BY id", (self.last,)
        )
        if rows:
            self.last = int(rows[-1][0])  # type: ignore[call-overload]
        return [(str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5])) for r in rows]

    def one(self) -> Entry:
        """The single entry added since the last mark; fails if there were none or several."""
        found = self.since()
        assert len(found) == 1, found
        return found[0]

    def none(self) -> None:
        found = self.since()
        assert found == [], found


def page_csrf(hub: LiveHub, path: str, headers: dict[str, str]) -> str:
    """The CSRF token a page carries for the session in `headers` (its meta tag)."""
    html = httpx.get(f"{hub.url}{path}", headers=headers, timeout=5).text
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert match is not None, html[:300]
    return match.group(1)
