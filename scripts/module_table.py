"""Prints the module table of docs/architecture.md (module, lines, first docstring line) from the package itself."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "nvrmon"


def rows() -> list[str]:
    out = ["| module | lines | what it owns |", "| --- | ---: | --- |"]
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text()
        doc = (ast.get_docstring(ast.parse(source)) or "").strip().splitlines()
        out.append(f"| `{path.relative_to(PACKAGE.parent)}` | {source.count(chr(10))} | {doc[0] if doc else ''} |")
    return out


def main() -> int:
    table = "\n".join(rows())
    doc = PACKAGE.parent / "docs" / "architecture.md"
    if "--write" in sys.argv:
        text = doc.read_text()
        start, end = text.index("## Modules\n") + len("## Modules\n"), text.index("## Where a change goes")
        note = "\nGenerated from the docstrings by `python3 scripts/module_table.py --write`.\n\n"
        doc.write_text(text[:start] + note + table + "\n\n" + text[end:])
    else:
        print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
