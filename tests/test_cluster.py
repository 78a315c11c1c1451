"""Several hubs on one PostgreSQL database behind nginx (tests/cluster.py): fan-out between hubs, a hub killed under
load, the database restarted under load. Real hubs, real nginx, real PostgreSQL, real Chromium."""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal
from playwright.sync_api import Browser, Page, expect

from nvrmon.agent.simulator import Fleet as SimulatedFleet
from tests.browsing import Browsing, Fleet, api, not_reloaded, wait_until
from tests.cluster import POSTGRES_BACKEND, Cluster, PrivatePostgres
from tests.conftest import LiveHub
from tests.sse import open_stream
from tests.test_restart_convergence import Page as SsePage
from tests.test_restart_convergence import stale_rows

pytestmark = [
    pytest.mark.skipif(
        not POSTGRES_BACKEND,
        reason="needs the PostgreSQL store backend (Settings.database_url, NVRMON_DATABASE_URL): not on this branch",
    ),
    pytest.mark.browser,
]

NVRS, CAMERAS, RATE = 12, 8, 25.0  # 96 cameras (one page of /cameras?per=100), 25 changes a second fleet-wide
LEASE = 3.0
NVR_DOWN = re.compile(r"^NVR \S+ is offline|did not reconnect")


# -- what the fleet, the hubs and the pages say ------------------------------------------------------------------------


def agents_truth(fleet: SimulatedFleet) -> dict[tuple[str, str], str]:
    """Every camera's status as its agent last said it (all acknowledged, once `all_acknowledged` holds)."""
    return {(agent.hostname, camera.id): camera.status for agent in fleet.agents for camera in agent.cameras}


def hub_truth(hub: LiveHub) -> dict[tuple[str, str], str]:
    cameras = hub.get("/api/cameras", params={"limit": "500"}, timeout=5).json()["cameras"]
    return {(c["nvr_hostname"], c["ext_id"]): str(c["status"]) for c in cameras}


def shown_by_id(hub: LiveHub) -> dict[int, str]:
    """/api's display status per camera id (what a page's row shows)."""
    cameras = hub.get("/api/cameras", params={"limit": "500"}, timeout=5).json()["cameras"]
    return {int(c["id"]): str(c["display_status"]) for c in cameras}


def dom_statuses(page: Page) -> dict[int, str]:
    rows = page.locator("#camera-rows tr[id^='camera-']")
    ids = rows.evaluate_all("rows => rows.map(r => r.id)")
    assert len(ids) == len(set(ids)), f"duplicate rows: {ids}"
    statuses = rows.evaluate_all("rows => rows.map(r => r.dataset.status)")
    return {int(i.removeprefix("camera-")): s for i, s in zip(ids, statuses, strict=True)}


def all_acknowledged(fleet: SimulatedFleet) -> bool:
    return all(agent.connected.is_set() and not agent.unacked for agent in fleet.agents)


def subscribers(hub: LiveHub) -> int:
    return int(hub.get("/healthz", timeout=5).json()["subscribers"])


def healthy(hub: LiveHub) -> bool:
    try:
        return httpx.get(f"{hub.url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


async def churn(fleet: SimulatedFleet, rate: float, stop: asyncio.Event) -> None:
    """Flip random cameras `rate` times a second; the agents keep every frame until a hub acknowledges it."""
    rng = random.Random(7)
    while not stop.is_set():
        agent = rng.choice(fleet.agents)
        camera = rng.choice(agent.cameras)
        agent.set_camera(camera, "offline" if camera.status == "online" else "online", "no RTSP answer")
        await asyncio.sleep(1 / rate)


@dataclass
class ResumingPage(SsePage):
    """An SSE page as tests/test_restart_convergence.py keeps one (rows as htmx applies them, Last-Event-ID on every
    reconnect) that also records the cursor each reconnect resumed from."""

    resumed_from: list[str | None] = field(default_factory=list)

    async def run(self, hub: LiveHub) -> None:
        while True:
            cursor = self.last_id
            try:
                async with open_stream(hub, self.query, last_event_id=cursor) as stream:
                    self.connects += 1
                    if self.connects > 1:
                        self.resumed_from.append(cursor)
                    while True:
                        msg = await stream.next(timeout=120)
                        self.show(msg.data)
                        self.last_id = stream.last_id or self.last_id
            except (httpx.HTTPError, EOFError, AssertionError, OSError, TimeoutError):
                pass  # the hub went away (or nginx ended the stream): retry like a browser, from the cursor
            await asyncio.sleep(random.uniform(0.1, 1.0))


class Watcher:
    """Samples a hub's summary while faults happen: an NVR that went offline at any moment is an offline storm."""

    def __init__(self, hub: LiveHub) -> None:
        self.hub = hub
        self.offline_seen = 0
        self.samples = 0

    async def run(self) -> None:
        async with httpx.AsyncClient(base_url=self.hub.url, headers=self.hub.headers, timeout=3) as client:
            while True:
                try:
                    summary = (await client.get("/api/summary")).json()
                    self.offline_seen = max(self.offline_seen, int(summary["nvrs_offline"]))
                    self.samples += 1
                except (httpx.HTTPError, ValueError, KeyError):
                    pass  # the hub watched may be restarting its database connection; the next sample counts
                await asyncio.sleep(0.25)


def nvr_down_events(hub: LiveHub, after_id: int) -> list[str]:
    listed = hub.get("/api/events", params={"limit": "500"}, timeout=5).json()["events"]
    return [str(e["message"]) for e in listed if int(e["id"]) > after_id and NVR_DOWN.search(str(e["message"]))]


def last_event_id(hub: LiveHub) -> int:
    listed = hub.get("/api/events", params={"limit": "1"}, timeout=5).json()["events"]
    return int(listed[0]["id"]) if listed else 0


def watch_streams(page: Page) -> list[str | None]:
    """The Last-Event-ID each /events request of the page carried (None: the first connect, no cursor)."""
    sent: list[str | None] = []
    page.on("request", lambda r: sent.append(r.headers.get("last-event-id")) if "/events?" in r.url else None)
    return sent


# -- (a) fan-out between hubs ------------------------------------------------------------------------------------------


def test_agent_on_hub_a_changes_a_camera_and_a_browser_on_hub_b_shows_it_within_a_second(
    start_cluster: Callable[..., Cluster], browser: Browser, portal: BlockingPortal
) -> None:
    cluster = start_cluster(3)
    a, b, _ = cluster.hubs
    # One session secret: the session cookie hub A issued is valid on hub B.
    assert httpx.get(f"{b.url}/api/summary", headers=a.headers, timeout=5).status_code == 200
    fleet, browsing = Fleet(portal, a), Browsing(browser, b)
    try:
        agent, nvr_id = fleet.register("nvr-on-a", cameras=2)  # straight to hub A's port
        wait_until(lambda: any(n["id"] == nvr_id for n in api(b, "nvrs")["nvrs"]), timeout=5)
        camera = next(c["id"] for c in api(b, f"nvrs/{nvr_id}")["cameras"] if c["ext_id"] == "cam1")
        page = browsing.open(f"{b.url}/cameras")  # straight to hub B's port
        row = page.locator(f"#camera-{camera}")
        expect(row).to_have_attribute("data-status", "online")
        sent = time.monotonic()
        fleet.send(agent, {"type": "camera_status", "camera_id": "cam1", "status": "offline"})
        expect(row).to_have_attribute("data-status", "offline", timeout=1_000)
        print(f"\nhub A -> hub B: the change reached B's page in {(time.monotonic() - sent) * 1000:.0f} ms")
        not_reloaded(page)
    finally:
        browsing.close()
        fleet.close_all()
    assert not browsing.errors, browsing.errors


# -- (b) kill -9 one hub under load ------------------------------------------------------------------------------------


def test_kill_9_hub_under_load_agents_and_browsers_move_on_with_nothing_lost(
    start_cluster: Callable[..., Cluster], browser: Browser, portal: BlockingPortal
) -> None:
    # A short lease, so the survivors take A's NVRs over while the test watches (NVRMON_HUB_LEASE, the cluster logic).
    cluster = start_cluster(3, HEARTBEAT_TIMEOUT="20", STALE_AFTER="10", SSE_RETRY_MS="300", HUB_LEASE=str(LEASE))
    front = cluster.front
    a, b, c = cluster.hubs
    fleet = SimulatedFleet(front.ws_url, cluster.token, nvrs=NVRS, cameras=CAMERAS, rate=0, seed=5)
    for agent in fleet.agents:
        agent.profile = None  # camera changes only: health reports would bring degraded events of their own
    running = portal.start_task_soon(fleet.run)
    browsing = Browsing(browser, front)
    readers: list[ResumingPage] = []
    tasks: list[Any] = []
    stop = asyncio.Event()
    try:
        wait_until(lambda: api(b, "summary")["nvrs_online"] == NVRS, timeout=30)
        # Agents through nginx land on every hub; A must hold some for its death to mean anything.
        assert all(int(h.get("/healthz").json()["agents"]) > 0 for h in cluster.hubs), "nginx did not spread agents"
        pages = [browsing.open(f"{front.url}/cameras?per=100") for _ in range(3)]
        cursors = [watch_streams(p) for p in pages]
        # Browsers on every hub: more SSE readers until each hub serves at least two streams.
        while (len(readers) < 9 or min(subscribers(h) for h in cluster.hubs) < 2) and len(readers) < 30:
            readers.append(ResumingPage("view=cameras&id=per%3D100"))
            tasks.append(portal.start_task_soon(readers[-1].run, front))
            time.sleep(0.3)
        assert min(subscribers(h) for h in cluster.hubs) >= 2, "nginx did not spread browsers over every hub"
        on_a = subscribers(a)
        before = last_event_id(b)
        watcher = Watcher(b)
        tasks.append(portal.start_task_soon(watcher.run))
        tasks.append(portal.start_task_soon(churn, fleet, RATE, stop))
        time.sleep(2.0)  # changes flow through all three hubs
        connects = [len(sent) for sent in cursors]
        killed = time.monotonic()
        cluster.kill(a)
        time.sleep(3.0)  # the load goes on while A's agents and browsers find another hub
        portal.call(stop.set)
        # Every agent reconnected through nginx and had every frame acknowledged (replayed if A never committed it).
        wait_until(lambda: all_acknowledged(fleet), timeout=20)
        agents_back = time.monotonic() - killed
        for hub in (b, c):
            assert hub_truth(hub) == agents_truth(fleet), f"{hub.url}: lost or wrong changes"
        # Every page equals /api within 5 s of the load stopping, without a reload.
        truth = shown_by_id(b)
        wait_until(lambda: all(dom_statuses(p) == shown_by_id(b) for p in pages), timeout=5)
        wait_until(lambda: stale_rows(list(readers), shown_by_id(b)) == {}, timeout=5)
        for page in pages:
            not_reloaded(page)
        # A's browsers came back on B or C, each from its cursor (a Last-Event-ID), never from nothing.
        moved = [sent[n:] for sent, n in zip(cursors, connects, strict=True) if len(sent) > n]
        resumed = [r.resumed_from for r in readers if r.resumed_from]
        assert len(moved) + len(resumed) >= on_a, (on_a, moved, resumed)  # at least every stream A held
        assert all(cursor for sent in moved for cursor in sent), moved
        assert all(cursor for sent in resumed for cursor in sent), resumed
        # No offline storm: no NVR was offline at any sample, and no NVR-down event was written.
        assert watcher.samples > 10 and watcher.offline_seen == 0, (watcher.samples, watcher.offline_seen)
        assert nvr_down_events(b, before) == []
        assert truth  # the fleet's cameras were listed
        # Past A's lease: the takeover of A's NVRs leaves the ones whose agents are back online, and writes nothing.
        time.sleep(max(0.0, killed + LEASE + 4.0 - time.monotonic()))
        assert api(b, "summary")["nvrs_online"] == NVRS
        assert watcher.offline_seen == 0 and nvr_down_events(b, before) == []
        assert hub_truth(c) == agents_truth(fleet)
        print(
            f"\nkill -9 of hub A ({on_a} streams on it): all agents acknowledged {agents_back:.1f} s after the kill; "
            f"{len(moved)} Chromium pages and {len(resumed)} SSE readers resumed from their cursors"
        )
    finally:
        portal.call(stop.set)
        for task in [*tasks, running]:
            task.cancel()
        browsing.close()
    assert not browsing.errors, browsing.errors


# -- (c) the database restarted under load -----------------------------------------------------------------------------


def test_database_restart_under_load_hubs_recover_by_themselves(
    start_cluster: Callable[..., Cluster], private_postgres: PrivatePostgres, browser: Browser, portal: BlockingPortal
) -> None:
    cluster = start_cluster(3, server=private_postgres.url, HEARTBEAT_TIMEOUT="30", SSE_RETRY_MS="300")
    front = cluster.front
    pids = [h.process.pid for h in cluster.hubs if h.process is not None]
    fleet = SimulatedFleet(front.ws_url, cluster.token, nvrs=NVRS, cameras=CAMERAS, rate=0, seed=9)
    for agent in fleet.agents:
        agent.profile = None
    running = portal.start_task_soon(fleet.run)
    browsings = [Browsing(browser, hub) for hub in cluster.hubs]
    readers = [ResumingPage("view=cameras&id=per%3D100") for _ in range(6)]
    stop = asyncio.Event()
    tasks: list[Any] = []
    try:
        wait_until(lambda: api(cluster.hubs[1], "summary")["nvrs_online"] == NVRS, timeout=30)
        pages = [s.open(f"{s.hub.url}/cameras?per=100") for s in browsings]  # one page straight on each hub
        tasks += [portal.start_task_soon(r.run, front) for r in readers]
        tasks.append(portal.start_task_soon(churn, fleet, RATE, stop))
        time.sleep(2.0)
        private_postgres.stop("fast")  # every hub's connections are cut, listeners included
        time.sleep(3.0)  # agents keep sending; hubs cannot commit
        private_postgres.start()
        restarted = time.monotonic()
        time.sleep(2.0)  # and more changes once it is back
        portal.call(stop.set)
        wait_until(lambda: all(healthy(h) for h in cluster.hubs), timeout=30)
        wait_until(lambda: all_acknowledged(fleet), timeout=30)
        recovered = time.monotonic() - restarted
        for hub in cluster.hubs:
            assert hub_truth(hub) == agents_truth(fleet), f"{hub.url}: lost or wrong changes across the restart"
        # Pages on every hub converge: each hub's fan-out noticed the lost connection and caught up by itself.
        on_hubs = list(zip(pages, cluster.hubs, strict=True))
        wait_until(lambda: all(dom_statuses(p) == shown_by_id(h) for p, h in on_hubs), timeout=10)
        wait_until(lambda: stale_rows(list(readers), shown_by_id(cluster.hubs[0])) == {}, timeout=10)
        # Writes resume after the load: one more change, committed and shown everywhere.
        agent = fleet.agents[0]
        camera = agent.cameras[0]
        portal.call(lambda: agent.set_camera(camera, "offline" if camera.status == "online" else "online", "x"))
        wait_until(lambda: all_acknowledged(fleet), timeout=10)
        for hub in cluster.hubs:
            wait_until(lambda h=hub: hub_truth(h) == agents_truth(fleet), timeout=3)
        # By themselves: the same processes, none restarted.
        assert [h.process.pid for h in cluster.hubs if h.process is not None and h.process.poll() is None] == pids
        print(f"\ndatabase restart under load: every hub healthy, every frame acknowledged {recovered:.1f} s after")
    finally:
        portal.call(stop.set)
        for task in [*tasks, running]:
            task.cancel()
        for session in browsings:
            session.close()
    for session in browsings:
        assert not session.errors, session.errors
