"""Command line, administration: `nvrmon user|token|embed …` on the hub's database, also while the hub runs."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from nvrmon.access import accounts
from nvrmon.access import agent_tokens as tokens
from nvrmon.access import embed_tokens as embed
from nvrmon.access.accounts import AccountError
from nvrmon.access.api_tokens import ApiTokenError
from nvrmon.access.audit import CLI_ADDRESS, cli_actor
from nvrmon.cli import target
from nvrmon.settings import Settings
from nvrmon.store.audit import AuditLog
from nvrmon.store.credentials import ROLES, Conflict, Credentials
from nvrmon.store.database import Database

FLEET_TOKEN_KEY = "agent_token"  # the meta key application.agent_token keeps a generated fleet token under

COMMANDS = ("user", "token", "embed")
Action = Callable[[Credentials, argparse.Namespace], Awaitable[int]]


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    user = _group(commands, "user", "operator accounts (argon2id passwords, roles viewer < operator < admin)")
    add = _action(user, "add", "add an account; the password is prompted for, or read from stdin when not a TTY")
    add.add_argument("name")
    add.add_argument("--role", default="viewer", choices=ROLES)
    _action(user, "list", "list accounts")
    remove = _action(user, "remove", "remove an account and end its sessions at once")
    remove.add_argument("name")
    passwd = _action(user, "passwd", "set a new password (ends the account's sessions)")
    passwd.add_argument("name")
    for verb, text in (("disable", "disable an account (it can't log in; its sessions end at once)"),
                       ("enable", "enable a disabled account again")):  # fmt: skip
        _action(user, verb, text).add_argument("name")
    role = _action(user, "role", "change an account's role (the last enabled admin stays one)")
    role.add_argument("name")
    role.add_argument("role", choices=ROLES)

    token = _group(commands, "token", "agent tokens (per NVR hostname, and enrollment tokens)")
    create = _action(token, "create", "create a token for one NVR hostname; printed once, only its hash is kept")
    create.add_argument("hostname")
    create.add_argument("--expires", help="lifetime such as 90d or 12h (default: never)")
    _action(token, "list", "list agent tokens (never the tokens themselves)")
    revoke = _action(token, "revoke", "revoke a token by id, or every token of a hostname; live agents are cut off")
    revoke.add_argument("target", metavar="HOSTNAME|ID")
    _action(token, "fleet", "print the shared fleet token the hub stored at its first start (NVRMON_AGENT_TOKEN wins)")
    enroll = _action(token, "enroll", "create an enrollment token: each use registers one new NVR and gives it a token")
    enroll.add_argument("--uses", type=int, default=1, help="how many NVRs may enroll with it (default 1)")
    enroll.add_argument("--expires", default="1d", help="lifetime (default 1d)")

    emb = _group(commands, "embed", "read-only embed tokens for other portals (docs/embedding.md)")
    ecreate = _action(emb, "create", "create an embed token for one view; printed once")
    ecreate.add_argument("view", choices=embed.VIEWS, help="kpis: fleet KPI cards; nvrs: NVR table; nvr: one NVR")
    ecreate.add_argument("--nvr", type=int, help="view nvr: the NVR's id")
    ecreate.add_argument("--region", help="view nvrs: only this region's NVRs")
    ecreate.add_argument("--expires", default="7d", help="lifetime (default 7d, at most 365d)")
    ecreate.add_argument("--origin", action="append", default=[], help="portal origin allowed to embed it (repeat)")
    ecreate.add_argument("--label", default="", help="what it is for, shown in lists")
    _action(emb, "list", "list embed tokens")
    erevoke = _action(emb, "revoke", "revoke an embed token by id; open embeds stop at once")
    erevoke.add_argument("id", type=int)


def _group(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_text: str
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    parser = commands.add_parser(name, help=help_text, description=help_text)
    return parser.add_subparsers(dest="action", required=True)


def _action(
    group: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_text: str
) -> argparse.ArgumentParser:
    parser = group.add_parser(name, help=help_text, description=help_text)
    target.add_flags(parser)
    return parser


def run(args: argparse.Namespace, actions: Mapping[tuple[str, str], Action] | None = None) -> int:
    """Run one command's action (from `actions`, by default this module's) on the database it names."""
    try:
        settings = Settings.from_env(**target.overrides(args))
    except ValueError as exc:
        return _fail(str(exc), 2)
    action: Action = (_ACTIONS if actions is None else actions)[(args.command, args.action)]
    try:
        return asyncio.run(_with_credentials(settings.database, action, args))
    except (AccountError, Conflict, tokens.TokenError, embed.EmbedError, ApiTokenError) as exc:
        return _fail(str(exc), 1)


async def _with_credentials(path: Path | str, action: Action, args: argparse.Namespace) -> int:
    credentials = await Credentials.open(path, pool_size=1)
    try:
        return await action(credentials, args)
    finally:
        await credentials.close()


def _fail(message: str, code: int) -> int:
    print(f"nvrmon: {message}", file=sys.stderr)
    return code


def read_password(confirm: bool = True) -> str:
    """Prompt twice on a terminal; from a pipe (scripts, tests) read one line, so no password sits in argv."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if confirm and getpass.getpass("Repeat password: ") != first:
        raise AccountError("the passwords differ")
    return first


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC") if ts else "never"


def _table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


# -- users --------------------------------------------------------------------------------------------------------


async def _user_add(credentials: Credentials, args: argparse.Namespace) -> int:
    accounts.check_name(args.name)
    await accounts.add_user(credentials, args.name, args.role, read_password(), actor=cli_actor(), address=CLI_ADDRESS)
    print(f"added {args.role} {args.name}")
    return 0


async def _user_list(credentials: Credentials, args: argparse.Namespace) -> int:
    users = await credentials.users()
    rows = [("NAME", "ROLE", "STATE", "CREATED", "PASSWORD CHANGED")]
    rows += [(u.name, u.role, "disabled" if u.disabled else "enabled", _when(u.created), _when(u.password_changed))
             for u in users]  # fmt: skip
    _table(rows)
    return 0


async def _user_remove(credentials: Credentials, args: argparse.Namespace) -> int:
    await accounts.change_user(credentials, args.name, "delete", actor=cli_actor(), address=CLI_ADDRESS)
    print(f"removed {args.name}; its sessions have ended")
    return 0


async def _user_change(credentials: Credentials, args: argparse.Namespace) -> int:
    change = args.action
    user = await accounts.change_user(
        credentials, args.name, change, role=getattr(args, "role", ""), actor=cli_actor(), address=CLI_ADDRESS
    )
    done = {"disable": "disabled; its sessions have ended", "enable": "enabled"}
    print(f"{user.name} {done[change]}" if change in done else f"{user.name} is now {args.role}")
    return 0


async def _audit(credentials: Credentials, action: str, target: str, detail: str = "") -> None:
    await AuditLog(credentials.database).add(cli_actor(), action, target, detail, CLI_ADDRESS)


async def _user_passwd(credentials: Credentials, args: argparse.Namespace) -> int:
    if await credentials.user(args.name) is None:
        return _fail(f"no user {args.name!r}", 1)
    await accounts.change_password(credentials, args.name, read_password(), actor=cli_actor(), address=CLI_ADDRESS)
    print(f"password of {args.name} changed; its sessions have ended")
    return 0


# -- agent tokens -------------------------------------------------------------------------------------------------


async def _token_create(credentials: Credentials, args: argparse.Namespace) -> int:
    expires = tokens.parse_duration(args.expires) if args.expires else 0.0
    token, token_id = await tokens.create_nvr_token(credentials, args.hostname, expires)
    await _audit(credentials, "agent_token.create", args.hostname, f"id {token_id}")
    print(f"agent token {token_id} for {args.hostname} (shown once; the hub keeps only its hash):", file=sys.stderr)
    print(token)
    return 0


def stored_fleet_token(path: Path | str) -> str | None:
    """The fleet token the hub generated and stored at its first start; None when the file or the token is missing."""
    if isinstance(path, Path) and not path.exists():
        return None

    async def read() -> str | None:
        database = await Database.open(path, pool_size=1)
        try:
            return await database.meta(FLEET_TOKEN_KEY)
        finally:
            await database.close()

    return asyncio.run(read())


async def _token_fleet(credentials: Credentials, args: argparse.Namespace) -> int:
    configured = os.environ.get("NVRMON_AGENT_TOKEN", "")
    if configured:
        # A hub started with the variable accepts it and ignores the stored one.
        print("NVRMON_AGENT_TOKEN is set; it overrides the token stored in the database:", file=sys.stderr)
        print(configured)
        return 0
    stored = await credentials.database.meta(FLEET_TOKEN_KEY)
    if stored is None:
        return _fail(
            "no fleet token stored yet: the hub generates one at its first start (or set NVRMON_AGENT_TOKEN)", 1
        )
    print(f"fleet token stored in {credentials.database.describe()} (any hostname may use it):", file=sys.stderr)
    print(stored)
    return 0


async def _token_enroll(credentials: Credentials, args: argparse.Namespace) -> int:
    token, token_id = await tokens.create_enrollment_token(credentials, args.uses, tokens.parse_duration(args.expires))
    await _audit(credentials, "agent_token.create", "enrollment", f"id {token_id}, {args.uses} use(s)")
    print(f"enrollment token {token_id} for {args.uses} new NVR(s) (shown once):", file=sys.stderr)
    print(token)
    return 0


async def _token_list(credentials: Credentials, args: argparse.Namespace) -> int:
    now = time.time()
    rows = [("ID", "KIND", "HOSTNAME", "PREFIX", "STATE", "CREATED", "EXPIRES", "LAST USED")]
    for t in await credentials.agent_tokens():
        rows.append(
            (str(t.id), t.kind, t.hostname or "-", t.prefix + "…", tokens.state(t, now), _when(t.created),
             _when(t.expires) if t.expires else "never", _when(t.last_used))
        )  # fmt: skip
    _table(rows)
    return 0


async def _token_revoke(credentials: Credentials, args: argparse.Namespace) -> int:
    count = await credentials.revoke_agent_tokens(args.target, time.time())
    if not count:
        return _fail(f"no live token with id or hostname {args.target!r}", 1)
    await _audit(credentials, "agent_token.revoke", args.target, f"{count} token(s)")
    print(f"revoked {count} token(s); a running hub closes their connections within about a second")
    return 0


# -- embed tokens -------------------------------------------------------------------------------------------------


async def _embed_create(credentials: Credentials, args: argparse.Namespace) -> int:
    scope = embed.Scope.of(args.view, nvr_id=args.nvr, region=args.region)
    token, embed_id = await embed.create(
        credentials, scope, origins=args.origin, ttl=tokens.parse_duration(args.expires), label=args.label,
        created_by="cli",
    )  # fmt: skip
    await _audit(credentials, "embed.create", scope.describe(), f"id {embed_id}, origins {' '.join(args.origin)}")
    print(f"embed token {embed_id} ({scope.describe()}), shown once. Iframe URL path:", file=sys.stderr)
    print(f"/embed/{token}")
    return 0


async def _embed_list(credentials: Credentials, args: argparse.Namespace) -> int:
    now = time.time()
    rows = [("ID", "VIEW", "PREFIX", "STATE", "ORIGINS", "EXPIRES", "LABEL")]
    for e in await credentials.embeds():
        scope = embed.Scope(e.view, e.nvr_id, e.region)
        state = "revoked" if e.revoked else "expired" if now >= e.expires else "active"
        rows.append((str(e.id), scope.describe(), e.prefix + "…", state, " ".join(e.origins) or "-", _when(e.expires),
                     e.label))  # fmt: skip
    _table(rows)
    return 0


async def _embed_revoke(credentials: Credentials, args: argparse.Namespace) -> int:
    if not await credentials.revoke_embed(args.id, time.time()):
        return _fail(f"no active embed token {args.id}", 1)
    await _audit(credentials, "embed.revoke", str(args.id))
    print(f"revoked embed token {args.id}; open embeds stop within about a second")
    return 0


_ACTIONS: dict[tuple[str, str], Action] = {
    ("user", "add"): _user_add,
    ("user", "list"): _user_list,
    ("user", "remove"): _user_remove,
    ("user", "passwd"): _user_passwd,
    ("user", "disable"): _user_change,
    ("user", "enable"): _user_change,
    ("user", "role"): _user_change,
    ("token", "create"): _token_create,
    ("token", "enroll"): _token_enroll,
    ("token", "fleet"): _token_fleet,
    ("token", "list"): _token_list,
    ("token", "revoke"): _token_revoke,
    ("embed", "create"): _embed_create,
    ("embed", "list"): _embed_list,
    ("embed", "revoke"): _embed_revoke,
}
