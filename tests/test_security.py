"""The limiters (token bucket, login throttles, connection gate), the security headers, and the __Host- cookies."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from nvrmon.access.headers import content_security_policy
from nvrmon.access.limits import Gate, LoginLimiter, Throttle, TokenBucket
from tests.conftest import PASSWORD, LiveHub, login_form_token


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
    limiter.attempt("Vera", "10.0.0.1", 0).failed(0)
    limiter.attempt("vera", "10.0.0.2", 0).failed(0)
    assert limiter.attempt("VERA", "10.0.0.3", 1).wait > 0  # the name is locked from every address
    for name in ("a", "b", "c"):
        limiter.attempt(name, "10.0.0.9", 0).failed(0)
    assert limiter.attempt("d", "10.0.0.9", 1).wait > 0  # the address sprayed names
    assert limiter.retry_after("a", "10.0.0.1", 1) == 0
    limiter.attempt("a", "10.0.0.1", 1).succeeded()
    assert limiter.attempt("d", "10.0.0.9", 1).wait > 0  # a good login doesn't clear the address


def test_login_attempts_in_flight_count_against_the_limit_until_they_end() -> None:
    limiter = LoginLimiter(user_limit=2, address_limit=50, window=60)
    first, second = limiter.attempt("vera", "10.0.0.1", 0), limiter.attempt("vera", "10.0.0.2", 0)
    assert first.wait == 0 and second.wait == 0
    refused = limiter.attempt("vera", "10.0.0.3", 0)
    assert refused.wait > 0  # two are being evaluated: a third could only be one too many
    refused.release()  # a refused attempt reserved nothing, so releasing it changes nothing
    first.succeeded()
    first.release()  # after an outcome, release is a no-op
    second.release()  # ended without an outcome (an error, a cancelled request): counted as a failure
    third = limiter.attempt("vera", "10.0.0.3", 0)
    assert third.wait == 0
    assert limiter.attempt("vera", "10.0.0.4", 0).wait > 0  # one failure and one in flight make the limit of 2
    third.failed(1)
    assert limiter.retry_after("vera", "10.0.0.5", 1) == pytest.approx(60)  # two failures: locked for the window


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


@pytest.mark.anyio
async def test_simultaneous_wrong_passwords_get_at_most_the_limit_evaluated(
    start_hub: Callable[..., LiveHub],
) -> None:
    hub = start_hub(LOGIN_MAX_FAILURES="5", LOGIN_IP_MAX_FAILURES="50", LOGIN_LOCKOUT="600")
    with httpx.Client(base_url=hub.url) as client:
        token = login_form_token(client.get("/login").text)
        cookies = dict(client.cookies.items())

    async with httpx.AsyncClient(base_url=hub.url, cookies=cookies, timeout=60) as client:

        async def log_in(password: str, delay: float = 0.0) -> httpx.Response:
            await asyncio.sleep(delay)
            form = {"username": hub.username, "password": password, "csrf_token": token}
            return await client.post("/login", data=form)

        wrong = [log_in(f"guess-{i}") for i in range(59)]
        # The right password arrives while the wrong ones are still being hashed: it must not get in meanwhile.
        *answers, right = await asyncio.gather(*wrong, log_in(PASSWORD, delay=0.05))
    statuses = [answer.status_code for answer in answers]
    assert statuses.count(401) <= 5, statuses  # 401: the password was evaluated; 429: refused before hashing
    assert set(statuses) <= {401, 429}
    assert right.status_code == 429 and "nvrmon_session" not in right.headers.get("set-cookie", "")
    assert int(right.headers["retry-after"]) >= 1


def _over_https(headers: dict[str, str] | None = None) -> dict[str, str]:
    return {"X-Forwarded-Proto": "https", **(headers or {})}


def test_over_https_only_host_prefixed_cookies_are_read(start_hub: Callable[..., LiveHub]) -> None:
    hub = start_hub(TRUSTED_PROXIES="127.0.0.1")
    with httpx.Client(base_url=hub.url) as client:
        page = client.get("/login", headers=_over_https())
        csrf = page.headers["set-cookie"].split(";", 1)[0]
        assert csrf.startswith("__Host-nvrmon_csrf=")
        form = {"username": hub.username, "password": PASSWORD, "csrf_token": login_form_token(page.text)}
        answer = client.post("/login", data=form, headers=_over_https({"Cookie": csrf}))
        assert answer.status_code == 303
        session = answer.headers["set-cookie"].split(";", 1)[0]
        assert session.startswith("__Host-nvrmon_session=")
        value = session.partition("=")[2]

        def summary(cookie: str) -> int:
            return client.get("/api/summary", headers=_over_https({"Cookie": cookie})).status_code

        assert summary(f"__Host-nvrmon_session={value}") == 200
        assert summary(f"nvrmon_session={value}") == 401  # the same value without the prefix is not read
        # A planted double-submit cookie without the prefix doesn't make a login form valid.
        planted = "p" * 32
        form = {"username": hub.username, "password": PASSWORD, "csrf_token": planted}
        refused = client.post("/login", data=form, headers=_over_https({"Cookie": f"nvrmon_csrf={planted}"}))
        assert refused.status_code == 403 and "__Host-nvrmon_session" not in refused.headers.get("set-cookie", "")
    assert hub.get("/api/summary").status_code == 200  # plain http still uses the plain names


SECURITY_HEADERS = ("content-security-policy", "x-frame-options", "referrer-policy", "x-content-type-options")


@pytest.mark.parametrize(
    ("path", "logged_in", "status"),
    [
        ("/events?view=dashboard", True, 200),
        ("/events?view=no-such-view", True, 400),
        ("/events?view=dashboard", False, 401),
        ("/poll?view=dashboard&wait=0", True, 200),
        ("/poll?view=dashboard&wait=0", False, 401),
        ("/api/summary", True, 200),
        ("/api/nvrs/999999", True, 404),
        ("/api/summary", False, 401),
        ("/api/nvrs?status=nonsense", True, 400),
        ("/healthz", False, 200),
        ("/", True, 200),
        ("/", False, 303),
        ("/admin", True, 200),
        ("/no-such-page", True, 404),
    ],
)
def test_every_answer_carries_the_security_headers_and_no_store(
    live_hub: LiveHub, path: str, logged_in: bool, status: int
) -> None:
    headers = live_hub.headers if logged_in else {}
    with httpx.Client(base_url=live_hub.url, timeout=10) as client, client.stream("GET", path, headers=headers) as got:
        assert got.status_code == status
        for name in SECURITY_HEADERS:
            assert name in got.headers, (name, dict(got.headers))
        assert (
            got.headers["x-frame-options"] == "DENY"
            and "frame-ancestors 'none'" in got.headers["content-security-policy"]
        )
        assert got.headers.get("cache-control") == "no-store", dict(got.headers)


def test_static_assets_may_be_cached_but_carry_the_security_headers(live_hub: LiveHub) -> None:
    got = httpx.get(f"{live_hub.url}/static/transport.js")
    assert got.status_code == 200 and "no-store" not in got.headers.get("cache-control", "")
    assert all(name in got.headers for name in SECURITY_HEADERS)
