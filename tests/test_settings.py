from __future__ import annotations

from pathlib import Path

import pytest

from nvrmon.settings import Settings


def test_settings_read_nvrmon_environment_with_types() -> None:
    settings = Settings.from_env(
        {"NVRMON_PORT": "9001", "NVRMON_HEARTBEAT_TIMEOUT": "2.5", "NVRMON_DB_PATH": "/x/y.db"}
    )
    assert settings.port == 9001 and settings.heartbeat_timeout == 2.5 and settings.db_path == Path("/x/y.db")


def test_cli_overrides_win_over_environment_and_none_means_unset() -> None:
    settings = Settings.from_env({"NVRMON_PORT": "9001", "NVRMON_HOST": "0.0.0.0"}, port=8123, host=None)
    assert settings.port == 8123 and settings.host == "0.0.0.0"


def test_bad_value_names_the_variable() -> None:
    with pytest.raises(ValueError, match="NVRMON_PORT"):
        Settings.from_env({"NVRMON_PORT": "eighty"})


def test_defaults_point_at_the_project_templates() -> None:
    settings = Settings.from_env({})
    assert (settings.templates_dir / "base.html").exists() and (settings.static_dir / "transport.js").exists()
