"""Removing an NVR (CLI while the hub runs, or the admin page): tombstones, audit, its agent closed, pages drop it."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from importlib import resources
from pathlib import Path

import pytest
import websockets
from starlette.testclient import TestClient

from nvrmon.ingest.hub import Hub
from nvrmon.protocol import Hello, parse_frame
from nvrmon.settings import Settings
from nvrmon.store.credentials import Credentials
from nvrmon.store.fleet import Changes, Store
from tests.agent import Agent, hello
from tests.conftest import LiveHub, run_cli
from tests.sse import open_stream
from tests.test_pages import client, register  # noqa: F401  (client is a fixture)


def nvr_info(hostname: str, cameras: int = 2) -> Hello:
    message = parse_frame(json.dumps(hello(hostname, cameras)), max_bytes=2**20, max_cameras=64)
    assert isinstance(message, Hello)
    return message


@pytest.mark.anyio
async def test_store_removal_leaves_tombstones_revokes_tokens_and_logs_who(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "r.db")
    credentials = Credentials(store.database)
    try:
        for name in ("nvr-keep", "nvr-gone"):
            info = nvr_info(name)
            async with store.transaction(time.time()) as tx:
                reg = await tx.register_nvr(info.nvr)
                await tx.replace_cameras(reg.nvr_id, info.cameras)
        await credentials.add_agent_token("nvr", "nvr-gone", "h" * 64, "nvrt_abc", time.time(), 0.0, None)
        generation = await credentials.generation()
        before = await store.current_seq()
        async with store.transaction(time.time()) as tx:
            assert await tx.remove_nvr("nvr-nope", "alice") is None
            removed = await tx.remove_nvr("nvr-gone", "alice")
        assert removed is not None and len(removed.camera_ids) == 2 and removed.tokens == 1
        assert tx.changes.seq == before + 1 and tx.changes.nvr_ids == {removed.nvr_id}
        assert [n.hostname for n in await store.fleet()] == ["nvr-keep"]
        assert await store.nvr(removed.nvr_id) is None and (await store.summary()).cameras_total == 2
        tomb = await store.nvrs([removed.nvr_id], include_removed=True)
        assert tomb[0].removed and all(c.removed for c in await store.cameras(removed.camera_ids, include_removed=True))
        assert await store.changed_since(before, 100) == ([removed.nvr_id], sorted(removed.camera_ids))
        assert (await store.events(limit=1))[0].message == "NVR nvr-gone removed by alice"
        assert await credentials.generation() > generation  # the revocation watch closes its token's connections
        assert all(t.revoked for t in await credentials.agent_tokens() if t.hostname == "nvr-gone")
        info = nvr_info("nvr-gone", 1)
        async with store.transaction(time.time()) as tx:  # the same recorder installed again
            reg = await tx.register_nvr(info.nvr)
        assert reg.nvr_id == removed.nvr_id and reg.previous is None  # registered anew, not "back online"
        assert len(await store.fleet()) == 2
    finally:
        await store.close()


@pytest.mark.anyio
async def test_pruning_drops_old_nvr_tombstones_and_raises_the_horizon(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "p.db")
    try:
        info = nvr_info("nvr-old")
        async with store.transaction(time.time()) as tx:
            reg = await tx.register_nvr(info.nvr)
            await tx.replace_cameras(reg.nvr_id, info.cameras)
        async with store.transaction(time.time()) as tx:
            await tx.remove_nvr("nvr-old", "alice")
        removed_at = tx.changes.seq
        async with store.transaction(time.time() + 10) as tx:
            await tx.prune(time.time() + 5)  # the removal event is older than this too
        assert await store.nvrs([reg.nvr_id], include_removed=True) == []
        assert await store.horizon() == removed_at  # a cursor from before the removal gets a full refresh
    finally:
        await store.close()


def test_admin_removes_an_nvr_with_csrf_and_closes_its_agent(client: TestClient) -> None:  # noqa: F811
    kept = register(client, "nvr-stays")
    with client.websocket_connect("/ws/agent", headers={"Authorization": "Bearer test-agent-token"}) as ws:
        ws.send_json(hello("nvr-old-sim", 3))
        nvr_id = int(ws.receive_json()["nvr_id"])
        page = client.get("/admin").text
        assert f'action="/admin/nvrs/{nvr_id}/remove"' in page
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert csrf is not None
        assert client.post(f"/admin/nvrs/{nvr_id}/remove").status_code == 403  # no CSRF token
        done = client.post(f"/admin/nvrs/{nvr_id}/remove", data={"csrf_token": csrf.group(1)})
        assert done.status_code == 200 and "Removed NVR nvr-old-sim" in done.text
        assert f'action="/admin/nvrs/{nvr_id}/remove"' not in done.text
        with pytest.raises(Exception) as closed:  # the hub closed the agent: 4004, not a reconnect-worthy failure
            ws.receive_json()
        assert getattr(closed.value, "code", None) == 4004
    assert client.get(f"/api/nvrs/{nvr_id}").status_code == 404
    assert [n["id"] for n in client.get("/api/nvrs").json()["nvrs"]] == [kept]
    assert client.get(f"/nvrs/{nvr_id}").status_code == 404
    events = client.get("/api/events").json()["events"]
    assert any(e["message"] == f"NVR nvr-old-sim removed by {'admin'}" for e in events)
    again = client.post(f"/admin/nvrs/{nvr_id}/remove", data={"csrf_token": csrf.group(1)})
    assert again.status_code == 404


@pytest.mark.anyio
async def test_cli_removal_while_the_hub_runs_reaches_open_pages_and_the_agent(live_hub: LiveHub) -> None:
    agent, nvr_id = await Agent.register(live_hub.ws_url, live_hub.token, "nvr-decommissioned", cameras=2)
    health = live_hub.get("/healthz").json()
    before = f"{health['epoch']}-{health['seq']}"
    cameras = [c["id"] for c in live_hub.get(f"/api/cameras?nvr={nvr_id}").json()["cameras"]]
    async with (
        open_stream(live_hub, f"view=nvrs&since={before}") as nvrs_page,
        open_stream(live_hub, f"view=cameras&since={before}") as cameras_page,
    ):
        removed = await asyncio.to_thread(run_cli, live_hub.database, "nvr", "remove", "nvr-decommissioned")
        assert removed.returncode == 0 and "removed nvr-decommissioned with 2 cameras" in removed.stdout
        gone = f'<tr id="nvr-{nvr_id}" hx-swap-oob="delete">'
        await nvrs_page.until(lambda m: gone in m.data, timeout=5)
        await cameras_page.until(lambda m: all(f'id="camera-{c}" hx-swap-oob="delete"' in m.data for c in cameras))
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await agent.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4004
    assert "nvr-decommissioned" not in (await asyncio.to_thread(run_cli, live_hub.database, "nvr", "list")).stdout
    # A page that was away (a cursor from before the removal) drops the rows on replay too.
    async with open_stream(live_hub, f"view=nvrs&since={before}") as late:
        await late.until(lambda m: f'<tr id="nvr-{nvr_id}" hx-swap-oob="delete">' in m.data)
    summary = live_hub.get("/api/summary").json()
    assert summary["nvrs_total"] == 0 and summary["cameras_total"] == 0
    assert any("removed by" in e["message"] and "(command line)" in e["message"]
               for e in live_hub.get("/api/events").json()["events"])  # fmt: skip
    assert run_cli(live_hub.db_path, "nvr", "remove", "nvr-decommissioned").returncode == 1


@pytest.mark.anyio
async def test_a_version_1_database_gets_the_nvr_tombstone_column(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    added = (
        "updated_seq    INTEGER NOT NULL,\n"
        "    -- A removed NVR stays as a tombstone (like a removed camera) so a replay can drop it from open pages.\n"
        "    removed        INTEGER NOT NULL DEFAULT 0,\n"
    )
    schema = (resources.files("nvrmon.store") / "schema.sql").read_text()
    assert added in schema
    with sqlite3.connect(path) as db:
        db.executescript(schema.replace(added, "updated_seq    INTEGER NOT NULL,\n"))  # the nvrs table of version 1
        db.execute("INSERT INTO nvrs (hostname, updated_seq) VALUES ('nvr-v1', 1)")
        db.execute("PRAGMA user_version = 1")
    store = await Store.open(path)
    try:
        assert [(n.hostname, n.removed) for n in await store.fleet()] == [("nvr-v1", False)]
    finally:
        await store.close()


@pytest.mark.anyio
async def test_the_hub_publishes_an_outside_removal_even_when_its_own_commit_came_first(tmp_path: Path) -> None:
    path = tmp_path / "gap.db"
    store = await Store.open(path)
    published: list[Changes] = []
    hub = Hub(store, Settings(db_path=path), lambda changes, toasts, more: published.append(changes))
    await hub.start()
    tasks = [asyncio.create_task(hub.run())]
    try:
        await hub.hello(hub.new_session("a"), nvr_info("nvr-a"))
        doomed = hub.new_session("b")
        await hub.hello(doomed, nvr_info("nvr-b"))
        cli = await Store.open(path)  # `nvrmon nvr remove` in its own process, on the same file
        async with cli.transaction(time.time()) as tx:
            removed = await tx.remove_nvr("nvr-b", "bob")
        await cli.close()
        assert removed is not None
        await hub.hello(hub.new_session("c"), nvr_info("nvr-c"))  # the hub commits the next seq before it looks
        tasks.append(asyncio.create_task(hub.sweep()))
        for _ in range(50):
            if any(removed.nvr_id in c.nvr_ids and set(removed.camera_ids) <= c.camera_ids for c in published[3:]):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"the outside removal was never published: {published}")
        assert removed.nvr_id not in hub.sessions and doomed.outbox.get_nowait() == (4004, "NVR removed from the hub")
        assert hub.outside.known == await store.current_seq()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await store.close()
