"""Operators: argon2id password hashes, account rules and roles, shared by the CLI and the hub's login."""

from __future__ import annotations

import re
import secrets
import time
from functools import cache

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from nvrmon.store.credentials import ROLES, Conflict, Credentials, Role, User, UserChange

# argon2-cffi's defaults are RFC 9106's "low memory" profile (argon2id, t=3, m=64 MiB, p=4): about 50 ms a hash.
_hasher = PasswordHasher()
# Each verification holds 64 MiB and a core for ~50 ms: at most two at once, so a burst of logins queues up instead of
# taking the hub's memory and CPU away from agents and streams.
_verifying = anyio.CapacityLimiter(2)

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # longer inputs only cost hashing time; no one types more
DEMO_USER = "demo"
DEMO_PASSWORD_KEY = "demo_password"


class AccountError(ValueError):
    """An account operation that can't be done as asked; the message is meant for the operator."""


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise AccountError("a user name is 1-64 letters, digits or . _ @ -, starting with a letter or digit")
    return name


def check_role(role: str) -> Role:
    for known in ROLES:
        if role == known:
            return known
    raise AccountError(f"role must be one of {', '.join(ROLES)}")


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AccountError(f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


_RANK: dict[str, int] = {role: rank for rank, role in enumerate(ROLES)}


def allows(role: str, needed: Role) -> bool:
    """Roles are ordered: an admin may do what an operator may, an operator what a viewer may."""
    return _RANK.get(role, -1) >= _RANK[needed]


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@cache
def _dummy_hash() -> str:
    # Verified against for unknown user names, so a login takes as long whether the name exists or not.
    return _hasher.hash(secrets.token_urlsafe(16))


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def hash_password_async(password: str) -> str:
    return await anyio.to_thread.run_sync(hash_password, password, limiter=_verifying)


async def authenticate(credentials: Credentials, name: str, password: str) -> User | None:
    """The user if name and password match; hashing runs in a worker thread so the event loop keeps serving."""
    if len(password) > MAX_PASSWORD or len(name) > 64:
        return None
    user = await credentials.user(name)
    stored = user.password_hash if user is not None else _dummy_hash()
    if not await anyio.to_thread.run_sync(_verify, stored, password, limiter=_verifying) or user is None:
        return None
    if user.disabled:
        return None  # checked after the hash, so a disabled account answers as slowly as any other refusal
    if _hasher.check_needs_rehash(stored):
        await credentials.rehash(user.id, await hash_password_async(password))
    return user


async def add_user(
    credentials: Credentials, name: str, role: str, password: str, *, actor: str = "", address: str = ""
) -> int:
    check_name(name)
    valid_role = check_role(role)
    check_password(password)
    hashed = await hash_password_async(password)
    return await credentials.add_user(name, valid_role, hashed, time.time(), actor=actor, address=address)


async def change_password(
    credentials: Credentials, name: str, password: str, *, actor: str = "", address: str = ""
) -> bool:
    check_password(password)
    hashed = await hash_password_async(password)
    return await credentials.set_password(name, hashed, time.time(), actor=actor, address=address)


async def change_user(
    credentials: Credentials, name: str, change: UserChange, *, role: str = "", actor: str, address: str
) -> User:
    """Delete, disable, enable or re-role an account by the rules the admin page and the CLI share: nobody disables
    or deletes their own account (`actor` is a user name, or cli:… from the command line), and the last enabled
    admin stays an enabled admin."""
    if change in ("delete", "disable") and name.casefold() == actor.casefold():
        raise AccountError(f"you can't {change} your own account; another admin can")
    valid_role = check_role(role) if change == "role" else None
    try:
        user = await credentials.change_user(
            name, change, role=valid_role, actor=actor, address=address, now=time.time()
        )
    except Conflict as exc:
        raise AccountError(str(exc)) from None
    if user is None:
        raise AccountError(f"no user {name!r}")
    return user


async def ensure_demo_user(credentials: Credentials) -> tuple[str, str]:
    """`serve --demo`: the demo admin; returns (name, password). The password is kept in the database's meta table
    (demo only: a throwaway account on a local database), so restarting the demo keeps its sessions; a new one is
    made the first time, or when someone changed it since (`nvrmon user passwd demo`)."""
    user = await credentials.user(DEMO_USER)
    kept = await credentials.database.meta(DEMO_PASSWORD_KEY)
    if user is not None and kept and await anyio.to_thread.run_sync(_verify, user.password_hash, kept):
        return DEMO_USER, kept
    password = secrets.token_urlsafe(12)
    if user is None or not await change_password(credentials, DEMO_USER, password):
        await add_user(credentials, DEMO_USER, "admin", password)
    await credentials.database.set_meta(DEMO_PASSWORD_KEY, password)
    return DEMO_USER, password
