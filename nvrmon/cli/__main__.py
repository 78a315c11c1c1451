"""`python -m nvrmon.cli`: the same entry point as the `nvrmon` command."""

from __future__ import annotations

from nvrmon.cli import main

raise SystemExit(main())
