"""Stage 7, operations: /metrics for Prometheus: fleet gauges read from the store at scrape time, and hub internals.

Each app has its own CollectorRegistry (tests create several apps in one process; prometheus-client's global
registry would mix them). The fleet gauges are one custom collector over the store reads of each scrape: the read the
dashboard's figures come from (Store.fleet, counted by Summary.of), so no label series is kept by hand and a
region that empties simply stops being reported, and the active incidents counted by severity and state.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from nvrmon.access import accounts
from nvrmon.incidents import SEVERITIES
from nvrmon.live.broadcaster import Broadcaster
from nvrmon.live.publisher import Publisher
from nvrmon.models import Nvr, Summary
from nvrmon.settings import Settings
from nvrmon.store import incidents
from nvrmon.store.fleet import Store

NVR_STATUSES = ("online", "stale", "offline", "unknown")
CAMERA_STATUSES = ("online", "offline", "nvr_offline", "unknown")
OPEN_STATES = ("open", "acknowledged")  # an incident's states before it resolves
# A batch holds 1 to settings.max_batch (2000) items; a commit takes well under 10 ms unless the disk is struggling.
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)
SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
GC_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0)


class HubGauges(Protocol):
    """What /metrics reads from the hub's writer (nvrmon.ingest.hub.Hub provides it; web never imports ingest)."""

    @property
    def agents_connected(self) -> int: ...
    @property
    def queue_depth(self) -> int: ...


class FleetCollector(Collector):
    """nvrmon_nvrs and nvrmon_cameras by status and region, and nvrmon_incidents_open by severity and state, from the
    rows read just before this scrape."""

    def __init__(self) -> None:
        self.fleet: list[Nvr] = []
        self.incidents: dict[tuple[str, str], int] = {}

    def collect(self) -> Iterator[Metric]:
        by_region: dict[str, list[Nvr]] = {}
        for nvr in self.fleet:
            by_region.setdefault(nvr.region, []).append(nvr)
        nvrs = GaugeMetricFamily("nvrmon_nvrs", "NVRs by status and region", labels=["status", "region"])
        cameras = GaugeMetricFamily(
            "nvrmon_cameras", "Cameras by shown status (nvr_offline, unknown: their NVR's) and region",
            labels=["status", "region"],
        )  # fmt: skip
        for region, members in sorted(by_region.items()):
            summary = Summary.of(members)  # the dashboard's one producer of fleet figures
            for status, count in zip(NVR_STATUSES, _nvr_counts(summary), strict=True):
                nvrs.add_metric([status, region], count)
            for status, count in zip(CAMERA_STATUSES, _camera_counts(summary), strict=True):
                cameras.add_metric([status, region], count)
        yield nvrs
        yield cameras
        active = GaugeMetricFamily(
            "nvrmon_incidents_open", "Incidents not resolved yet, by severity and state (open or acknowledged)",
            labels=["severity", "state"],
        )  # fmt: skip
        # Every pair, zeros included: a quiet fleet reports 0 (alert rules and panels see a value, not no data).
        for level in SEVERITIES:
            for state in OPEN_STATES:
                active.add_metric([level, state], self.incidents.get((level, state), 0))
        yield active


def _nvr_counts(s: Summary) -> tuple[int, ...]:
    return s.nvrs_online, s.nvrs_stale, s.nvrs_offline, s.nvrs_unknown


def _camera_counts(s: Summary) -> tuple[int, ...]:
    return s.cameras_online, s.cameras_offline, s.cameras_nvr_offline, s.cameras_unknown


class PauseHistogram:
    """Garbage-collection pauses, by generation, kept without a lock: gc.callbacks run inside whatever code triggered
    the collection, possibly while that code holds a prometheus-client metric's (non-reentrant) lock."""

    def __init__(self) -> None:
        self.counts = {generation: [0] * (len(GC_BUCKETS) + 1) for generation in range(3)}
        self.sums = dict.fromkeys(range(3), 0.0)
        self._started = 0.0

    def callback(self, phase: str, info: dict[str, Any]) -> None:
        """For gc.callbacks (added and removed by the application's lifespan)."""
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause = time.perf_counter() - self._started
        generation = int(info.get("generation", 0))
        if generation not in self.counts:
            return
        slot = next((i for i, bound in enumerate(GC_BUCKETS) if pause <= bound), len(GC_BUCKETS))
        self.counts[generation][slot] += 1
        self.sums[generation] += pause

    def family(self) -> HistogramMetricFamily:
        family = HistogramMetricFamily(
            "nvrmon_gc_pause_seconds", "Garbage collection pauses of the hub process", labels=["generation"]
        )
        for generation, counts in self.counts.items():
            running, buckets = 0, []
            for bound, count in zip([*map(str, GC_BUCKETS), "+Inf"], counts, strict=True):
                running += count
                buckets.append((bound, float(running)))
            family.add_metric([str(generation)], buckets, self.sums[generation])
        return family


class HubCollector(Collector):
    """The hub's internals at scrape time: connections, queue depths, fan-out counters, GC pauses."""

    def __init__(self, hub: HubGauges, broadcaster: Broadcaster, publisher: Publisher, pauses: PauseHistogram) -> None:
        self.hub, self.broadcaster, self.publisher, self.pauses = hub, broadcaster, publisher, pauses

    def collect(self) -> Iterator[Metric]:
        b = self.broadcaster
        yield GaugeMetricFamily(
            "nvrmon_agents_connected", "Agent connections speaking for an NVR", self.hub.agents_connected
        )
        browsers = GaugeMetricFamily(
            "nvrmon_browsers_connected", "Open SSE streams and held long-polls", labels=["transport"]
        )
        for transport, count in sorted(b.subscribers_by_transport().items()):
            browsers.add_metric([transport], count)
        yield browsers
        yield GaugeMetricFamily("nvrmon_ingest_queue_depth", "Agent work waiting for the writer", self.hub.queue_depth)
        yield GaugeMetricFamily(
            "nvrmon_publisher_pending", "Committed rows and events waiting for the next flush to browsers",
            self.publisher.pending_rows,
        )  # fmt: skip
        yield CounterMetricFamily("nvrmon_deliveries", "Messages handed to browser streams", b.deliveries)
        yield CounterMetricFamily("nvrmon_delivered_bytes", "Bytes handed to browser streams", b.delivered_bytes)
        yield CounterMetricFamily(
            "nvrmon_stream_overflows", "Streams whose queue overflowed (they caught up from the store)", b.overflows
        )
        yield CounterMetricFamily(
            "nvrmon_slow_streams_dropped", "Streams cut off for taking nothing for sse_send_timeout", b.cut_offs
        )
        yield self.pauses.family()


class Metrics:
    """One app's registry: the collectors above, the commit histograms the hub's writer feeds, process metrics."""

    def __init__(self, store: Store, hub: HubGauges, broadcaster: Broadcaster, publisher: Publisher) -> None:
        self.store = store
        self.registry = CollectorRegistry(auto_describe=False)
        self.fleet = FleetCollector()
        self.pauses = PauseHistogram()
        self.registry.register(self.fleet)
        self.registry.register(HubCollector(hub, broadcaster, publisher, self.pauses))
        self.batch_size = Histogram(
            "nvrmon_commit_batch_size", "Agent work items per committed writer transaction",
            buckets=BATCH_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.commit_seconds = Histogram(
            "nvrmon_commit_seconds", "Duration of a writer transaction, BEGIN to COMMIT",
            buckets=SECONDS_BUCKETS, registry=self.registry,
        )  # fmt: skip
        ProcessCollector(registry=self.registry)  # process_cpu_seconds_total, process_resident_memory_bytes, ...
        PlatformCollector(registry=self.registry)  # python_info

    def observe_commit(self, items: int, seconds: float) -> None:
        """The hub's on_commit: called by the writer after each COMMIT."""
        self.batch_size.observe(items)
        self.commit_seconds.observe(seconds)

    async def exposition(self) -> bytes:
        fleet = await self.store.fleet()
        active = await incidents.open_by_severity(self.store.database)
        # No await from here on: a concurrent scrape can't swap the rows between this assignment and the render.
        self.fleet.fleet, self.fleet.incidents = fleet, active
        return generate_latest(self.registry)


def _refuse(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"error": detail}, status_code=status, headers={"Cache-Control": "no-store"})


async def endpoint(request: Request) -> Response:
    """GET /metrics: with `Authorization: Bearer <NVRMON_METRICS_TOKEN>` (compared in constant time), or for an
    admin session; without NVRMON_METRICS_TOKEN only the session works. The route's guard is "public" because this
    is the rule: the guard has no notion of a scrape token (it has already identified any session)."""
    settings: Settings = request.state.settings
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        if not settings.metrics_token:
            return _refuse(401, "this hub has no NVRMON_METRICS_TOKEN set: /metrics needs an admin session")
        if not hmac.compare_digest(given.strip().encode(), settings.metrics_token.encode()):
            return _refuse(403, "wrong metrics token")
    else:
        identity = getattr(request.state, "identity", None)
        if identity is None:
            how = "Authorization: Bearer <NVRMON_METRICS_TOKEN> or " if settings.metrics_token else ""
            return _refuse(401, f"/metrics needs {how}an admin session")
        if not accounts.allows(identity.role, "admin"):
            return _refuse(403, f"/metrics needs the admin role; you are {identity.role}")
    metrics: Metrics = request.state.metrics
    body = await metrics.exposition()
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
