"""Accounts: argon2id hashes, name/role/password rules, the role order, authentication and the demo login."""

from __future__ import annotations

from pathlib import Path

import pytest

from nvrmon.access import accounts
from nvrmon.access.accounts import AccountError
from nvrmon.store.credentials import Credentials

pytestmark = pytest.mark.anyio


def test_password_hash_is_argon2id_salted_and_verifies() -> None:
    first, second = accounts.hash_password("a long passphrase"), accounts.hash_password("a long passphrase")
    assert first.startswith("$argon2id$") and first != second  # a random salt each time
    assert accounts._verify(first, "a long passphrase") and not accounts._verify(first, "a long passphrasE")
    assert not accounts._verify("not a hash", "a long passphrase")


@pytest.mark.parametrize("name", ["", " ada", "ada lovelace", "-ada", "a" * 65, "ada<script>", "ädä"])
def test_bad_user_names_are_refused(name: str) -> None:
    with pytest.raises(AccountError):
        accounts.check_name(name)


@pytest.mark.parametrize("password", ["short", "x" * 1025])
def test_passwords_too_short_or_too_long_are_refused(password: str) -> None:
    with pytest.raises(AccountError):
        accounts.check_password(password)


def test_roles_are_ordered_viewer_operator_admin() -> None:
    assert accounts.allows("admin", "viewer") and accounts.allows("operator", "operator")
    assert not accounts.allows("viewer", "operator") and not accounts.allows("operator", "admin")
    assert not accounts.allows("root", "viewer")
    with pytest.raises(AccountError):
        accounts.check_role("root")


async def test_authenticate_checks_the_password_and_ignores_name_case(tmp_path: Path) -> None:
    credentials = await Credentials.open(tmp_path / "a.db")
    try:
        await accounts.add_user(credentials, "Ada", "admin", "a long passphrase")
        user = await accounts.authenticate(credentials, "ada", "a long passphrase")
        assert user is not None and user.name == "Ada" and user.role == "admin"
        assert await accounts.authenticate(credentials, "ada", "wrong passphrase") is None
        assert await accounts.authenticate(credentials, "nobody", "a long passphrase") is None
    finally:
        await credentials.close()


async def test_demo_user_keeps_its_random_password_across_starts(tmp_path: Path) -> None:
    credentials = await Credentials.open(tmp_path / "a.db")
    try:
        name, first = await accounts.ensure_demo_user(credentials)
        _, second = await accounts.ensure_demo_user(credentials)
        assert name == "demo" and first == second and len(second) >= 16
        demo = await accounts.authenticate(credentials, name, second)
        assert demo is not None and demo.role == "admin"
    finally:
        await credentials.close()
