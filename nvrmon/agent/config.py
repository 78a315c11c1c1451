"""Agent side, the configuration: `nvrmon agent --config FILE` (TOML) checked into typed settings, errors by line.

Every error names the file, the line and the key (`agent.toml:12: camera[2].rtsp: …`) and never quotes a secret.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from nvrmon.agent.redact import redact
from nvrmon.agent.sources import KINDS

MAX_CAMERAS = 1000
SOURCE_KINDS = tuple(KINDS)  # frigate, zoneminder, isapi, onvif (an ONVIF NVR)
KEYS: dict[str, set[str]] = {  # what each table may hold; anything else is a typo worth an error
    "hub": {"url", "token", "token_file"},
    "nvr": {"hostname", "region", "site", "device_name", "model", "source"},
    "agent": {"interval", "down_after", "up_after", "timeout", "sample", "concurrency", "health_interval",
              "source_interval"},
    "camera": {"id", "name", "rtsp", "onvif"},
    "source": {"kind", "url", "username", "password", "verify_tls"},
}  # fmt: skip


class ConfigError(Exception):
    """A configuration the agent refuses: `str()` is `FILE:LINE: KEY: what is wrong` (no secret in it)."""


@dataclass(frozen=True, slots=True)
class CameraConfig:
    id: str
    name: str
    rtsp: str
    onvif: str = ""

    @property
    def host(self) -> str:
        return urlsplit(self.rtsp).hostname or ""


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """An NVR that lists its cameras itself (`[nvr] source = {…}` or a `[source]` table)."""

    kind: str
    url: str
    username: str = ""
    password: str = ""
    verify_tls: bool = True


@dataclass(frozen=True, slots=True)
class AgentConfig:
    path: Path
    hub_url: str
    token: str
    token_file: Path | None
    hostname: str
    region: str = ""
    site: str = ""
    device_name: str = ""
    model: str = ""
    interval: float = 10.0  # seconds between two probes of one camera
    down_after: int = 3  # consecutive failed probes before a camera is reported offline
    up_after: int = 2  # consecutive good probes before it is reported online
    timeout: float = 5.0  # seconds one step of a probe (connect, each RTSP request) may take
    sample: float = 2.0  # seconds of frames read to prove the stream delivers, and measure fps and bitrate
    concurrency: int = 8  # probes running at once
    health_interval: float = 60.0  # seconds between health messages when nothing changed
    source_interval: float = 30.0  # seconds between two polls of the NVR source
    cameras: tuple[CameraConfig, ...] = ()
    source: SourceSpec | None = None
    secrets: tuple[str, ...] = field(default=(), repr=False)  # every password and token, for log redaction


def load(path: Path) -> AgentConfig:
    """Read and check the file; raises ConfigError naming the file, line and key."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{path}: cannot read: {exc.__class__.__name__}: {getattr(exc, 'strerror', '') or exc}"
        ) from None
    return parse(text, path)


def parse(text: str, path: Path) -> AgentConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        line = match[1] if match else "?"
        raise ConfigError(f"{path}:{line}: not valid TOML: {redact(str(exc))}") from None
    return _Checker(text, path).config(data)


class _Checker:
    def __init__(self, text: str, path: Path) -> None:
        self.path = path
        self.lines = _key_lines(text)
        self.secrets: list[str] = []

    def fail(self, where: tuple[str, int, str], message: str) -> ConfigError:
        table, index, key = where
        line = self.lines.get(where) or self.lines.get((table, index, "")) or 1
        name = f"{table}[{index + 1}]" if table == "camera" else table
        return ConfigError(
            f"{self.path}:{line}: {name}.{key}: {message}" if key else f"{self.path}:{line}: {name}: {message}"
        )

    def config(self, data: dict[str, Any]) -> AgentConfig:
        for key, value in data.items():
            if key not in KEYS:
                raise ConfigError(f"{self.path}:{self.lines.get((key, 0, ''), 1)}: {key}: unknown table or key")
            if key == "camera" and not isinstance(value, list) or key != "camera" and not isinstance(value, dict):
                raise self.fail(
                    (key, 0, ""), "[[camera]] is an array of tables" if key == "camera" else "must be a table"
                )
        hub, nvr, agent = (self.table(data, name) for name in ("hub", "nvr", "agent"))
        url = self.text(hub, ("hub", 0, "url"), required=True)
        if urlsplit(url).scheme not in ("ws", "wss") or not urlsplit(url).hostname:
            raise self.fail(("hub", 0, "url"), "must be a ws:// or wss:// URL, e.g. ws://hub:8000/ws/agent")
        token, token_file = self.token(hub)
        hostname = self.text(nvr, ("nvr", 0, "hostname"), required=True, limit=253)
        if any(ch.isspace() for ch in hostname):
            raise self.fail(("nvr", 0, "hostname"), "must not contain spaces")
        source = self.source(nvr, data)
        cameras = self.cameras(data.get("camera", []))
        if not cameras and source is None:
            raise ConfigError(f"{self.path}:1: camera: no [[camera]] and no [nvr] source: nothing to probe")
        numbers = {
            key: self.number(agent, key, default, integer=key in ("down_after", "up_after", "concurrency"))
            for key, default in (("interval", 10.0), ("down_after", 3), ("up_after", 2), ("timeout", 5.0),
                                 ("sample", 2.0), ("concurrency", 8), ("health_interval", 60.0),
                                 ("source_interval", 30.0))
        }  # fmt: skip
        if numbers["health_interval"] > 60:
            raise self.fail(("agent", 0, "health_interval"), "must be at most 60 (the hub expects health every 60 s)")
        return AgentConfig(
            path=self.path, hub_url=url, token=token, token_file=token_file, hostname=hostname,
            region=self.text(nvr, ("nvr", 0, "region")), site=self.text(nvr, ("nvr", 0, "site")),
            device_name=self.text(nvr, ("nvr", 0, "device_name")), model=self.text(nvr, ("nvr", 0, "model")),
            interval=float(numbers["interval"]), down_after=int(numbers["down_after"]),
            up_after=int(numbers["up_after"]), timeout=float(numbers["timeout"]), sample=float(numbers["sample"]),
            concurrency=int(numbers["concurrency"]), health_interval=float(numbers["health_interval"]),
            source_interval=float(numbers["source_interval"]), cameras=cameras, source=source,
            secrets=tuple(self.secrets),
        )  # fmt: skip

    def table(self, data: dict[str, Any], name: str) -> dict[str, Any]:
        table = data.get(name, {})
        for key in table:
            if key not in KEYS[name]:
                raise self.fail((name, 0, key), f"unknown key (known: {', '.join(sorted(KEYS[name]))})")
        return dict(table)

    def text(
        self, table: dict[str, Any], where: tuple[str, int, str], *, required: bool = False, limit: int = 128
    ) -> str:
        value = table.get(where[2], "")
        if not isinstance(value, str):
            raise self.fail(where, "must be a string")
        value = value.strip()
        if required and not value:
            raise self.fail(where, "is required")
        if len(value) > limit:
            raise self.fail(where, f"is longer than {limit} characters")
        if not value.isprintable():
            raise self.fail(where, "contains a control or invisible character")
        return value

    def number(self, table: dict[str, Any], key: str, default: float, *, integer: bool) -> float:
        value = table.get(key, default)
        where = ("agent", 0, key)
        if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
            raise self.fail(where, "must be a whole number" if integer else "must be a number (seconds)")
        if not math.isfinite(value) or value <= 0 or value > (100 if integer and key != "concurrency" else 3600):
            raise self.fail(
                where, "must be positive and at most " + ("100" if integer and key != "concurrency" else "3600")
            )
        return value

    def token(self, hub: dict[str, Any]) -> tuple[str, Path | None]:
        token = self.text(hub, ("hub", 0, "token"), limit=512)
        name = self.text(hub, ("hub", 0, "token_file"), limit=4096)
        token_file = (self.path.parent / name) if name else None
        if token:
            self.secrets.append(token)
        if token_file is not None and token_file.exists():
            # The NVR's own token, stored after an enrollment, wins over the enrollment token beside it.
            try:
                stored = token_file.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise self.fail(
                    ("hub", 0, "token_file"), f"cannot read {token_file}: {exc.__class__.__name__}"
                ) from None
            if stored:
                self.secrets.append(stored)
                return stored, token_file
        if not token:
            if token_file is not None:
                raise self.fail(("hub", 0, "token_file"), f"{token_file} does not exist or is empty")
            raise self.fail(("hub", 0, ""), "needs token or token_file")
        return token, token_file

    def url(self, value: str, where: tuple[str, int, str], schemes: tuple[str, ...]) -> str:
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.hostname:
            raise self.fail(where, f"must be a {' or '.join(s + '://' for s in schemes)} URL with a host")
        try:
            parts.port  # noqa: B018 (raises on a bad port)
        except ValueError:
            raise self.fail(where, "has a port that is not a number from 1 to 65535") from None
        if parts.password:
            self.secrets += [parts.password, unquote(parts.password)]
        return value

    def cameras(self, items: list[Any]) -> tuple[CameraConfig, ...]:
        if len(items) > MAX_CAMERAS:
            raise self.fail(("camera", MAX_CAMERAS, ""), f"more than {MAX_CAMERAS} cameras")
        cameras: dict[str, CameraConfig] = {}
        for index, item in enumerate(items):
            for key in item:
                if key not in KEYS["camera"]:
                    raise self.fail(("camera", index, key), "unknown key (known: id, name, rtsp, onvif)")
            if isinstance(item.get("id"), int) and not isinstance(item.get("id"), bool):
                item = {**item, "id": str(item["id"])}
            camera_id = self.text(item, ("camera", index, "id"), required=True, limit=64)
            if camera_id in cameras:
                raise self.fail(("camera", index, "id"), f"{camera_id!r} appears twice")
            rtsp = self.url(self.text(item, ("camera", index, "rtsp"), required=True, limit=2048),
                            ("camera", index, "rtsp"), ("rtsp",))  # fmt: skip
            onvif = self.text(item, ("camera", index, "onvif"), limit=2048)
            if onvif:
                self.url(onvif, ("camera", index, "onvif"), ("http", "https"))
            name = self.text(item, ("camera", index, "name")) or camera_id
            cameras[camera_id] = CameraConfig(camera_id, name, rtsp, onvif)
        return tuple(cameras.values())

    def source(self, nvr: dict[str, Any], data: dict[str, Any]) -> SourceSpec | None:
        if "source" in nvr and "source" in data:
            raise self.fail(("source", 0, ""), "give the source once: [nvr] source or a [source] table")
        table, prefix = (nvr["source"], "nvr.source") if "source" in nvr else (data.get("source"), "source")
        if table is None:
            return None
        if prefix == "nvr.source":  # an inline table: every key of it is on the line of `source =`
            line = self.lines.get(("nvr", 0, "source"), 1)
            self.lines.update({(prefix, 0, key): line for key in (*KEYS["source"], "")})
        if not isinstance(table, dict):
            raise self.fail((prefix, 0, ""), "must be a table {kind = …, url = …}")

        def at(key: str) -> tuple[str, int, str]:
            return (prefix, 0, key)

        for key in table:
            if key not in KEYS["source"]:
                self.lines.setdefault(at(key), self.lines.get(at(""), 1))
                raise self.fail(at(key), f"unknown key (known: {', '.join(sorted(KEYS['source']))})")

        kind = self.text(table, at("kind"), required=True)
        if kind not in SOURCE_KINDS:
            raise self.fail(at("kind"), f"must be one of {', '.join(SOURCE_KINDS)}")
        url = self.url(self.text(table, at("url"), required=True, limit=2048), at("url"), ("http", "https"))
        password = table.get("password", "")
        if not isinstance(password, str):
            raise self.fail(at("password"), "must be a string")
        if password:
            self.secrets.append(password)
        verify = table.get("verify_tls", True)
        if not isinstance(verify, bool):
            raise self.fail(at("verify_tls"), "must be true or false")
        return SourceSpec(kind, url, self.text(table, at("username")), password, verify)


_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.-]+)\s*\]\]?")
_KEY = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")


def _key_lines(text: str) -> dict[tuple[str, int, str], int]:
    """(table, index, key) -> line number, for every key at the start of a line; (table, index, "") for headers.
    Keys before any header are top-level tables' own line (`key = …` there is an unknown table anyway)."""
    lines: dict[tuple[str, int, str], int] = {}
    table, index = "", 0
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        header = _HEADER.match(line)
        if header:
            table = header[2]
            index = seen.get(table, -1) + 1 if header[1] == "[[" else 0
            seen[table] = index
            lines.setdefault((table, index, ""), number)
            continue
        key = _KEY.match(line)
        if key:
            lines.setdefault((table, index, key[1]) if table else (key[1], 0, ""), number)
    return lines
