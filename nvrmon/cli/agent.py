"""Command line, the device agent: `nvrmon agent --config FILE` probes real cameras and reports them to the hub."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

COMMANDS = ("agent",)
log = logging.getLogger("nvrmon.agent")


def add_parsers(commands: Any) -> None:
    agent = commands.add_parser("agent", help="run the device agent beside an NVR (probes cameras, reports to a hub)")
    agent.add_argument("--config", type=Path, required=True, help="the agent's TOML file (docs/agent.md)")
    agent.add_argument("--check", action="store_true", help="check the configuration, print a summary and exit")
    agent.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


def run(args: argparse.Namespace) -> int:
    from nvrmon.agent import config as agent_config
    from nvrmon.agent.redact import RedactingFilter, without_credentials

    try:
        config = agent_config.load(args.config)
    except agent_config.ConfigError as exc:
        print(f"nvrmon agent: {exc}", file=sys.stderr)
        return 2
    # Every line any library logs goes through the redaction: URL passwords, tokens, and each configured secret.
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter(config.secrets))
    if args.check:
        source = f", source {config.source.kind} at {without_credentials(config.source.url)}" if config.source else ""
        print(f"{config.path}: NVR {config.hostname}, {len(config.cameras)} cameras{source}, "
              f"hub {without_credentials(config.hub_url)}: configuration OK")  # fmt: skip
        return 0
    return asyncio.run(_run(config))


async def _run(config: Any) -> int:
    from nvrmon.agent import integrations
    from nvrmon.agent.prober import Prober

    try:
        onvif, source = integrations.for_config(config)
    except ValueError as exc:
        print(f"nvrmon agent: {config.path}: [source] {exc}", file=sys.stderr)
        return 2
    prober = Prober(config, device_probe=onvif, source_poll=source)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log.info("agent for %s: %d cameras every %g s (offline after %d failures, online after %d successes)",
             config.hostname, len(config.cameras), config.interval, config.down_after, config.up_after)  # fmt: skip
    await prober.run(stop)
    if prober.link.refused:
        print(f"nvrmon agent: the hub refused the agent token ({prober.link.refused}): it is wrong, revoked or "
              "expired. Create one with `nvrmon token create HOSTNAME` or `nvrmon token enroll` on the hub.",
              file=sys.stderr)  # fmt: skip
        return 1
    if prober.link.removed:
        log.info("the hub removed this NVR; the agent stops")
        return 0
    log.info("stopped")
    return 0
