"""`nvrmon channel add|list|remove|test` in its own process, against a real webhook sink and a real SMTP server."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli
from tests.sinks import HttpSink, SmtpSink, free_port, wait_for


def test_channel_add_list_test_reach_a_webhook_without_showing_its_password(
    database_url: str, webhook: HttpSink
) -> None:
    db = database_url
    url = f"json://ops:s3cr3t-pw@127.0.0.1:{webhook.port}/hooks/nvrmon"
    added = run_cli(db, "channel", "add", url, "--name", "ops hook", "--match", "region=North,South")
    assert added.returncode == 0, added.stderr
    assert "s3cr3t-pw" not in added.stdout and "ops:****@127.0.0.1" in added.stdout
    listing = run_cli(db, "channel", "list")
    assert "ops hook" in listing.stdout and "region=North,South" in listing.stdout
    assert "s3cr3t-pw" not in listing.stdout
    tested = run_cli(db, "channel", "test", "ops hook")
    assert tested.returncode == 0, tested.stderr
    [request] = webhook.received()
    assert request.path == "/hooks/nvrmon"
    assert request.json()["title"] == "nvrmon test message for channel ops hook"
    assert request.headers["authorization"].startswith("Basic ")  # the password is used, only never shown
    assert "sent" in run_cli(db, "channel", "list").stdout


def test_channel_test_reaches_a_real_smtp_server(tmp_path: Path, smtp: SmtpSink) -> None:
    db = tmp_path / "nvrmon.db"
    assert run_cli(db, "channel", "add", smtp.url, "--name", "mail").returncode == 0
    tested = run_cli(db, "channel", "test", "mail")
    assert tested.returncode == 0, tested.stderr
    [mail] = wait_for(lambda: smtp.messages)
    assert mail.recipients == ["ops@example.com"]
    assert "Subject: nvrmon test message for channel mail" in mail.content


def test_channel_test_says_why_it_failed(tmp_path: Path) -> None:
    db = tmp_path / "nvrmon.db"
    assert run_cli(db, "channel", "add", f"json://127.0.0.1:{free_port()}/x", "--name", "nowhere").returncode == 0
    tested = run_cli(db, "channel", "test", "nowhere")
    assert tested.returncode == 1
    assert "failed" in tested.stderr and "Connection error" in tested.stderr
    assert "failed" in run_cli(db, "channel", "list").stdout


def test_channel_add_refuses_bad_urls_and_matchers_and_keeps_nothing(tmp_path: Path) -> None:
    db = tmp_path / "nvrmon.db"
    unknown = run_cli(db, "channel", "add", "nosuch://user:pw123@host/x")
    assert unknown.returncode == 2 and "Apprise cannot use this nosuch:// URL" in unknown.stderr
    assert "pw123" not in unknown.stderr  # not even in Apprise's own log line
    bad_match = run_cli(db, "channel", "add", "json://127.0.0.1/x", "--match", "colour=red")
    assert bad_match.returncode == 2 and "site=…, region=… or severity=…" in bad_match.stderr
    bad_severity = run_cli(db, "channel", "add", "json://127.0.0.1/x", "--match", "severity=urgent")
    assert bad_severity.returncode == 2 and "critical, major, minor" in bad_severity.stderr
    assert run_cli(db, "channel", "add", "json://127.0.0.1/x", "--name", "a").returncode == 0
    twice = run_cli(db, "channel", "add", "json://127.0.0.1/y", "--name", "A")
    assert twice.returncode == 2 and "exists already" in twice.stderr
    assert run_cli(db, "channel", "list").stdout.count("json://") == 1


def test_channel_remove_by_name_or_id(database_url: str) -> None:
    db = database_url
    run_cli(db, "channel", "add", "json://127.0.0.1/x", "--name", "first")
    run_cli(db, "channel", "add", "json://127.0.0.1/y", "--name", "second")
    assert run_cli(db, "channel", "remove", "first").returncode == 0
    assert run_cli(db, "channel", "remove", "2").returncode == 0
    missing = run_cli(db, "channel", "remove", "first")
    assert missing.returncode == 1 and "no channel 'first'" in missing.stderr
    assert "json://" not in run_cli(db, "channel", "list").stdout
