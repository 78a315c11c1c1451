"""Agent side, the prober: probes every camera on its own schedule and tells the hub what it proved, over the link.

Each camera has its own task (interval with jitter); probes share a semaphore (`concurrency`) and each has a time
limit, so one hung camera never delays the others. The link's hello waits for every configured camera's first
verdict, so a restart never reports a camera online or offline on less evidence than a change would need.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from nvrmon.agent import rtsp
from nvrmon.agent.config import AgentConfig, CameraConfig
from nvrmon.agent.facts import DeviceFacts, SourceReport, StreamFacts
from nvrmon.agent.health import health_frame, signature
from nvrmon.agent.link import Link
from nvrmon.agent.redact import without_credentials
from nvrmon.agent.verdicts import Camera, printable

log = logging.getLogger("nvrmon.agent.prober")

StreamProbe = Callable[[str], Awaitable[StreamFacts]]
DeviceProbe = Callable[[str], Awaitable[DeviceFacts | None]]  # an ONVIF URL -> facts, None when it can't tell
SourcePoll = Callable[[], Awaitable[SourceReport]]
DEVICE_LIMIT = 60.0  # seconds one ONVIF probe may take in all
DEVICE_EVERY = 60.0  # seconds between two ONVIF probes of one camera
HEALTH_SPACING = 5.0
MAX_CAMERA_ID = 64  # the protocol's limit  # seconds: a burst of changes is one health message, not one per probe


class Prober:
    def __init__(
        self,
        config: AgentConfig,
        *,
        device_probe: DeviceProbe | None = None,
        source_poll: SourcePoll | None = None,
    ) -> None:
        self.config = config
        self.device_probe = device_probe
        self.source_poll = source_poll
        self.cameras: dict[str, Camera] = {c.id: _camera(c) for c in config.cameras}
        self.probed = {c.id: c for c in config.cameras}
        self.source: SourceReport | None = None
        self.semaphore = asyncio.Semaphore(config.concurrency)
        # ONVIF probes have slots of their own: a slow SOAP device (up to DEVICE_LIMIT) never holds an RTSP probe up.
        self.device_semaphore = asyncio.Semaphore(max(1, config.concurrency // 2))
        self.started = time.monotonic()
        self.link = Link(config.hub_url, config.token, config.hostname, self.hello, stats=self.stats,
                         on_token=self.store_token, verbose=True)  # fmt: skip
        self.decided = asyncio.Event()  # every camera known so far has its first verdict
        self.source_seen = source_poll is None  # the hello also waits for the source's first answer
        self._source_failing = ""  # the reason of the source's current outage
        self.hello_sent = False
        self._health_due = asyncio.Event()
        self._check_decided()

    # -- what goes to the hub ------------------------------------------------------------------------------------

    def hello(self) -> dict[str, Any]:
        self.hello_sent = True
        report = self.source
        # The config bounds its own strings (hostname 253, the others 128); the source's words are cut to fit.
        nvr = {"hostname": self.config.hostname, "region": self.config.region, "site": self.config.site,
               "device_name": self.config.device_name,
               "model": self.config.model or printable(report.model if report else "", 128),
               "firmware": printable(report.firmware if report else "", 128)}  # fmt: skip
        cameras = [camera.wire() for camera in self.cameras.values() if camera.status]
        return {"type": "hello", "protocol": 1, "nvr": {k: v for k, v in nvr.items() if v}, "cameras": cameras}

    def stats(self, connected_for: float) -> dict[str, Any]:
        online = sum(c.status == "online" for c in self.cameras.values())
        offline = sum(c.status == "offline" for c in self.cameras.values())
        stats: dict[str, Any] = {"agent_uptime_s": round(time.monotonic() - self.started),
                                 "cameras_online": online, "cameras_offline": offline}  # fmt: skip
        disks = self.source.disks if self.source else ()
        capacity = sum(d.capacity_bytes or 0 for d in disks)
        if capacity:
            stats["disk_free_pct"] = round(100 * (1 - sum(d.used_bytes or 0 for d in disks) / capacity))
        return stats

    def store_token(self, token: str) -> None:
        """Keep the NVR's own token (issued by enrollment) where the next start reads it, readable by us only."""
        path: Path | None = self.config.token_file
        if path is None:
            log.warning("enrolled, but [hub] token_file is not set: the issued token is lost when this agent stops")
            return
        temporary = path.with_name(path.name + ".new")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(token + "\n")
        temporary.replace(path)
        log.info("the NVR's own token is stored in %s", path)

    def _observe(self, camera: Camera, ok: bool, reason: str, facts: StreamFacts | None) -> None:
        what = camera.observe(ok, reason, facts, down_after=self.config.down_after, up_after=self.config.up_after)
        self._tell(camera, what)

    def _tell(self, camera: Camera, what: str) -> None:
        if what == "decided":
            log.info("camera %s: %s%s", camera.id, camera.status, f" ({camera.reason})" if camera.reason else "")
            self._check_decided()
            if self.hello_sent:  # a camera the hub has not heard of yet (a new one from the source)
                self.link.send({"type": "cameras", "cameras": [c.wire() for c in self.cameras.values() if c.status]})
        elif what in ("changed", "news"):
            if what == "changed":
                log.info(
                    "camera %s: now %s%s", camera.id, camera.status, f" ({camera.reason})" if camera.reason else ""
                )
            if self.hello_sent:
                self.link.send(camera.status_frame())
        if what:
            self._health_due.set()

    def _check_decided(self) -> None:
        # The hello replaces the hub's camera list: one sent before a camera's verdict would remove it there.
        if self.source_seen and all(camera.status for camera in self.cameras.values()):
            self.decided.set()

    # -- the work ------------------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(self._probe_loop(camera)) for camera in self.config.cameras]
        if self.device_probe is not None:
            tasks += [asyncio.create_task(self._device_loop(self.cameras[c.id], c.onvif))
                      for c in self.config.cameras if c.onvif]  # fmt: skip
        if self.source_poll is not None:
            tasks.append(asyncio.create_task(self._source_loop()))
        link = asyncio.create_task(self._start_link(stop))  # ends when the hub refuses the token or removes the NVR
        tasks += [link, asyncio.create_task(self._health_loop())]
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait([stopped, link], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in [*tasks, stopped]:
                task.cancel()
            await asyncio.gather(*tasks, stopped, return_exceptions=True)

    async def _start_link(self, stop: asyncio.Event) -> None:
        if not self.decided.is_set():
            log.info("probing %d cameras before the first hello (each verdict needs its evidence)", len(self.cameras))
        await self.decided.wait()
        log.info("connecting to the hub at %s as %s", without_credentials(self.config.hub_url), self.config.hostname)
        await self.link.run(stop)

    async def _probe_loop(self, config: CameraConfig) -> None:
        camera = self.cameras[config.id]
        loop = asyncio.get_running_loop()
        await asyncio.sleep(random.uniform(0, min(1.0, self.config.interval / 4)))  # spread the first round
        while True:
            started = loop.time()
            facts = await self._probe(config)
            if facts.ok:
                camera.last_frames_at = loop.time()
            reason = facts.reason
            if not facts.ok and reason.startswith("no frames") and camera.last_frames_at is not None:
                reason = f"no frames for {round(loop.time() - camera.last_frames_at)} s"  # how long it has been dark
            self._observe(camera, facts.ok, reason, facts if facts.ok else None)
            delay = self.config.interval * random.uniform(0.9, 1.1) - (loop.time() - started)
            await asyncio.sleep(max(0.0, delay))

    async def _probe(self, config: CameraConfig) -> StreamFacts:
        limit = self.config.timeout * 5 + self.config.sample + 1  # connect, four requests, the sample
        async with self.semaphore:
            try:
                async with asyncio.timeout(limit):
                    return await rtsp.probe(config.rtsp, timeout=self.config.timeout, sample=self.config.sample)
            except TimeoutError:
                return StreamFacts(ok=False, reason=f"probe took over {limit:g} s")
            except Exception as exc:  # a bug must cost one probe, never the camera's task
                log.exception("camera %s: probe failed", config.id)
                return StreamFacts(ok=False, reason=f"probe error: {type(exc).__name__}")

    async def _device_loop(self, camera: Camera, url: str) -> None:
        """ONVIF facts change slowly (clock, recording): once a minute, on their own schedule beside the RTSP probe."""
        await asyncio.sleep(random.uniform(0, min(1.0, self.config.interval / 4)))
        while True:
            await self._device(camera, url)
            await asyncio.sleep(max(DEVICE_EVERY, self.config.interval * 6) * random.uniform(0.9, 1.1))

    async def _device(self, camera: Camera, url: str) -> None:
        assert self.device_probe is not None
        async with self.device_semaphore:
            try:
                async with asyncio.timeout(DEVICE_LIMIT):  # the probe bounds its own calls; this is the backstop
                    facts = await self.device_probe(url)
            except Exception as exc:
                log.info("camera %s: ONVIF facts not read: %s", camera.id, type(exc).__name__)
                return
        if facts is not None and facts != camera.device:
            camera.device = facts
            self._health_due.set()

    async def _source_loop(self) -> None:
        assert self.source_poll is not None
        while True:
            try:
                async with asyncio.timeout(self.config.timeout * 4):
                    report = await self.source_poll()
            except Exception as exc:
                report = SourceReport(ok=False, reason=f"nvr source: {type(exc).__name__}")
            self._source_report(report)
            await asyncio.sleep(self.config.source_interval * random.uniform(0.9, 1.1))

    def _source_report(self, report: SourceReport) -> None:
        self.source_seen = True
        if report.ok and self._source_failing:
            log.info("nvr source: answering again")
        if report.ok:
            self.source = report
            listed = {c.id: c for c in report.cameras}
            gone = [cid for cid in self.cameras if cid not in listed and cid not in self.probed]
            for cid in gone:
                del self.cameras[cid]
            for item in report.cameras:
                if not 0 < len(item.id) <= MAX_CAMERA_ID or not item.id.isprintable():
                    continue  # the hub would refuse the whole list for it
                camera = self.cameras.get(item.id)
                if camera is None:
                    camera = self.cameras[item.id] = Camera(item.id, printable(item.name, 128) or item.id)
                camera.device = item.device or camera.device
                if item.id not in self.probed:  # a configured camera's own probe decides its status
                    facts = item.stream or StreamFacts(ok=item.online)
                    self._observe(camera, item.online, item.reason or "offline at the nvr", facts)
            if gone and self.hello_sent:
                self.link.send({"type": "cameras", "cameras": [c.wire() for c in self.cameras.values() if c.status]})
        else:
            if report.reason != self._source_failing:  # said once per failure, not once per poll
                log.info("nvr source: %s", report.reason)
            for cid, camera in self.cameras.items():
                if cid not in self.probed:
                    self._observe(camera, False, f"nvr: {report.reason}", None)
        self._source_failing = "" if report.ok else report.reason
        self._check_decided()
        self._health_due.set()

    async def _health_loop(self) -> None:
        """A health message on change (at most one per HEALTH_SPACING) and at least every health_interval."""
        sent: tuple[Any, ...] | None = None
        while True:
            with_timeout = asyncio.wait_for(self._health_due.wait(), self.config.health_interval)
            try:
                await with_timeout
            except TimeoutError:
                sent = None  # the interval passed: send even if nothing changed
            self._health_due.clear()
            if self.link.connected.is_set():
                frame = health_frame(self.cameras.values(), self.source)
                if signature(frame) != sent:
                    self.link.send(frame)
                    sent = signature(frame)
            await asyncio.sleep(HEALTH_SPACING)


def _camera(config: CameraConfig) -> Camera:
    try:
        address = str(ipaddress.ip_address(config.host))
    except ValueError:
        address = ""  # a DNS name: the protocol's ip_address is an address
    return Camera(config.id, config.name, address)
