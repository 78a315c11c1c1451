"""Agent side, NVR sources: pollers that list an NVR's cameras and their recording state without per-camera config."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Protocol

from nvrmon.agent.facts import SourceReport

# kind -> module under nvrmon.agent.sources; each module has `async def poll(config, *, timeout) -> SourceReport`.
KINDS = {"frigate": "frigate", "zoneminder": "zoneminder", "isapi": "isapi", "onvif": "onvif_nvr"}


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """Where an NVR source answers and how to log in (the agent's `[nvr] source = {…}` or `[source]` table)."""

    kind: str
    url: str
    username: str = ""
    password: str = field(default="", repr=False)  # never in logs
    verify_tls: bool = True
    max_cameras: int = 1024  # at most this many cameras per report (the hub's max_cameras_per_nvr)
    max_response_bytes: int = 4_000_000  # a larger answer is refused, not read


class Poll(Protocol):
    def __call__(self, config: SourceConfig, *, timeout: float) -> Awaitable[SourceReport]: ...


def make_source(kind: str) -> Poll:
    """The poll function of a source kind; ValueError names the known kinds."""
    module = KINDS.get(kind)
    if module is None:
        raise ValueError(f"unknown source kind {kind!r}; known: {', '.join(sorted(KINDS))}")
    poll: Poll = importlib.import_module(f"nvrmon.agent.sources.{module}").poll
    return poll
