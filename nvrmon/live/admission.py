"""Stage 6, admission: how many streams one session and one client address may hold open at once."""

from __future__ import annotations

from collections import Counter


class StreamCaps:
    """Counts open SSE streams per session and per client address; a stream over either cap is refused (429).

    An open stream holds a socket, a subscriber and its buffers for hours, so a script (or a page reopened in a
    loop) could otherwise hold thousands. Addresses in `exempt` (trusted proxies, behind which every browser shares
    one address) are only bound by the per-session cap. A cap of 0 means none.
    """

    def __init__(self, per_session: int, per_address: int, exempt: frozenset[str] = frozenset()) -> None:
        self.per_session = per_session
        self.per_address = per_address
        self.exempt = exempt
        self._sessions: Counter[str] = Counter()
        self._addresses: Counter[str] = Counter()

    def admit(self, session: str, address: str) -> str | None:
        """Count one more stream for (session, address); or, over a cap, why not (and count nothing)."""
        if session and 0 < self.per_session <= self._sessions[session]:
            return f"too many open streams for this session (at most {self.per_session}); close some pages\n"
        if address not in self.exempt and 0 < self.per_address <= self._addresses[address]:
            return f"too many open streams from this address (at most {self.per_address})\n"
        if session:
            self._sessions[session] += 1
        self._addresses[address] += 1
        return None

    def release(self, session: str, address: str) -> None:
        if session:
            self._drop(self._sessions, session)
        self._drop(self._addresses, address)

    @staticmethod
    def _drop(counts: Counter[str], key: str) -> None:
        if counts[key] > 1:
            counts[key] -= 1
        else:
            counts.pop(key, None)

    def open_streams(self, address: str) -> int:
        return self._addresses[address]
