"""Failure reasons of the agent's probes and sources: one bounded printable line, no credentials."""

from __future__ import annotations

import pytest

from nvrmon.agent.sources import SourceConfig, make_source
from nvrmon.agent.sources.reasons import MAX_REASON, clean


def test_reasons_mask_credentials_in_urls_and_known_secrets() -> None:
    text = clean("onvif fault: cannot reach rtsp://admin:hunter2@192.0.2.5/live, password hunter2", ["hunter2"])
    assert "hunter2" not in text
    assert text == "onvif fault: cannot reach rtsp://***@192.0.2.5/live, password ***"


def test_reasons_are_one_bounded_printable_line() -> None:
    text = clean("frigate:\n\tfault\x00\x1b[31m" + "x" * 500)
    assert "\n" not in text and "\x00" not in text and "\x1b" not in text
    assert len(text) == MAX_REASON and text.startswith("frigate: fault [31m") and text.endswith("…")


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["frigate", "zoneminder", "isapi", "onvif"])
async def test_sources_report_a_bad_url_instead_of_raising(kind: str) -> None:
    report = await make_source(kind)(SourceConfig(kind=kind, url="ftp://192.0.2.1/"), timeout=1)
    assert not report.ok and "url must be http" in report.reason
