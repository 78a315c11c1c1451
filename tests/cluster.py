"""Test helpers for several hubs: fresh PostgreSQL databases, hub processes on one, nginx in front, a private server.

Everything is real: hubs are `nvrmon serve` processes (tests.conftest.LiveHub), nginx runs deploy/nginx.conf with
only its upstream servers, listen port and log paths filled in, and PostgreSQL is the machine's server on
127.0.0.1:5432 (one fresh database per test, dropped afterwards) or, for tests that stop and restart the database,
a private server this module creates with initdb, so the shared one is never restarted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from nvrmon.settings import Settings
from tests.conftest import PASSWORD, RUNNING, LiveHub, free_port, password_hash, run_async

ROOT = Path(__file__).resolve().parent.parent
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
SHARED_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
# The PostgreSQL store backend is selected by NVRMON_DATABASE_URL; until it exists, the cluster tests skip.
POSTGRES_BACKEND = any(f.name == "database_url" for f in dataclasses.fields(Settings))


def nginx_binary() -> str:
    return shutil.which("nginx") or "/usr/sbin/nginx"


# -- nginx -------------------------------------------------------------------------------------------------------------


def render_nginx(template: str, upstreams: list[int], port: int, logs: Path) -> str:
    """deploy/nginx.conf for these hub ports and this listen port, logging into `logs`. Fails when the file no longer
    has the lines it fills in, so the tests always run the file as shipped."""
    servers = re.findall(r"^( *)server 127\.0\.0\.1:\d+( [^;]*)?;\n", template, flags=re.M)
    assert servers, "deploy/nginx.conf: no `server 127.0.0.1:PORT ...;` lines in its upstream"
    indent, options = servers[0]
    lines = "".join(f"{indent}server 127.0.0.1:{p}{options};\n" for p in upstreams)
    text, found = re.subn(r"(?:^ *server 127\.0\.0\.1:\d+(?: [^;]*)?;\n)+", lambda _: lines, template, flags=re.M)
    assert found == 1, "deploy/nginx.conf: the upstream's server lines should be one block"
    substitutions = [
        (r"^( *)listen 127\.0\.0\.1:\d+;", rf"\g<1>listen 127.0.0.1:{port};"),
        (r"^( *)error_log \S+", rf"\g<1>error_log {logs / 'error.log'}"),
        (r"^( *)access_log \S+;", rf"\g<1>access_log {logs / 'access.log'};"),
    ]
    for pattern, replacement in substitutions:
        text, found = re.subn(pattern, replacement, text, flags=re.M)
        assert found == 1, f"deploy/nginx.conf: expected one line matching {pattern!r}"
    return text


def wait_for_port(port: int, timeout: float, alive: Callable[[], bool]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert alive(), "the process exited before it listened"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


@dataclass
class Nginx:
    """A real nginx in the foreground running deploy/nginx.conf, with its prefix, pid file and logs in `directory`."""

    directory: Path
    upstreams: list[int]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/agent"

    @property
    def conf(self) -> Path:
        return self.directory / "nginx.conf"

    def start(self) -> Nginx:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(render_nginx(NGINX_CONF.read_text(), self.upstreams, self.port, self.directory))
        # -p: relative paths (none in the file) and the prefix; -g: the pid file here, in the foreground.
        pid = self.directory / "nginx.pid"
        command = [nginx_binary(), "-p", str(self.directory), "-c", str(self.conf),
                   "-e", str(self.directory / "error.log"), "-g", f"daemon off; pid {pid};"]  # fmt: skip
        with (self.directory / "stderr.log").open("ab") as stderr:
            self.process = subprocess.Popen(command, stdout=stderr, stderr=subprocess.STDOUT)
        try:
            wait_for_port(self.port, 10, lambda: self.process is not None and self.process.poll() is None)
        except AssertionError as exc:
            raise AssertionError(f"nginx did not start: {exc}\n{self.log()}") from exc
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # nginx's fast shutdown: open streams end now
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def log(self) -> str:
        return "".join(
            p.read_text() for p in (self.directory / "stderr.log", self.directory / "error.log") if p.exists()
        )

    def front(self, hub: LiveHub) -> LiveHub:
        """A LiveHub-shaped handle on the balancer (for Browsing, Fleet, open_stream, api): `hub`'s token, session
        cookie and log, this nginx's address. Never started or stopped itself."""
        front = LiveHub(hub.db_path, hub.env, port=self.port, token=hub.token, log_path=hub.log_path,
                        headers=dict(hub.headers))  # fmt: skip
        RUNNING[front.url] = front
        return front


@pytest.fixture
def start_nginx(tmp_path: Path) -> Iterator[Callable[[list[int]], Nginx]]:
    """Start nginx over these hub ports (deploy/nginx.conf); stopped at teardown."""
    started: list[Nginx] = []

    def start(upstreams: list[int]) -> Nginx:
        started.append(Nginx(tmp_path / f"nginx{len(started)}", upstreams))
        return started[-1].start()

    yield start
    for nginx in started:
        nginx.stop()


# -- PostgreSQL databases ----------------------------------------------------------------------------------------------


def url_of_database(server: str, name: str) -> str:
    return server.rsplit("/", 1)[0] + "/" + name


async def _execute(server: str, statement: str) -> None:
    import asyncpg  # here, not at the top: conftest imports this module, and SQLite-only runs need no asyncpg

    connection = await asyncpg.connect(server, timeout=10)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def create_database(server: str = SHARED_POSTGRES) -> str:
    """A new empty database on `server` (an admin URL); returns its URL."""
    name = f"nvrmon_c_{secrets.token_hex(6)}"
    run_async(_execute(server, f'CREATE DATABASE "{name}"'))
    return url_of_database(server, name)


def drop_database(url: str, server: str = SHARED_POSTGRES) -> None:
    name = url.rsplit("/", 1)[1]
    assert name.startswith("nvrmon_c_"), f"refusing to drop {name}: not a test database"
    run_async(_execute(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh database on the machine's PostgreSQL, dropped (connections and all) afterwards."""
    url = create_database()
    yield url
    drop_database(url)


# -- a private PostgreSQL server ---------------------------------------------------------------------------------------


def postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    assert found, "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (apt install postgresql)"
    return Path(found[-1]).parent


def as_postgres(command: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """initdb and postgres refuse to run as root: as root, run them as the `postgres` OS user."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run(prefix + command, capture_output=True, text=True, timeout=timeout, check=False)


@dataclass
class PrivatePostgres:
    """A PostgreSQL server of its own (initdb in a temporary directory, 127.0.0.1 on a free port, trust auth) that a
    test may stop and start again; `url` is its `postgres` database."""

    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="nvrmon-pg-")))
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return as_postgres([str(postgres_bin() / "pg_ctl"), "-D", str(self.data), *args])

    def init(self) -> PrivatePostgres:
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")  # its own directory: the server runs as postgres
        done = as_postgres([str(postgres_bin() / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                            "-E", "UTF8", "--no-sync"])  # fmt: skip
        assert done.returncode == 0, f"initdb failed:\n{done.stdout}{done.stderr}"
        return self

    def start(self) -> PrivatePostgres:
        # The socket in its own directory (not /var/run/postgresql, which the machine's server uses); no fsync: a
        # test database, and the tests stop the server, they never crash the machine.
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        )
        done = self._pg_ctl("-o", options, "-l", str(self.directory / "server.log"), "-w", "-t", "30", "start")
        assert done.returncode == 0, f"pg_ctl start failed:\n{done.stdout}{done.stderr}\n{self.log()}"
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: "fast" ends every session (what a restart does to the hubs), "immediate" is a crash."""
        done = self._pg_ctl("-m", mode, "-w", "-t", "30", "stop")
        assert done.returncode == 0, f"pg_ctl stop failed:\n{done.stdout}{done.stderr}"

    def running(self) -> bool:
        return self._pg_ctl("status").returncode == 0

    def log(self) -> str:
        path = self.directory / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def remove(self) -> None:
        if self.data.exists() and self.running():
            self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres().init().start()
    yield server
    server.remove()


# -- hubs on one database ----------------------------------------------------------------------------------------------


@dataclass
class Cluster:
    """N hub processes on one PostgreSQL database (one agent token and session secret, distinct node ids), and nginx
    in front of all of them."""

    directory: Path
    url: str
    hubs: list[LiveHub] = field(default_factory=list)
    nginx: Nginx | None = None
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def environment(self, node: str, extra: dict[str, str]) -> dict[str, str]:
        return {"NVRMON_DATABASE_URL": self.url, "NVRMON_NODE_ID": node, "NVRMON_SECRET_KEY": self.secret,
                "NVRMON_AGENT_TOKEN": self.token, "NVRMON_TRUSTED_PROXIES": "127.0.0.1", **extra}  # fmt: skip

    def create_admin(self) -> None:
        """The admin account, through the CLI as an operator would (`nvrmon user add`), in the shared database: it sets
        the schema up too, before the hubs start. (LiveHub.start adds it again, which finds it there.)"""
        env = {**os.environ, "NVRMON_DATABASE_URL": self.url}
        done = subprocess.run(
            [sys.executable, "-m", "nvrmon.cli", "user", "add", "admin", "--role", "admin"], cwd=self.directory,
            input=f"{PASSWORD}\n", env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"nvrmon user add failed:\n{done.stdout}{done.stderr}"
        assert not (self.directory / "nvrmon.db").exists(), "the CLI used SQLite although NVRMON_DATABASE_URL is set"

    def start(self, count: int, **env: str) -> Cluster:
        extra = {f"NVRMON_{k}": v for k, v in env.items()}
        self.create_admin()
        self.hubs = [LiveHub(self.directory / f"hub{n}.db", self.environment(f"hub-{n}", extra), token=self.token)
                     for n in range(count)]  # fmt: skip
        # All at once, as a deployment starts them: schema setup must not race.
        with ThreadPoolExecutor(count) as pool:
            list(pool.map(LiveHub.start, self.hubs))
        self.nginx = Nginx(self.directory / "nginx", [hub.port for hub in self.hubs]).start()
        return self

    @property
    def front(self) -> LiveHub:
        assert self.nginx is not None
        return self.nginx.front(self.hubs[0])

    def kill(self, hub: LiveHub) -> None:
        """kill -9: no goodbye to agents or browsers, no lease released."""
        assert hub.process is not None
        os.kill(hub.process.pid, signal.SIGKILL)
        hub.process.wait(5)
        hub.process = None

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        for hub in self.hubs:
            hub.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {hub.url} ---\n{hub.log()[-3000:]}" for hub in self.hubs)


@pytest.fixture
def start_cluster(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """start_cluster(3, HEARTBEAT_TIMEOUT="5", server=private.url): N hubs on a fresh database (on the machine's
    PostgreSQL, or on `server`) behind nginx; everything stopped and the database dropped afterwards."""
    clusters: list[tuple[Cluster, str]] = []
    password_hash(PASSWORD)  # warm the cache outside the hubs' start-up deadline

    def start(count: int = 3, server: str = SHARED_POSTGRES, **env: str) -> Cluster:
        cluster = Cluster(tmp_path / f"cluster{len(clusters)}", create_database(server))
        cluster.directory.mkdir()
        clusters.append((cluster, server))
        return cluster.start(count, **env)

    yield start
    for cluster, server in clusters:
        cluster.stop()
        with contextlib.suppress(Exception):  # a private server already gone took its databases with it
            drop_database(cluster.url, server)
