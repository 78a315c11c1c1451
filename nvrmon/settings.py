"""Stage 0, configuration: every knob read once from NVRMON_* variables (and CLI flags) into one typed object."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Settings:
    db_path: Path = Path("nvrmon.db")
    host: str = "127.0.0.1"
    port: int = 8000
    # Shared agent token. Empty means: use (or create once) the token kept in the database's meta table.
    agent_token: str = ""
    # Agents are told this interval in `welcome`. An NVR silent for `stale_after` seconds shows "stale" (one missed
    # heartbeat is not an outage); silent for `heartbeat_timeout` seconds it is offline and its socket is closed.
    heartbeat_interval: float = 10.0
    stale_after: float = 15.0
    heartbeat_timeout: float = 30.0
    # After a hub restart, NVRs that were up show "unknown" until they reconnect or this many seconds pass (0: use
    # heartbeat_timeout); only then are the missing ones offline, with one summary event instead of a storm.
    startup_grace: float = 0.0
    # An NVR that changes between online and offline `flap_threshold` times within `flap_window` seconds is "unstable":
    # one notification, then quiet until it has been steady for a whole window.
    flap_window: float = 300.0
    flap_threshold: int = 4
    # Largest accepted agent frame; anything larger gets an error frame and close 1009.
    max_frame_bytes: int = 1_048_576
    max_cameras_per_nvr: int = 1024
    # Writer batching: at most this many agent messages are applied in one SQLite transaction.
    max_batch: int = 2000
    ingest_queue: int = 20_000
    # Browser side: bounded per-subscriber queue (messages), SSE heartbeat and send timeout.
    subscriber_queue: int = 256
    sse_heartbeat: float = 15.0
    sse_send_timeout: float = 10.0
    sse_retry_ms: int = 1000
    # Open SSE streams one session, and one client address, may hold (0: no cap; trusted_proxies are exempt from
    # the per-address cap): more get 429.
    max_streams_per_session: int = 32
    max_streams_per_address: int = 512
    # Browser transport: "auto" (SSE, falling back to long-poll when events can't get through), "sse" or "poll".
    transport: str = "auto"
    poll_timeout: float = 25.0
    # A cursor whose replay would touch more rows than this gets a full refresh of the page's regions instead.
    replay_max_rows: int = 500
    # Coalescing: the window adapts between these (seconds); statistics wait for this much quiet, never longer
    # than stats_max_wait, and go out at most once per stats_max_wait. 25 ms keeps agent-to-browser p99 under 50 ms
    # while each send to a browser carries a few changes (bench/: per-send cost dominates at 1,000 browsers).
    coalesce_min: float = 0.025
    coalesce_window: float = 0.1
    stats_debounce: float = 0.5
    stats_max_wait: float = 1.0
    recent_events: int = 50
    # A device must stay down this many seconds before it opens (or joins) an incident, so a blip shorter than that
    # raises none; 0: at once. NVRs already wait out heartbeat_timeout before they are offline at all.
    incident_delay: float = 0.0
    event_retention_days: float = 30.0
    # Audit log entries (logins, token and account changes, ...) are kept this long (0: forever). Longer than events:
    # auditors ask about last year, not last month.
    audit_retention_days: float = 365.0
    # Availability history (alerts/history.py): the hub leaves an alive mark this often, so after a crash the time no
    # hub ran is known to within this many seconds (recorded as hub-down, left out of availability).
    history_mark_interval: float = 5.0
    # `nvrmon serve --demo N`: N simulated NVRs connect to this hub from inside the process.
    demo: int = 0
    # -- security (docs/security.md) --
    # Signs session cookies and derives CSRF tokens. Empty: generated once and kept in the database's meta table.
    secret_key: str = ""
    # "auto": cookies are Secure when the request came over HTTPS (see trusted_proxies); "always": for a hub that is
    # only reachable through a TLS-terminating proxy which doesn't send X-Forwarded-Proto.
    secure_cookies: str = "auto"
    # Comma-separated proxy addresses whose X-Forwarded-For/-Proto headers are believed (uvicorn forwarded_allow_ips):
    # then the client address (login throttling) and the scheme (Secure cookies) are the browser's, not the proxy's.
    trusted_proxies: str = ""
    # A session ends after this long without a request (an open live page counts as activity) or this long after login.
    session_idle_timeout: float = 3600.0
    session_max_age: float = 43_200.0
    # Failed logins: a username is locked for login_lockout seconds after login_max_failures failures within that
    # time; one client address after login_ip_max_failures.
    login_max_failures: int = 5
    login_ip_max_failures: int = 50
    login_lockout: float = 900.0
    # Agents: sustained frames per second per connection, burst allowance, and concurrent connections per hub.
    agent_rate: float = 100.0
    agent_burst: int = 1000
    max_agent_connections: int = 10_000
    # 1: the shared agent_token is accepted for any hostname (fleet-wide); 0: only per-NVR and enrollment tokens.
    fleet_token: int = 1
    # Every request head (the WebSocket upgrade included) must arrive within this many seconds, and one client address
    # may hold at most this many connections (0: no cap; addresses in trusted_proxies are exempt). nvrmon/server.py.
    request_head_timeout: float = 10.0
    max_connections_per_address: int = 1000
    # -- operations (docs/metrics.md, docs/operations.md) --
    # The bearer token Prometheus sends to /metrics. Empty: /metrics needs an admin session.
    metrics_token: str = ""
    # Log lines: "text" (for people) or "json" (one JSON object a line, with request ids, for Loki or ELK).
    log_format: str = "text"
    # -- device health (docs/protocol.md, "Device health on the hub"): what makes an online NVR or camera degraded --
    # A clock (device minus agent, either sign) more than this many seconds off; 0: never. ONVIF clocks count whole
    # seconds and the probe's round trip adds more, so a threshold below a few seconds would flap.
    degraded_clock_skew: float = 10.0
    # Footage kept (now minus the oldest recording) below this many days; 0: never. Sites keep anything from 7 to 90
    # days, and a new NVR has kept nothing yet: no default fits them all, so an operator sets it.
    degraded_min_retention_days: float = 0.0
    # A disk more than this percent full; 0: never. NVRs that overwrite their oldest footage sit at 100 % by design
    # (retention is the check that tells a real shortage); set it for NVRs that stop recording when full.
    degraded_disk_used_pct: float = 0.0
    # Measured frames per second below this share of the nominal rate; 0: never.
    degraded_fps_ratio: float = 0.5
    # -- notifications out (docs/notifications.md) --
    # Alertmanager's clocks, by site: a new group waits group_wait seconds before its first message (one message for
    # a whole blackout); a notified group's changes (recoveries included) go out at most every group_interval; open
    # incidents nobody acknowledged are repeated every repeat_interval.
    group_wait: float = 30.0
    group_interval: float = 300.0
    repeat_interval: float = 14_400.0
    # A failed send is retried after notify_retry_base, doubling up to notify_retry_cap seconds, notify_max_attempts
    # times in all; each send may take notify_timeout seconds.
    notify_retry_base: float = 10.0
    notify_retry_cap: float = 900.0
    notify_max_attempts: int = 8
    notify_timeout: float = 20.0
    # The VAPID "sub" claim push services may use to reach whoever runs this hub (RFC 8292): a mailto: or https: URL.
    vapid_subject: str = "mailto:nvrmon@localhost"
    # 1: Web Push endpoints may be plain http and on loopback, private or link-local addresses (a push service of
    # one's own on the LAN; the tests' one on 127.0.0.1). 0: https on public addresses only, checked at subscription
    # and again on each send's resolved address, so a subscriber cannot make the hub POST into its own network.
    webpush_allow_private: int = 0
    # -- several hubs on one database (docs/deploy.md) --
    # This hub's name among them (default: host name and process id); a hub that has not renewed its lease for
    # hub_lease seconds is dead, and its NVRs are taken over (unknown until their agents reconnect elsewhere).
    node_id: str = ""
    hub_lease: float = 10.0
    templates_dir: Path = ROOT / "templates"
    static_dir: Path = ROOT / "static"
    # -- backends (docs/operations.md, "Backends") --
    # Empty, a file path or sqlite:///PATH: SQLite (db_path when empty); postgresql://... or postgres://...:
    # PostgreSQL, which several hubs may share. Reads then go through a pool of at most database_pool connections.
    database_url: str = ""
    database_pool: int = 5

    @property
    def database(self) -> Path | str:
        """What the store opens: a SQLite file's Path, or a PostgreSQL URL (kept as the string it is)."""
        url = self.database_url
        if not url:
            return self.db_path
        if url.startswith(("postgresql://", "postgres://")):
            return url
        if url.startswith("sqlite:///"):
            return Path(url.removeprefix("sqlite:///"))
        if "://" in url:
            raise ValueError("NVRMON_DATABASE_URL must be postgresql://..., postgres://... or sqlite:///PATH")
        return Path(url)

    @property
    def node(self) -> str:
        """This hub's node id: NVRMON_NODE_ID, or host name and process id (unique among hubs, new after a restart)."""
        return self.node_id or f"{socket.gethostname()}-{os.getpid()}"

    @property
    def proxies(self) -> frozenset[str]:
        """The trusted proxy addresses as a set (exempt from per-address caps: every browser behind one shares it)."""
        return frozenset(address.strip() for address in self.trusted_proxies.split(",") if address.strip())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from NVRMON_<FIELD> variables; keyword overrides (CLI flags) win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = env.get(f"NVRMON_{field.name.upper()}")
            if raw is None or raw == "":
                continue
            values[field.name] = _coerce(field.name, field.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(cls(), **values)


def _coerce(name: str, type_name: object, raw: str) -> Any:
    kind = str(type_name)
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "Path":
            return Path(raw)
    except ValueError as exc:
        raise ValueError(f"NVRMON_{name.upper()}={raw!r} is not a valid {kind}") from exc
    return raw
