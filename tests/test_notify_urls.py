"""Channel addresses: what lists and pages show of an Apprise URL, and which matchers a channel takes."""

from __future__ import annotations

import pytest

from nvrmon.alerts import routing, urls
from tests.incident_feed import MemoryFeed


@pytest.mark.parametrize(
    ("url", "shown", "secret"),
    [
        ("json://ops:pa55word@hooks.example.com/nvrmon", "json://ops:****@hooks.example.com/nvrmon", "pa55word"),
        ("ntfy://ntfy.example.com/alerts?token=tk_abcdef123456", "@ntfy.example.com/alerts", "tk_abcdef"),
        ("tgram://123456789:AAHxyzTokenPart/987654", "tgram://1...t/987654", "AAHxyz"),
        # Custom HTTP headers (+Name=value) are shown, as they say how it is sent, but not a credential in one.
        (
            "json://127.0.0.1:8080/h?+X-Api-Key=abc123&+X-Site=n1",
            "json://127.0.0.1:8080/h?+X-Api-Key=****&+X-Site=n1",
            "abc123",
        ),
        (
            "mailto://127.0.0.1:2525?mode=insecure&from=hub@example.com&to=ops@example.com",
            "mailto://127.0.0.1:2525/ops%40example.com",
            "",
        ),
    ],
)
def test_urls_masked_hides_credentials_and_keeps_where_it_goes(url: str, shown: str, secret: str) -> None:
    masked = urls.masked(urls.check(url))
    assert shown in masked
    assert not secret or secret not in masked
    assert "overflow=" not in masked  # Apprise's own defaults are not spelled out


def test_urls_check_refuses_what_apprise_cannot_send_to() -> None:
    for url in ("", "nosuch://x", "json://", "x" * 3000):
        with pytest.raises(urls.UrlError):
            urls.check(url)


def test_routing_matchers_all_must_hold_and_are_case_insensitive() -> None:
    incident = MemoryFeed().open(0, "North 1", ["n1"], region="North", severity="major")
    assert routing.takes({}, incident)
    assert routing.takes(routing.parse(["region=north", "severity=critical,major"]), incident)
    assert not routing.takes(routing.parse(["region=North", "severity=critical"]), incident)
    assert routing.takes(routing.parse(["site=North 1"]), incident)
    assert not routing.takes(routing.parse(["site=North 2"]), incident)
    for bad in (["severity=urgent"], ["colour=red"], ["site="], ["site=a", "site=b"]):
        with pytest.raises(routing.MatchError):
            routing.parse(bad)
