"""nvrmon: a live monitor for fleets of NVRs and IP cameras."""

from __future__ import annotations

__version__ = "0.1.0"
