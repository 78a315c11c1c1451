"""ASGI entry point for `uvicorn app:app`: settings from NVRMON_* environment variables."""

from __future__ import annotations

from nvrmon.application import create_app
from nvrmon.settings import Settings

app = create_app(Settings.from_env())
