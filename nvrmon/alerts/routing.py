"""Alerts, routing: which channels take an incident, by its site, region and severity (`--match key=value`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from nvrmon.alerts.feed import Incident

KEYS = ("site", "region", "severity")
SEVERITIES = ("critical", "major", "minor")
MAX_VALUE = 200


class MatchError(ValueError):
    """A matcher that cannot be used; the message says which and why."""


def parse(matchers: Iterable[str]) -> dict[str, str]:
    """`site=North 1`, `region=North,South`, `severity=critical` -> {key: "v1,v2"}; one entry per key."""
    match: dict[str, str] = {}
    for text in matchers:
        key, sep, value = text.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or key not in KEYS:
            raise MatchError(f"{text!r}: a matcher is site=…, region=… or severity=…")
        values = [v.strip() for v in value.split(",") if v.strip()]
        if not values or len(value) > MAX_VALUE:
            raise MatchError(f"{text!r}: give one or more comma-separated values (at most {MAX_VALUE} characters)")
        if key == "severity":
            unknown = [v for v in values if v.lower() not in SEVERITIES]
            if unknown:
                raise MatchError(f"{text!r}: severity is one of {', '.join(SEVERITIES)}")
            values = [v.lower() for v in values]
        if key in match:
            raise MatchError(f"{key} given twice: list the values once, comma-separated ({key}=a,b)")
        match[key] = ",".join(values)
    return match


def takes(match: Mapping[str, str], incident: Incident) -> bool:
    """Every matcher given must hold (case-insensitively); an empty matcher takes everything."""
    facts = {"site": incident.site, "region": incident.region, "severity": incident.severity}
    for key, wanted in match.items():
        if wanted and facts[key].casefold() not in {v.casefold() for v in wanted.split(",")}:
            return False
    return True
