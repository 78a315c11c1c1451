"""Stage 3, the SQL dialects: the store's SQLite statements and schema, translated once each for PostgreSQL."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, Protocol


class Cursor(Protocol):
    """What the store reads back from a statement (aiosqlite's cursor has it, so does postgres.PgCursor)."""

    @property
    def rowcount(self) -> int: ...

    async def fetchone(self) -> Any: ...

    async def fetchall(self) -> Iterable[Any]: ...


class Connection(Protocol):
    """The writer connection inside a transaction, as the store modules use it, on either backend."""

    def execute(self, sql: str, parameters: Iterable[Any] | None = None, /) -> Any: ...

    def executemany(self, sql: str, parameters: Iterable[Iterable[Any]], /) -> Any: ...

    def executescript(self, sql_script: str, /) -> Any: ...


_TOKENS = re.compile(r"'(?:[^']|'')*'|\?(\d*)")
_JSON_EACH = re.compile(r"([\w.]+) IN \(SELECT value FROM json_each\((\?\d*)\)\)", re.IGNORECASE)
_SCALAR = re.compile(r"(?<![\w.])(max|min)\(", re.IGNORECASE)
_SIMPLE = (
    (re.compile(r"(?<![\w.])instr\(", re.IGNORECASE), "strpos("),
    (re.compile(r"\bAS REAL\)", re.IGNORECASE), "AS DOUBLE PRECISION)"),
    (re.compile(r"\bAS INTEGER\)", re.IGNORECASE), "AS BIGINT)"),
    (re.compile(r"\bLIKE\b"), "ILIKE"),  # SQLite's LIKE ignores ASCII case
    (re.compile(r"(?<![\w.])json_group_array\(", re.IGNORECASE), "json_agg("),
)


@functools.lru_cache(maxsize=4096)
def postgres(sql: str) -> str:
    """One statement in PostgreSQL's words: `$N` parameters, `= ANY($N)` for JSON id lists (the caller's JSON text
    becomes a typed array, see coerce), GREATEST/LEAST for two-argument max/min, strpos for instr."""
    sql = _JSON_EACH.sub(r"\1 = ANY(\2)", sql)
    for pattern, replacement in _SIMPLE:
        sql = pattern.sub(replacement, sql)
    sql = _scalars(sql)
    return _numbered(sql)


def _numbered(sql: str) -> str:
    highest = 0

    def mark(match: re.Match[str]) -> str:
        nonlocal highest
        if match.group(0).startswith("'"):
            return match.group(0)
        index = int(match.group(1)) if match.group(1) else highest + 1
        highest = max(highest, index)
        return f"${index}"

    return _TOKENS.sub(mark, sql)


def _scalars(sql: str) -> str:
    """max(a, b) -> GREATEST(a, b): an aggregate max has one argument, the scalar one two or more."""
    out: list[str] = []
    position = 0
    for match in _SCALAR.finditer(sql):
        if match.start() < position:
            continue
        depth, commas, end = 1, 0, match.end()
        while end < len(sql) and depth:
            char = sql[end]
            depth += (char == "(") - (char == ")")
            commas += char == "," and depth == 1
            end += 1
        if commas:
            word = "GREATEST(" if match.group(1).lower() == "max" else "LEAST("
            out.append(sql[position : match.start()] + word + _scalars(sql[match.end() : end]))
            position = end
    out.append(sql[position:])
    return "".join(out)


def coerce(types: Sequence[str], params: Sequence[Any]) -> list[Any]:
    """Parameters as PostgreSQL's inferred types want them (SQLite takes any value anywhere; asyncpg does not)."""
    return [_value(kind, value) for kind, value in zip(types, params, strict=False)]


def _value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind.endswith("[]"):
        items = json.loads(value) if isinstance(value, str) else list(value)
        return [_value(kind[:-2], item) for item in items]
    if kind in ("int2", "int4", "int8"):
        return int(value)
    if kind in ("float4", "float8", "numeric"):
        return float(value)
    if kind in ("text", "varchar", "name", "bpchar"):
        return value if isinstance(value, str) else str(value)
    if kind == "bool":
        return bool(value)
    return value


def row(record: Iterable[Any]) -> tuple[Any, ...]:
    """A PostgreSQL row as the store reads SQLite's: a tuple, sums as numbers (not Decimal)."""
    return tuple(_plain(value) for value in record)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


_IDENTITY = re.compile(r"\bid(\s+)INTEGER PRIMARY KEY( AUTOINCREMENT)?", re.IGNORECASE)
_TRIGGER = re.compile(r"CREATE TRIGGER .*?\bEND;", re.IGNORECASE | re.DOTALL)
_DDL = (
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\)\s*WITHOUT ROWID;", re.IGNORECASE), ");"),
)


def postgres_ddl(script: str) -> str:
    """A schema script (nvrmon/store/*.sql) for PostgreSQL: identity ids, 64-bit integers and floats (timestamps),
    no WITHOUT ROWID; triggers are left out (postgres.sql has them in plpgsql)."""
    script = _TRIGGER.sub("", script)
    script = _IDENTITY.sub(r"id\1BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", script)
    for pattern, replacement in _DDL:
        script = pattern.sub(replacement, script)
    return script


def column_type(definition: str) -> str:
    """An added column's SQLite definition for PostgreSQL."""
    for pattern, replacement in _DDL:
        definition = pattern.sub(replacement, definition)
    return definition
