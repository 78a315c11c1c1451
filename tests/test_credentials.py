"""The security store: sessions and tokens are kept as hashes, revocations bump the generation, enrollment is once."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path

import pytest

from nvrmon.store.credentials import Conflict, Credentials

pytestmark = pytest.mark.anyio


@pytest.fixture
async def credentials(database_url: str) -> AsyncIterator[Credentials]:
    store = await Credentials.open(database_url)
    yield store
    await store.close()


async def test_user_names_are_unique_ignoring_case(credentials: Credentials) -> None:
    await credentials.add_user("ada", "admin", "hash", 0)
    with pytest.raises(Conflict):
        await credentials.add_user("ADA", "viewer", "hash", 0)


async def test_removing_a_user_ends_its_sessions_and_bumps_the_generation(credentials: Credentials) -> None:
    user_id = await credentials.add_user("ada", "admin", "hash", 0)
    await credentials.create_session("h1", user_id, time.time(), "127.0.0.1")
    before = await credentials.generation()
    assert await credentials.remove_user("ada")
    assert await credentials.session("h1") is None and await credentials.generation() == before + 1
    assert not await credentials.remove_user("ada")


async def test_live_sessions_honour_both_timeouts(credentials: Credentials) -> None:
    user_id = await credentials.add_user("ada", "admin", "hash", 0)
    await credentials.create_session("old", user_id, 100, "")
    await credentials.create_session("new", user_id, 1000, "")
    assert await credentials.live_sessions(["old", "new", "gone"], idle_before=500, created_before=0) == {"new"}
    await credentials.touch_sessions(["old"], 2000)
    assert await credentials.live_sessions(["old", "new"], idle_before=500, created_before=0) == {"old", "new"}
    assert await credentials.live_sessions(["old", "new"], idle_before=0, created_before=500) == {"new"}


async def test_enrollment_registers_each_new_hostname_once(credentials: Credentials) -> None:
    now = time.time()
    enroll_id = await credentials.add_agent_token("enroll", None, "e-hash", "nvre_abcd", now, now + 60, uses=2)
    assert await credentials.enroll(enroll_id, "nvr-a", "a-hash", "nvrt_a", now)
    assert not await credentials.enroll(enroll_id, "nvr-a", "a2-hash", "nvrt_a", now)  # known hostname: refused
    assert await credentials.enroll(enroll_id, "nvr-b", "b-hash", "nvrt_b", now)
    assert not await credentials.enroll(enroll_id, "nvr-c", "c-hash", "nvrt_c", now)  # used up
    issued = await credentials.agent_token("a-hash")
    assert issued is not None and issued.kind == "nvr" and issued.hostname == "nvr-a" and issued.usable(now)
    spent = await credentials.agent_token("e-hash")
    assert spent is not None and spent.uses_left == 0 and not spent.usable(now)


async def test_revoking_by_hostname_revokes_all_its_tokens(credentials: Credentials) -> None:
    now = time.time()
    first = await credentials.add_agent_token("nvr", "nvr-a", "h1", "p", now)
    second = await credentials.add_agent_token("nvr", "nvr-a", "h2", "p", now)
    other = await credentials.add_agent_token("nvr", "nvr-b", "h3", "p", now)
    assert await credentials.revoke_agent_tokens("nvr-a", now) == 2
    assert await credentials.usable_agent_tokens([first, second, other], now) == {other}
    assert await credentials.revoke_agent_tokens(str(other), now) == 1
    assert await credentials.revoke_agent_tokens("nvr-a", now) == 0


async def test_embed_tokens_expire_and_revoke(credentials: Credentials) -> None:
    now = time.time()
    kept = await credentials.add_embed(
        "k", "emb_k", "kpis", nvr_id=None, region=None, origins=["https://p.example"], label="", now=now,
        expires=now + 60, created_by="t",
    )  # fmt: skip
    expired = await credentials.add_embed(
        "e", "emb_e", "kpis", nvr_id=None, region=None, origins=[], label="", now=now, expires=now - 1, created_by="t"
    )
    assert await credentials.usable_embeds([kept, expired], now) == {kept}
    found = await credentials.embed("k")
    assert found is not None and found.origins == ("https://p.example",)
    assert await credentials.revoke_embed(kept, now) and not await credentials.revoke_embed(kept, now)
    assert await credentials.usable_embeds([kept], now) == set()


async def test_a_version_2_database_gains_users_disabled_and_keeps_its_accounts(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    security = resources.files("nvrmon.store").joinpath("security.sql").read_text()
    old = security.replace(",\n    disabled         REAL NOT NULL DEFAULT 0", "")
    assert old != security
    with sqlite3.connect(path) as raw:
        raw.executescript(old)
        for name, role in (("ada", "admin"), ("bob", "viewer")):
            raw.execute(
                "INSERT INTO users (name, role, password_hash, created, password_changed) VALUES (?, ?, 'h', 1, 1)",
                (name, role),
            )
        raw.execute("PRAGMA user_version = 2")
    credentials = await Credentials.open(path)
    try:
        assert [(u.name, u.disabled) for u in await credentials.users()] == [("ada", 0.0), ("bob", 0.0)]
        assert await credentials.change_user("bob", "disable", actor="ada", address="", now=5.0) is not None
        bob = await credentials.user("bob")
        assert bob is not None and bob.disabled == 5.0
        with pytest.raises(Conflict, match="last enabled admin"):
            await credentials.change_user("ada", "disable", actor="bob", address="", now=6.0)
    finally:
        await credentials.close()
