"""The limiters (token bucket, login throttles, connection gate) and the content security policy."""

from __future__ import annotations

import pytest

from nvrmon.access.headers import content_security_policy
from nvrmon.access.limits import Gate, LoginLimiter, Throttle, TokenBucket


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=10, capacity=5, now=0.0)
    assert [bucket.take(0.0) for _ in range(6)] == [True] * 5 + [False]
    assert bucket.take(0.1) and not bucket.take(0.1)  # 0.1 s at 10/s refills one
    assert [bucket.take(100.0) for _ in range(6)].count(True) == 5  # never more than the capacity


def test_throttle_locks_a_key_after_the_limit_for_the_window() -> None:
    throttle = Throttle(limit=3, window=60)
    for t in (0, 1):
        throttle.fail("vera", t)
        assert throttle.retry_after("vera", t) == 0
    throttle.fail("vera", 2)
    assert throttle.retry_after("vera", 3) == pytest.approx(59)
    assert throttle.retry_after("other", 3) == 0
    assert throttle.retry_after("vera", 63) == 0  # the lock is over: a fresh start
    throttle.fail("vera", 64)
    assert throttle.retry_after("vera", 64) == 0


def test_throttle_forgets_failures_older_than_the_window() -> None:
    throttle = Throttle(limit=2, window=10)
    throttle.fail("k", 0)
    throttle.fail("k", 11)  # the first failure is out of the window
    assert throttle.retry_after("k", 11) == 0


def test_throttle_memory_is_bounded() -> None:
    throttle = Throttle(limit=5, window=60, max_keys=100)
    for i in range(10_000):
        throttle.fail(f"name-{i}", 0)
    assert len(throttle) == 100
    throttle.fail("name-9999", 0)  # the most recent keys are the ones kept
    assert len(throttle) == 100


def test_login_limiter_counts_names_case_insensitively_and_addresses_apart() -> None:
    limiter = LoginLimiter(user_limit=2, address_limit=3, window=60)
    limiter.failed("Vera", "10.0.0.1", 0)
    limiter.failed("vera", "10.0.0.2", 0)
    assert limiter.retry_after("VERA", "10.0.0.3", 1) > 0  # the name is locked from every address
    limiter.failed("a", "10.0.0.9", 0)
    limiter.failed("b", "10.0.0.9", 0)
    limiter.failed("c", "10.0.0.9", 0)
    assert limiter.retry_after("d", "10.0.0.9", 1) > 0  # the address sprayed names
    limiter.succeeded("a")
    assert limiter.retry_after("d", "10.0.0.9", 1) > 0  # a good login doesn't clear the address


def test_gate_admits_up_to_its_limit() -> None:
    gate = Gate(2)
    assert gate.acquire() and gate.acquire() and not gate.acquire()
    gate.release()
    assert gate.acquire()


def test_csp_frame_ancestors_are_none_unless_origins_are_given() -> None:
    assert "frame-ancestors 'none'" in content_security_policy()
    policy = content_security_policy(["'self'", "https://portal.example"])
    assert "frame-ancestors 'self' https://portal.example" in policy and "'none'; " not in policy.split("frame")[1]
    assert "script-src 'self'" in policy and "unsafe" not in policy
