"""The walls of docs/architecture.md: which room may import which, and how large a module may grow."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.sources import parse

PACKAGE = Path(__file__).resolve().parent.parent / "nvrmon"

# The shared vocabulary: imported by every room, importing only itself.
VOCABULARY = {
    "settings",
    "models",
    "protocol",
    "filters",
    "names",
    "wire",
    "devices",
    "inventory",
    "fleetfile",
    "incidents",
    "availability",
}

# Room -> the rooms it may import (besides itself and the vocabulary). Mirrors the table in docs/architecture.md.
ALLOWED: dict[str, set[str]] = {
    "vocabulary": set(),
    "store": set(),
    "access": {"store"},
    "ingest": {"store", "access"},
    "live": {"store", "access"},
    "alerts": {"store", "access"},
    "web": {"live", "access", "store", "alerts"},
    "agent": set(),
    "cli": {"agent", "access", "store", "ingest", "live", "web", "wiring", "alerts"},
    "wiring": {"agent", "access", "store", "ingest", "live", "web", "cli", "alerts"},
}
# Third-party libraries that mark a stage: the store alone talks SQL, only live and web render HTML, only web
# speaks Prometheus (web/metrics.py).
FORBIDDEN_LIBRARIES: dict[str, set[str]] = {
    "vocabulary": {"aiosqlite", "sqlite3", "asyncpg", "jinja2", "starlette", "websockets", "prometheus_client"},
    "store": {"jinja2", "starlette", "websockets", "prometheus_client"},
    "access": {"aiosqlite", "sqlite3", "asyncpg", "jinja2", "prometheus_client"},
    "ingest": {"aiosqlite", "sqlite3", "asyncpg", "jinja2", "prometheus_client"},
    "live": {"aiosqlite", "sqlite3", "asyncpg", "prometheus_client"},
    "alerts": {"aiosqlite", "sqlite3", "asyncpg", "jinja2", "starlette", "websockets", "prometheus_client"},
    "web": {"aiosqlite", "sqlite3", "asyncpg"},
    "agent": {"aiosqlite", "sqlite3", "asyncpg", "jinja2", "starlette", "prometheus_client"},
}
MAX_LINES = 400


def room_of(module: str) -> str:
    """'nvrmon.store.fleet' -> 'store'; top-level vocabulary modules -> 'vocabulary'; other top-level ones (the
    application, the server socket) -> 'wiring'."""
    parts = module.split(".")
    if len(parts) > 1 and (PACKAGE / parts[1]).is_dir():
        return parts[1]
    if len(parts) > 1 and parts[1] in VOCABULARY:
        return "vocabulary"
    return "wiring"


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(relative.parts)
        found.append((name.removesuffix(".__init__"), path))
    return found


def imports_of(path: Path) -> list[tuple[int, str]]:
    """Every module an import statement names, at any depth (lazy imports inside functions count too)."""
    names: list[tuple[int, str]] = []
    for node in ast.walk(parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "nvrmon":  # `from nvrmon import protocol`: the names are modules
                names += [(node.lineno, f"nvrmon.{alias.name}") for alias in node.names]
            else:
                names.append((node.lineno, node.module))
    return names


def crossings(found: list[tuple[str, Path]] | None = None) -> list[str]:
    problems = []
    for name, path in modules() if found is None else found:
        room = room_of(name)
        for line, target in imports_of(path):
            where = f"{name.replace('.', '/')}.py:{line}"
            top = target.split(".")[0]
            if top == "nvrmon":
                other = room_of(target)
                if other not in (room, "vocabulary") and other not in ALLOWED[room]:
                    problems.append(f"{where}: {room} imports {target} ({other})")
            elif top in FORBIDDEN_LIBRARIES.get(room, set()):
                problems.append(f"{where}: {room} imports {top}")
    return problems


def test_architecture_rooms_import_only_what_the_map_allows() -> None:
    assert crossings() == []


def test_architecture_every_room_is_in_the_map() -> None:
    rooms = {room_of(name) for name, _ in modules()}
    assert rooms <= set(ALLOWED), rooms - set(ALLOWED)
    documented = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    for room in rooms - {"vocabulary", "wiring"}:
        assert f"nvrmon/{room}/" in documented, room


def test_architecture_modules_stay_small_and_say_their_stage() -> None:
    too_big, undocumented = [], []
    for name, path in modules():
        source = path.read_text()
        if source.count("\n") > MAX_LINES:
            too_big.append(f"{name}: {source.count(chr(10))} lines")
        tree = parse(source)
        if not (ast.get_docstring(tree) or "").strip():
            undocumented.append(name)
    assert too_big == []
    assert undocumented == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from nvrmon.web import pages\n", ["nvrmon/store/probe.py:1: store imports nvrmon.web (web)"]),
        ("import jinja2\n", ["nvrmon/store/probe.py:1: store imports jinja2"]),
        (
            "def f():\n    from nvrmon.live.views import Views\n",
            ["nvrmon/store/probe.py:2: store imports nvrmon.live.views (live)"],
        ),
        ("from nvrmon import protocol\nfrom nvrmon.store import fleet\n", []),
    ],
)
def test_architecture_wall_check_catches_a_crossing(tmp_path: Path, source: str, expected: list[str]) -> None:
    """The checker itself: a store module importing the web room, a template engine or (lazily) live is caught."""
    probe = tmp_path / "probe.py"
    probe.write_text(source)
    assert crossings([("nvrmon.store.probe", probe)]) == expected
