"""Cross-cutting protection, the bounded limiters: failed logins, agent frame rates, concurrent agents."""

from __future__ import annotations

from collections import OrderedDict


class TokenBucket:
    """`rate` tokens a second up to `capacity`; take() spends one. O(1) state, so one per agent connection is cheap."""

    __slots__ = ("rate", "capacity", "tokens", "stamp")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.stamp = now

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class Throttle:
    """Counts failures per key; `limit` failures within `window` seconds lock the key for `window` seconds.

    Memory is bounded: at most `max_keys` keys are tracked, the least recently failed forgotten first. (An attacker who
    sprays more names than that can make the hub forget a lock early; the per-address throttle still holds them.)
    """

    def __init__(self, limit: int, window: float, max_keys: int = 10_000) -> None:
        self.limit = max(1, limit)
        self.window = window
        self.max_keys = max_keys
        self._entries: OrderedDict[str, tuple[int, float, float]] = OrderedDict()  # key -> (failures, since, locked)

    def __len__(self) -> int:
        return len(self._entries)

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until `key` may try again; 0 when it isn't locked."""
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        failures, since, locked_until = entry
        if locked_until > now:
            return locked_until - now
        if locked_until or now - since > self.window:
            del self._entries[key]  # the lock or the window is over: start afresh
        return 0.0

    def fail(self, key: str, now: float) -> None:
        failures, since, locked_until = self._entries.pop(key, (0, now, 0.0))
        if now - since > self.window or (locked_until and locked_until <= now):
            failures, since = 0, now
        failures += 1
        self._entries[key] = (failures, since, now + self.window if failures >= self.limit else 0.0)
        while len(self._entries) > self.max_keys:
            self._entries.popitem(last=False)

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)


class LoginLimiter:
    """Failed logins, throttled per user name (lockout) and per client address (password spraying)."""

    def __init__(self, user_limit: int, address_limit: int, window: float, max_keys: int = 10_000) -> None:
        self.users = Throttle(user_limit, window, max_keys)
        self.addresses = Throttle(address_limit, window, max_keys)

    def retry_after(self, name: str, address: str, now: float) -> float:
        return max(self.users.retry_after(name.lower(), now), self.addresses.retry_after(address, now))

    def failed(self, name: str, address: str, now: float) -> None:
        self.users.fail(name.lower(), now)
        self.addresses.fail(address, now)

    def succeeded(self, name: str) -> None:
        # Only the name's count is cleared: one good login must not reset an address that is guessing other names.
        self.users.forget(name.lower())


class Gate:
    """At most `limit` holders at once (concurrent agent connections)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def acquire(self) -> bool:
        if self.held >= self.limit:
            return False
        self.held += 1
        return True

    def release(self) -> None:
        self.held = max(0, self.held - 1)
