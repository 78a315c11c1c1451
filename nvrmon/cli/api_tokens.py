"""Command line, API tokens: `nvrmon api-token create|list|revoke` on the hub's database, also while the hub runs."""

from __future__ import annotations

import argparse
import sys
import time

from nvrmon.access import api_tokens
from nvrmon.access.audit import CLI_ADDRESS, cli_actor
from nvrmon.cli import manage
from nvrmon.store.api_tokens import API_SCOPES, ApiTokenTables
from nvrmon.store.credentials import Credentials

COMMANDS = ("api-token",)


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = manage._group(commands, "api-token", "bearer tokens for scripts on /api (scope read or operator)")
    create = manage._action(group, "create", "create an API token; printed once, only its hash is kept")
    create.add_argument("name", help="what it is for (unique among live tokens), e.g. grafana or cmdb-sync")
    create.add_argument("--scope", required=True, choices=API_SCOPES, help="read: GET only; operator: operator writes")
    manage._action(group, "list", "list API tokens with scope, creator and last use (never the tokens themselves)")
    revoke = manage._action(group, "revoke", "revoke an API token by name or id; its next request is refused")
    revoke.add_argument("target", metavar="NAME|ID")


def run(args: argparse.Namespace) -> int:
    return manage.run(args, ACTIONS)


async def _create(credentials: Credentials, args: argparse.Namespace) -> int:
    token, token_id = await api_tokens.create(
        credentials.database, args.name, args.scope, actor=cli_actor(), address=CLI_ADDRESS
    )
    print(
        f"API token {token_id} {args.name!r} ({args.scope}); shown once, the hub keeps only its hash:", file=sys.stderr
    )
    print(token)
    return 0


async def _list(credentials: Credentials, args: argparse.Namespace) -> int:
    rows = [("ID", "NAME", "SCOPE", "PREFIX", "STATE", "CREATED", "BY", "LAST USED")]
    for t in await ApiTokenTables(credentials.database).all():
        state = "revoked" if t.revoked else "active"
        rows.append((str(t.id), t.name, t.scope, t.prefix + "…", state, manage._when(t.created), t.created_by or "-",
                     manage._when(t.last_used)))  # fmt: skip
    manage._table(rows)
    return 0


async def _revoke(credentials: Credentials, args: argparse.Namespace) -> int:
    tables = ApiTokenTables(credentials.database)
    revoked = await tables.revoke(args.target, time.time(), actor=cli_actor(), address=CLI_ADDRESS)
    if revoked is None:
        return manage._fail(f"no live API token with name or id {args.target!r}", 1)
    print(f"revoked API token {revoked.id} {revoked.name!r}; its next request is refused")
    return 0


ACTIONS: dict[tuple[str, str], manage.Action] = {
    ("api-token", "create"): _create,
    ("api-token", "list"): _list,
    ("api-token", "revoke"): _revoke,
}
