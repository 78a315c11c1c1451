"""Cross-cutting protection, the bounded limiters: failed logins, agent frame rates, concurrent agents."""

from __future__ import annotations

import time
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


# While the attempts in flight could lock a key, a new one waits this long rather than being evaluated meanwhile.
BUSY_WAIT = 1.0


class Throttle:
    """Counts failures per key; `limit` failures within `window` seconds lock the key for `window` seconds.

    Attempts still being evaluated count too (`hold`, then `fail` or `settle`): a burst of simultaneous attempts
    can't get more than `limit` of them evaluated before the first failure is known.

    Memory is bounded: at most `max_keys` keys are tracked, the least recently failed forgotten first. (An attacker who
    sprays more names than that can make the hub forget a lock early; the per-address throttle still holds them.)
    """

    def __init__(self, limit: int, window: float, max_keys: int = 10_000) -> None:
        self.limit = max(1, limit)
        self.window = window
        self.max_keys = max_keys
        self._entries: OrderedDict[str, tuple[int, float, float]] = OrderedDict()  # key -> (failures, since, locked)
        self._pending: dict[str, int] = {}  # key -> attempts held and not yet settled (as many as requests in flight)

    def __len__(self) -> int:
        return len(self._entries)

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until `key` may try again; 0 when it may."""
        failures = 0
        entry = self._entries.get(key)
        if entry is not None:
            failures, since, locked_until = entry
            if locked_until > now:
                return locked_until - now
            if locked_until or now - since > self.window:
                del self._entries[key]  # the lock or the window is over: start afresh
                failures = 0
        if failures + self._pending.get(key, 0) >= self.limit:
            return BUSY_WAIT
        return 0.0

    def hold(self, key: str) -> None:
        """An attempt for `key` is being evaluated; it counts against the limit until `fail` or `settle`."""
        self._pending[key] = self._pending.get(key, 0) + 1

    def settle(self, key: str) -> None:
        """The held attempt is over (failed or not)."""
        left = self._pending.pop(key, 0) - 1
        if left > 0:
            self._pending[key] = left

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

    def attempt(self, name: str, address: str, now: float) -> LoginAttempt:
        """Check the limits and reserve the attempt's place in them in one step (no await in between), before any
        password is hashed. The caller must end the attempt: `failed`, `succeeded` or `release`."""
        wait = self.retry_after(name, address, now)
        attempt = LoginAttempt(self, name.lower(), address, wait)
        if wait == 0:
            self.users.hold(attempt.name)
            self.addresses.hold(address)
        return attempt


class LoginAttempt:
    """One login's reserved place in the limits; `wait` > 0: refused, nothing reserved (try again after `wait` s)."""

    def __init__(self, limiter: LoginLimiter, name: str, address: str, wait: float) -> None:
        self.limiter = limiter
        self.name = name
        self.address = address
        self.wait = wait
        self._open = wait == 0

    def _settle(self) -> bool:
        if not self._open:
            return False
        self._open = False
        self.limiter.users.settle(self.name)
        self.limiter.addresses.settle(self.address)
        return True

    def failed(self, now: float) -> None:
        if self._settle():
            self.limiter.users.fail(self.name, now)
            self.limiter.addresses.fail(self.address, now)

    def succeeded(self) -> None:
        # Only the name's count is cleared: one good login must not reset an address that is guessing other names.
        if self._settle():
            self.limiter.users.forget(self.name)

    def release(self) -> None:
        """End an attempt that neither failed nor succeeded (an error, a cancelled request): it counts as failed, so
        breaking requests off can't buy extra guesses."""
        self.failed(time.time())


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
