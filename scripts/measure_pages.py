"""Measurement: first-paint server time of /, /nvrs and /cameras (and one live change) on a 2,000 NVR / 30,000 camera
fleet, built in a temporary SQLite file by direct store writes. Prints the median of each.

    python3 scripts/measure_pages.py [--nvrs 2000] [--cameras 15] [--runs 15]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout's nvrmon, not an installed one

from nvrmon.live.renderer import Renderer  # noqa: E402
from nvrmon.live.viewkey import View  # noqa: E402
from nvrmon.live.views import Views  # noqa: E402
from nvrmon.protocol import CameraInfo, NvrInfo  # noqa: E402
from nvrmon.settings import Settings  # noqa: E402
from nvrmon.store.fleet import NewEvent, Store  # noqa: E402

REGIONS = ("North", "South", "East", "West", "Central", "Harbour", "Airport", "Campus")
TEMPLATES = {"dashboard": "dashboard.html", "nvrs": "nvrs.html", "cameras": "cameras.html"}


async def build(store: Store, nvrs: int, cameras: int) -> None:
    rng = random.Random(7)
    now = time.time()
    async with store.transaction(now) as tx:
        for n in range(nvrs):
            region = REGIONS[n % len(REGIONS)]
            site = f"{region} site {n // 40}"
            ip = f"10.{n // 250}.{n % 250}.2"
            info = NvrInfo(
                f"nvr-{region.lower()}-{n:04d}", f"{region} recorder {n}", region, site, "NV-8000", "4.2.1", ip
            )
            nvr_id = (await tx.register_nvr(info)).nvr_id
            cams = [CameraInfo(f"cam{c}", f"Camera {c:02d}", f"10.{n // 250}.{n % 250}.{10 + c}",
                               "offline" if rng.random() < 0.03 else "online") for c in range(cameras)]  # fmt: skip
            await tx.replace_cameras(nvr_id, cams)
            if rng.random() < 0.04:
                await tx.set_nvr_status(nvr_id, "offline", "agent disconnected")
        await tx.add_events([NewEvent("status", "warning", f"event {i}", 1 + i % nvrs) for i in range(500)])


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nvrs", type=int, default=2000)
    parser.add_argument("--cameras", type=int, default=15, help="per NVR")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(db_path=Path(tmp) / "measure.db")
        store = await Store.open(settings.db_path)
        started = time.perf_counter()
        await build(store, args.nvrs, args.cameras)
        print(f"built {args.nvrs} NVRs x {args.cameras} cameras in {time.perf_counter() - started:.1f} s")
        views = Views(store, Renderer(settings.templates_dir, settings.static_dir), settings)
        pages = {
            "/": View("dashboard"),
            "/nvrs": View("nvrs"),
            "/nvrs?status=offline&sort=-cameras": View.for_list("nvrs", {"status": "offline", "sort": "-cameras"}),
            "/cameras": View("cameras"),
            "/cameras?layout=grid&status=offline": View.for_list("cameras", {"layout": "grid", "status": "offline"}),
            "/cameras?q=camera 07&sort=since": View.for_list("cameras", {"q": "camera 07", "sort": "since"}),
            "/cameras?page=400": View.for_list("cameras", {"page": "400"}),
        }
        for path, view in pages.items():
            timings = []
            size = 0
            for _ in range(args.runs):
                t0 = time.perf_counter()
                ctx = await views.page(view)
                assert ctx is not None
                html = views.renderer.render(TEMPLATES[view.kind], title="t", active=view.kind, oob=False,
                                             transport="auto", toasts="", **ctx)  # fmt: skip
                timings.append((time.perf_counter() - t0) * 1000)
                size = len(html)
            print(f"first paint {path:40} median {statistics.median(timings):6.1f} ms  ({size // 1024} KB)")
        # One live change (a camera flips on NVR 1) rendered for every kind of view at once.
        keys = [v.key for v in pages.values()]
        timings = []
        for i in range(args.runs):
            async with store.transaction(time.time()) as tx:
                await tx.set_camera_statuses([(1, "offline" if i % 2 else "online")])
                await tx.touch_nvr(1)
            t0 = time.perf_counter()
            await views.render_changes(tx.changes, keys)
            timings.append((time.perf_counter() - t0) * 1000)
        print(f"live change, {len(keys)} views                    median {statistics.median(timings):6.1f} ms")
        await store.close()


if __name__ == "__main__":
    asyncio.run(main())
