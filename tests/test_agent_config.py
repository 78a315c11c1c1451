"""`nvrmon agent --config`: the TOML keys, errors that name the file, line and key, and secrets kept out of sight."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from nvrmon.agent.config import ConfigError, load
from nvrmon.agent.redact import RedactingFilter, redact, without_credentials

GOOD = """\
[hub]
url = "ws://127.0.0.1:8000/ws/agent"
token = "fleet-token-123"

[nvr]
hostname = "site1-nvr"
region = "North"
site = "Site 1"

[agent]
interval = 10

[[camera]]
id = "cam1"
name = "Lobby"
rtsp = "rtsp://user:pa%40ss@192.0.2.10:554/stream1"

[[camera]]
id = "cam2"
name = "Gate"
rtsp = "rtsp://192.0.2.11/stream1"
onvif = "http://admin:onvif-secret@192.0.2.11:80"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, text))
    return str(caught.value)


def test_agent_config_reads_the_issue_keys_with_defaults(tmp_path: Path) -> None:
    config = load(write(tmp_path, GOOD))
    assert (config.hub_url, config.token, config.hostname, config.region, config.site) == (
        "ws://127.0.0.1:8000/ws/agent", "fleet-token-123", "site1-nvr", "North", "Site 1")  # fmt: skip
    assert (config.interval, config.down_after, config.up_after) == (10, 3, 2)
    assert [(c.id, c.name, c.onvif != "") for c in config.cameras] == [("cam1", "Lobby", False), ("cam2", "Gate", True)]
    assert {"fleet-token-123", "pa%40ss", "pa@ss", "onvif-secret"} <= set(config.secrets)


def test_agent_config_error_names_file_line_and_key(tmp_path: Path) -> None:
    bad_camera = GOOD.replace('rtsp = "rtsp://192.0.2.11/stream1"', 'rtsp = "http://192.0.2.11/stream1"')
    assert error(tmp_path, bad_camera).startswith(f"{tmp_path / 'agent.toml'}:21: camera[2].rtsp: must be a rtsp://")
    assert ":11: agent.interval: must be a number" in error(tmp_path, GOOD.replace("interval = 10", 'interval = "x"'))
    assert ":11: agent.intervall: unknown key" in error(tmp_path, GOOD.replace("interval = 10", "intervall = 10"))
    assert ":19: camera[2].id: 'cam1' appears twice" in error(tmp_path, GOOD.replace('id = "cam2"', 'id = "cam1"'))
    control = GOOD.replace('name = "Gate"', 'name = "Gate\\u0007"')
    assert ":20: camera[2].name: contains a control or invisible character" in error(tmp_path, control)
    missing = GOOD.replace('hostname = "site1-nvr"\n', "")
    assert ":5: nvr.hostname: is required" in error(tmp_path, missing)  # the table's line when the key is absent


def test_agent_config_syntax_error_names_the_line(tmp_path: Path) -> None:
    message = error(tmp_path, GOOD.replace('region = "North"', "region = North"))
    assert message.startswith(f"{tmp_path / 'agent.toml'}:7: not valid TOML")


def test_agent_config_errors_never_quote_a_secret(tmp_path: Path) -> None:
    text = GOOD.replace('onvif = "http://admin:onvif-secret@192.0.2.11:80"', 'onvif = "ftp://admin:onvif-secret@x"')
    message = error(tmp_path, text)
    assert "camera[2].onvif" in message and "onvif-secret" not in message


def test_agent_config_token_file_holds_the_enrolled_token(tmp_path: Path) -> None:
    stored = tmp_path / "token"
    text = GOOD.replace('token = "fleet-token-123"', 'token = "nvre_enroll"\ntoken_file = "token"')
    assert load(write(tmp_path, text)).token == "nvre_enroll"  # not enrolled yet: the enrollment token
    stored.write_text("nvrt_own\n")
    assert load(write(tmp_path, text)).token == "nvrt_own"  # enrolled: the NVR's own token wins
    only_file = GOOD.replace('token = "fleet-token-123"', 'token_file = "absent"')
    assert "hub.token_file: " in error(tmp_path, only_file) and "does not exist" in error(tmp_path, only_file)


def test_agent_config_source_table_is_parsed(tmp_path: Path) -> None:
    text = GOOD + '\n[source]\nkind = "frigate"\nurl = "http://127.0.0.1:5000"\npassword = "frigate-pw"\n'
    config = load(write(tmp_path, text))
    assert config.source is not None and (config.source.kind, config.source.url) == ("frigate", "http://127.0.0.1:5000")
    assert "frigate-pw" in config.secrets
    inline = GOOD.replace('site = "Site 1"', 'site = "Site 1"\nsource = { kind = "synology", url = "http://x" }')
    assert ":9: nvr.source.kind: must be one of frigate" in error(tmp_path, inline)


def test_redact_masks_url_passwords_tokens_and_known_secrets() -> None:
    line = ("DESCRIBE rtsp://admin:hunter22@10.0.0.5/s failed; Authorization: Digest username=\"admin\" "
            "hub ws://h/ws?token=abc123 with nvrt_9f8e7d6c5b and Bearer s3cr3t-t0ken; pw=Rotated!2")  # fmt: skip
    clean = redact(line, ["Rotated!2"])
    for secret in ("hunter22", "abc123", "9f8e7d6c5b", "s3cr3t-t0ken", "Rotated!2", 'username="admin"'):
        assert secret not in clean, (secret, clean)
    assert "rtsp://admin:***@10.0.0.5/s" in clean and "nvrt_***" in clean
    assert without_credentials("rtsp://admin:hunter22@10.0.0.5:554/s") == "rtsp://10.0.0.5:554/s"


def test_redacting_filter_cleans_library_log_records_and_tracebacks() -> None:
    record = logging.LogRecord("websockets", logging.ERROR, __file__, 1, "connect %s", ("ws://u:pw1234@h/",), None)
    try:
        raise ValueError("token leaked: tok-98765")
    except ValueError:
        record.exc_info = sys.exc_info()
    RedactingFilter(["tok-98765"]).filter(record)
    assert "pw1234" not in record.getMessage() and "tok-98765" not in record.getMessage()
    assert "ValueError" in record.getMessage()


def test_agent_command_reports_a_config_error_and_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("interval = 10", "interval = -1"))
    done = subprocess.run([sys.executable, "-m", "nvrmon.cli", "agent", "--config", str(path)],
                          capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert done.returncode == 2 and f"{path}:11: agent.interval: must be positive" in done.stderr
    checked = subprocess.run([sys.executable, "-m", "nvrmon.cli", "agent", "--config", str(write(tmp_path, GOOD)),
                              "--check"], capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert checked.returncode == 0 and "configuration OK" in checked.stdout and "pa%40ss" not in checked.stdout
