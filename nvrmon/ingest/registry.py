"""Stage 2, the hostnames the hub knows: at most one NVR per confusable skeleton (nvrmon/names.py, Unicode TS #39).

A rogue agent (or a typo in an enrollment) must not register `pn-а` with a Cyrillic `а` beside the real `pn-a`:
on every page the two would look the same. The writer checks each hello against this map; the endpoint checks
first too, so a refused look-alike spends no enrollment use.
"""

from __future__ import annotations

from collections.abc import Iterable

from nvrmon import names


class Hostnames:
    """skeleton -> the hostname registered with it. Only the hub's writer task and its endpoint read or change it."""

    def __init__(self, registered: Iterable[tuple[int, str]] = ()) -> None:
        self._by_skeleton: dict[str, str] = {}
        self._by_id: dict[int, str] = {}
        for nvr_id, hostname in registered:
            self.add(nvr_id, hostname)

    def lookalike(self, hostname: str) -> str | None:
        """The registered hostname that `hostname` can't be told apart from, if it is not that very hostname."""
        existing = self._by_skeleton.get(names.skeleton(hostname))
        return existing if existing is not None and existing != hostname else None

    def add(self, nvr_id: int, hostname: str) -> None:
        self._by_skeleton.setdefault(names.skeleton(hostname), hostname)
        self._by_id[nvr_id] = hostname

    def forget(self, nvr_id: int) -> None:
        """The NVR was removed: its name is free again (for itself, or a different-looking one)."""
        hostname = self._by_id.pop(nvr_id, None)
        if hostname is not None and self._by_skeleton.get(names.skeleton(hostname)) == hostname:
            del self._by_skeleton[names.skeleton(hostname)]

    def __len__(self) -> int:
        return len(self._by_id)
