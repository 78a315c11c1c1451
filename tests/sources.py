"""Reading the package's own source for structural tests (walls, markup): ast.parse with a CPython 3.11 workaround."""

from __future__ import annotations

import ast


def parse(source: str, filename: str = "<unknown>") -> ast.Module:
    """ast.parse, retried: CPython 3.11 can raise a spurious "AST constructor recursion depth mismatch" SystemError
    (python/cpython#106905) when another thread of the test process builds an AST at the same moment; the check
    compares one shared counter before and after, so a retry on a quiet moment succeeds."""
    for attempt in range(5):
        try:
            return ast.parse(source, filename)
        except SystemError:
            if attempt == 4:
                raise
    raise AssertionError("unreachable")
