"""Command line: `nvrmon serve` (the hub, a demo fleet), `simulate`, `agent`, and the commands on its database."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
from pathlib import Path

from nvrmon import logs
from nvrmon.cli import agent, api_tokens, backup, channels, inventory, manage, nvrs, target
from nvrmon.settings import Settings

DEMO_INCIDENT_DELAY = 15.0  # seconds a simulated device stays down before `serve --demo` opens an incident


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nvrmon", description="Live monitor for fleets of NVRs and IP cameras.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the hub (web UI, agent WebSocket, SSE)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1; NVRMON_HOST)")
    serve.add_argument("--port", type=int, help="port (default 8000; NVRMON_PORT)")
    target.add_flags(serve, "SQLite database file (default ./nvrmon.db; NVRMON_DB_PATH)")
    serve.add_argument("--demo", type=int, metavar="N", help="also run N simulated NVRs against this hub")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--log-format", choices=["text", "json"], help="text (default) or JSON lines; NVRMON_LOG_FORMAT")

    sim = commands.add_parser("simulate", help="run simulated NVR agents against a hub")
    sim.add_argument("--url", default="ws://127.0.0.1:8000/ws/agent", help="the hub's agent WebSocket URL")
    sim.add_argument(
        "--token",
        help="agent token (default: NVRMON_AGENT_TOKEN, else the fleet token stored in --db; `nvrmon token fleet`)",
    )
    target.add_flags(sim, "the hub's database, to read its stored fleet token from")
    sim.add_argument("--progress", type=float, default=5.0, help="seconds between progress lines (0: none)")
    sim.add_argument("--nvrs", type=int, default=10, help="number of NVRs")
    sim.add_argument("--cameras", type=int, default=8, help="cameras per NVR")
    sim.add_argument("--rate", type=float, default=2.0, help="camera status changes per second, fleet-wide")
    sim.add_argument("--regions", default="North,South,East,West,Central", help="comma-separated region names")
    sim.add_argument("--prefix", default="sim", help="hostname prefix")
    sim.add_argument("--duration", type=float, help="stop after this many seconds (default: run until interrupted)")

    manage.add_parsers(commands)
    nvrs.add_parsers(commands)
    backup.add_parsers(commands)
    api_tokens.add_parsers(commands)
    inventory.add_parsers(commands)
    agent.add_parsers(commands)
    channels.add_parsers(commands)

    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(args, "log_level", "info").upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "serve":
        return _serve(args)
    if args.command in manage.COMMANDS:
        return manage.run(args)
    if args.command in nvrs.COMMANDS:
        return nvrs.run(args)
    if args.command in backup.COMMANDS:
        return backup.run(args)
    if args.command in api_tokens.COMMANDS:
        return api_tokens.run(args)
    if args.command in inventory.COMMANDS:
        return inventory.run(args)
    if args.command in agent.COMMANDS:
        return agent.run(args)
    if args.command in channels.COMMANDS:
        return channels.run(args)
    return _simulate(args)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from nvrmon.application import create_app
    from nvrmon.server import server_options

    try:
        settings = Settings.from_env(
            host=args.host, port=args.port, demo=args.demo, log_format=args.log_format, **target.overrides(args)
        )
        where = settings.database
        logs.configure(settings.log_format, args.log_level)
        settings = demo_settings(settings)
    except ValueError as exc:
        print(f"nvrmon: {exc}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=args.log_level,
        log_config=logs.uvicorn_log_config(settings.log_format),
        # uvicorn's own cap sits above ours so an oversize frame still gets our error frame before the close.
        ws_max_size=settings.max_frame_bytes * 2,
        timeout_graceful_shutdown=5,
        # uvicorn's httptools and websockets-sansio protocols, with a request-head deadline and a per-address cap.
        **server_options(settings),
        # Forwarded headers only from the proxies named: anyone else could claim to be https or another address.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or None,
    )
    logs.announce(settings.log_format, f"nvrmon: http://{settings.host}:{settings.port}/  database {_shown(where)}")
    if settings.demo > 0:
        _announce_demo_login(settings)
    uvicorn.Server(config).run()
    return 0


def _shown(where: Path | str) -> str:
    from nvrmon.store.postgres import masked

    return str(where.resolve()) if isinstance(where, Path) else masked(where)


def demo_settings(settings: Settings) -> Settings:
    """`serve --demo`: the simulated cameras blip for a second or two now and then (real agents wait out down_after
    probes first), so unless told otherwise the demo's incident list shows outages, not every blip."""
    if settings.demo > 0 and not settings.incident_delay:
        return dataclasses.replace(settings, incident_delay=DEMO_INCIDENT_DELAY)
    return settings


def _announce_demo_login(settings: Settings) -> None:
    """The demo's admin login (a random password, kept across restarts of the same database), printed where the
    person running it looks."""
    from nvrmon.access.accounts import ensure_demo_user
    from nvrmon.store.credentials import Credentials

    async def create() -> tuple[str, str]:
        credentials = await Credentials.open(settings.database, pool_size=1)
        try:
            return await ensure_demo_user(credentials)
        finally:
            await credentials.close()

    name, password = asyncio.run(create())
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    bar = "=" * 72
    logs.announce(
        settings.log_format,
        f"\n{bar}\n  DEMO MODE: simulated NVRs, and a demo admin account.\n"
        f"  Log in at http://{host}:{settings.port}/login\n"
        f"      user name: {name}\n      password:  {password}\n"
        f"  (kept for this database across restarts; never run --demo where others can reach it)\n{bar}\n",
        logging.WARNING,  # shown at any log level, like the printed banner
    )


def _simulate(args: argparse.Namespace) -> int:
    from nvrmon.agent.simulator import Fleet, Refused

    token = args.token or os.environ.get("NVRMON_AGENT_TOKEN", "")
    if not token and (args.db is not None or args.database_url):
        token = manage.stored_fleet_token(Settings.from_env(**target.overrides(args)).database) or ""
    if not token:
        print(
            "nvrmon simulate: no agent token: pass --token, set NVRMON_AGENT_TOKEN, or name the hub's database with "
            "--db (`nvrmon token fleet --db PATH` prints its fleet token)",
            file=sys.stderr,
        )
        return 2
    regions = [r.strip() for r in args.regions.split(",") if r.strip()]
    fleet = Fleet(
        args.url, token, nvrs=args.nvrs, cameras=args.cameras, rate=args.rate, regions=regions, prefix=args.prefix
    )

    def report(line: str) -> None:
        print(f"nvrmon simulate: {line}", file=sys.stderr, flush=True)

    print(f"nvrmon simulate: {args.nvrs} NVRs x {args.cameras} cameras -> {args.url}", file=sys.stderr, flush=True)
    try:
        asyncio.run(fleet.run(args.duration, report if args.progress > 0 else None, args.progress or 5.0))
    except Refused as exc:
        print(
            f"nvrmon simulate: {exc}: the token is wrong, revoked or expired. Use the hub's NVRMON_AGENT_TOKEN, "
            "or `nvrmon token fleet --db PATH` to print the fleet token the hub stored.",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        pass
    report(fleet.progress())
    return 0


if __name__ == "__main__":
    sys.exit(main())
