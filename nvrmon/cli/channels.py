"""Command line, notifications: `nvrmon channel add|list|remove|test` on the hub's database, also while it runs.

A running hub reads the channels at each transition, so a channel added here takes the next incident.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from datetime import UTC, datetime

from nvrmon.access.audit import CLI_ADDRESS, cli_actor
from nvrmon.alerts import manage
from nvrmon.alerts.delivery import Delivery
from nvrmon.alerts.routing import MatchError
from nvrmon.alerts.urls import UrlError
from nvrmon.cli import target
from nvrmon.settings import Settings
from nvrmon.store.audit import AuditLog
from nvrmon.store.channels import ChannelError, Channels
from nvrmon.store.database import Database
from nvrmon.store.outbox import Outbox, OutboxRow

COMMANDS = ("channel",)


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    text = "notification channels (Apprise URLs: json://, mailto://, ntfy://, tgram://, slack://, …)"
    group = commands.add_parser("channel", help=text, description=text).add_subparsers(dest="action", required=True)
    add = group.add_parser("add", help="add a channel; its URL's credentials are never shown again in full")
    add.add_argument("url", metavar="URL", help="an Apprise URL, e.g. json://hooks.example.com/nvrmon")
    add.add_argument("--name", default="", help="what lists call it (default: its scheme and host)")
    add.add_argument(
        "--match", action="append", default=[], metavar="KEY=VALUE",
        help="only incidents with site=…, region=… or severity=critical|major|minor (comma-separated values; repeat "
        "for several keys; all must hold)",
    )  # fmt: skip
    listing = group.add_parser("list", help="list channels (credentials masked) with their last delivery")
    remove = group.add_parser("remove", help="remove a channel (what it had not sent yet is dropped)")
    remove.add_argument("channel", metavar="NAME|ID")
    test = group.add_parser("test", help="send a test message now and say whether it arrived")
    test.add_argument("channel", metavar="NAME|ID")
    for parser in (add, listing, remove, test):
        target.add_flags(parser)


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env(**target.overrides(args))
    except ValueError as exc:
        print(f"nvrmon: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_run(settings, args))


def _owner() -> str:
    try:
        return f"{getpass.getuser()} (command line)"
    except (KeyError, OSError):  # no name for this uid (a container)
        return "the command line"


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    database = await Database.open(settings.database, pool_size=1)
    channels = Channels(database)
    try:
        if args.action == "add":
            try:
                channel = await manage.add_url(
                    channels, args.url, args.name, args.match, _owner(), actor=cli_actor(), address=CLI_ADDRESS
                )
            except (UrlError, MatchError, ChannelError) as exc:
                print(f"nvrmon: {exc}", file=sys.stderr)
                return 2
            print(f"added channel {channel.id} {channel.name!r}: {channel.shown} ({channel.matchers})")
            return 0
        if args.action == "list":
            return await _list(channels, Outbox(database))
        found = await manage.find(channels, args.channel)
        if found is None:
            print(f"nvrmon: no channel {args.channel!r} (`nvrmon channel list` shows them)", file=sys.stderr)
            return 1
        if args.action == "remove":
            await channels.remove(found.id, actor=cli_actor(), address=CLI_ADDRESS)
            print(f"removed channel {found.id} {found.name!r}")
            return 0
        state, error = await Delivery(database, settings).test(found)
        await AuditLog(database).add(cli_actor(), "channel.test", found.name, manage.tested(found, state, error),
                                     CLI_ADDRESS)  # fmt: skip
        if state == "sent":
            print(f"test message sent to {found.name!r} ({found.shown})")
            return 0
        print(f"nvrmon: test message to {found.name!r} failed: {error}", file=sys.stderr)
        return 1
    finally:
        await database.close()


async def _list(channels: Channels, outbox: Outbox) -> int:
    last: dict[int, OutboxRow] = {}
    for sent in reversed(await outbox.recent(200)):
        last[sent.channel_id] = sent
    table = [("ID", "NAME", "KIND", "TARGET", "TAKES", "LAST DELIVERY")]
    for channel in await channels.all():
        status = "none"
        if (row := last.get(channel.id)) is not None:
            status = f"{row.state} {datetime.fromtimestamp(row.created, UTC):%Y-%m-%d %H:%M UTC}"
            status += f": {row.last_error[:60]}" if row.state != "sent" and row.last_error else ""
        table.append((str(channel.id), channel.name, channel.kind, channel.shown, channel.matchers, status))
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    return 0
