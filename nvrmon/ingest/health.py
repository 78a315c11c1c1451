"""Stage 2, the hub's storage health: tell a store that refuses writes from a frame that breaks a rule, and say so."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Literal

log = logging.getLogger("nvrmon.ingest.health")

# Retry a refused batch after 50 ms, doubling up to 2 s: quick for a lock held a moment, cheap for a full disk.
RETRY_FIRST = 0.05
RETRY_MAX = 2.0


class StorageUnavailable(Exception):
    """Work the hub could not commit because the store refuses writes; the agent should retry later."""


class StorageHealth:
    """ok, or degraded since a failed write until the next commit; logs once per change of state, not per retry."""

    def __init__(self) -> None:
        self.status: Literal["ok", "degraded"] = "ok"
        self.since = time.time()
        self.last_error = ""
        self.failures = 0  # failed write attempts in the current outage
        # Told of each change of state, after it is recorded (the application shows it on every open page); must
        # not block or raise: it runs on the writer's task.
        self.on_change: Callable[[StorageHealth], None] | None = None

    @property
    def degraded(self) -> bool:
        return self.status == "degraded"

    def failed(self, exc: BaseException) -> bool:
        """Record a refused write; True when this starts an outage."""
        self.failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        if self.status == "degraded":
            return False
        self.status, self.since = "degraded", time.time()
        log.error("storage refused a write (%s): acknowledgements paused, retrying with backoff", self.last_error)
        self._changed()
        return True

    def committed(self) -> bool:
        """Record a commit; True when this ends an outage."""
        if self.status == "ok":
            return False
        outage, attempts = time.time() - self.since, self.failures
        self.status, self.since, self.failures = "ok", time.time(), 0
        log.warning("storage accepts writes again after %.1f s and %d failed attempts", outage, attempts)
        self._changed()
        return True

    def _changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change(self)
            except Exception:  # showing the state must never stop the writer that records it
                log.exception("telling of a storage state change failed")

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "since": round(self.since, 3), "last_error": self.last_error,
                "failures": self.failures}  # fmt: skip
