"""Subscriber side of the load: many minimal SSE clients per worker process, and the delivery accounting.

Each subscriber is a raw asyncio Protocol on its own TCP connection (no HTTP library): it sends
`GET /events?view=cameras HTTP/1.1` and, per read, takes one time.time_ns() stamp, walks the chunked-encoding headers
to the end of the last complete chunk and keeps those bytes with the stamp. Both servers write whole SSE messages per
HTTP chunk (uvicorn writes each ASGI body message as one chunk), so a complete chunk is the unit of receipt. A parser
task then (in ~2 ms slices, between reads) finds camera rows with one regex per chunk, updates what the subscriber
shows, and in the burst scenario counts SSE messages (blank-line terminated, heartbeats excluded). A subscriber whose
connection drops reconnects after 1 s with Last-Event-ID, as a browser would.

After the run the worker matches what each subscriber saw against the agents' send log (see `analyse`).
"""

from __future__ import annotations

import asyncio
import bisect
import re
import time
from array import array
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, cast

from benchutil import auth_headers
from load import read_log

ROW = re.compile(rb'id="camera-(\d+)"[^>]*data-status="(\w+)"')
STATUS_CODES = {b"offline": 0, b"online": 1, b"nvr_offline": 2, b"unknown": 3}
OTHER_STATUS = 4


@dataclass(frozen=True)
class WorkerSpec:
    port: int
    path: str
    count: int
    first_index: int
    initial: bytes  # the status every camera is shown with at connect time, indexed by camera db id
    concurrency: int = 64
    connect_timeout: float = 60.0
    count_messages: bool = False  # per-chunk SSE message counts (the burst scenario needs them)


class Subscriber(asyncio.Protocol):
    def __init__(self, index: int, request: bytes, initial: bytes, count_messages: bool = False) -> None:
        self.index = index
        self.count_messages = count_messages
        self.request = self.base_request = request
        self.transport: asyncio.Transport | None = None
        self.port = 0
        self.t_start = 0
        self.t_first = 0
        self.connected = self._future()
        self.in_body = False
        self.buf = bytearray()
        self.last_id = b""
        self.closing = False
        self.drops = 0
        self.bytes = 0
        self.reads = 0
        self.error = ""
        self._task: asyncio.Future[None] | None = None
        # Received but not yet parsed: (receive ns, bytes of whole chunks). Parsing is deferred to the worker's parser
        # task so that a read costs one timestamp and an append, and a burst of rows doesn't delay the next read.
        self.pending: list[tuple[int, bytes]] = []
        # What the subscriber has been shown, by camera db id: compared as one bytes object to the expected end state.
        self.state = bytearray(initial)
        # Every received row (camera db id, status code, receive ns) and every chunk with messages (ns, count).
        self.cams = array("i")
        self.codes = array("b")
        self.times = array("q")
        self.msg_times = array("q")
        self.msg_counts = array("i")
        self.msg_bytes = array("q")

    # -- protocol callbacks -----------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have the same methods.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        t = time.time_ns()
        if not self.t_first:
            self.t_first = t
        self.bytes += len(data)
        self.reads += 1
        buf = self.buf
        if buf:
            buf += data
            raw: bytes | bytearray = buf
        else:
            raw = data
        pos = 0
        if not self.in_body:
            end = raw.find(b"\r\n\r\n")
            if end < 0:
                if raw is data:
                    buf += data
                return
            head = bytes(raw[:end])
            status_line = head.split(b"\r\n", 1)[0]
            if b" 200 " not in status_line or b"chunked" not in head.lower():
                self.error = status_line.decode(errors="replace")
                if self.transport is not None:
                    self.transport.close()
                return
            self.in_body = True
            if not self.connected.done():
                self.connected.set_result(None)
            pos = end + 4
        # Walk the chunk headers to the end of the last complete chunk, then scan that whole region at once: rows never
        # straddle chunks, and chunk-size lines can't match ROW.
        n = len(raw)
        start = pos
        while True:
            nl = raw.find(b"\r\n", pos)
            if nl < 0:
                break
            size = int(raw[pos:nl], 16)
            stop = nl + size + 4
            if stop > n:
                break
            pos = stop
            if size == 0:  # the server ended the stream; connection_lost will reconnect
                break
        if pos > start:
            self.pending.append((t, data if raw is data and start == 0 and pos == n else bytes(raw[start:pos])))
        if raw is data:
            if pos < n:
                buf += data[pos:]
        elif pos:
            del buf[:pos]

    def parse_pending(self) -> None:
        pending, self.pending = self.pending, []
        state, cams, codes, times = self.state, self.cams, self.codes, self.times
        size = len(state)
        for t, region in pending:
            if self.count_messages:
                # SSE messages end with a blank line; the hub's messages use LF, sse-starlette's heartbeats CRLF, so
                # this counts every message but heartbeats.
                messages = region.count(b"\n\n")
                if messages:
                    self.msg_times.append(t)
                    self.msg_counts.append(messages)
                    self.msg_bytes.append(len(region))
            for cam_text, status in ROW.findall(region):
                cam = int(cam_text)
                code = STATUS_CODES.get(status, OTHER_STATUS)
                cams.append(cam)
                codes.append(code)
                times.append(t)
                if cam < size:
                    state[cam] = code
            at = region.rfind(b"\nid: ")
            if at >= 0:
                self.last_id = region[at + 5 : region.find(b"\n", at + 1)]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.connected.done():
            self.connected.set_exception(ConnectionError(self.error or f"connection lost before headers: {exc}"))
        if not self.closing:
            self.drops += 1
            asyncio.get_running_loop().call_later(1.0, self._reconnect)

    # -- connection management --------------------------------------------------------------------------------------

    def _reconnect(self) -> None:
        if self.closing:
            return
        self.parse_pending()  # for last_id
        self.in_body = False
        self.buf.clear()
        header = b"Last-Event-ID: " + self.last_id + b"\r\n" if self.last_id else b""
        self.request = self.base_request[:-2] + header + b"\r\n"
        self.connected = self._future()
        self._task = asyncio.ensure_future(self._connect_quietly())

    async def _connect_quietly(self) -> None:
        try:
            await asyncio.get_running_loop().create_connection(lambda: self, "127.0.0.1", self.port)
        except OSError:
            if not self.closing:
                self.drops += 1
                asyncio.get_running_loop().call_later(1.0, self._reconnect)

    @staticmethod
    def _future() -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Reconnects are never awaited: mark a failure as retrieved so asyncio doesn't log it.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        return future

    async def connect(self, port: int) -> None:
        self.port = port
        self.t_start = time.time_ns()
        await asyncio.get_running_loop().create_connection(lambda: self, "127.0.0.1", port)

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()


def request_bytes(path: str) -> bytes:
    cookie = "".join(f"{name}: {value}\r\n" for name, value in auth_headers().items())
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n"
        f"{cookie}\r\n"
    ).encode()


async def _recv(conn: Connection) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, conn.recv)


async def _worker(conn: Connection, spec: WorkerSpec) -> None:
    request = request_bytes(spec.path)
    subs = [Subscriber(spec.first_index + i, request, spec.initial, spec.count_messages) for i in range(spec.count)]
    gate = asyncio.Semaphore(spec.concurrency)
    failures: list[str] = []

    async def open_one(sub: Subscriber) -> None:
        async with gate:
            try:
                await sub.connect(spec.port)
                # Hold the slot until the first byte, so connects are paced by the server's answers.
                await asyncio.wait_for(asyncio.shield(sub.connected), spec.connect_timeout)
            except Exception as exc:
                failures.append(f"{type(exc).__name__}: {exc}")

    await asyncio.gather(*(open_one(s) for s in subs))
    parser = asyncio.create_task(_parse_in_background(subs))
    connect_ms = [(s.t_first - s.t_start) / 1e6 for s in subs if s.t_first]
    # When the worker's first connect began and its last stream answered: how long it took to open them all.
    span = [min(s.t_start for s in subs), max(s.t_first for s in subs)] if connect_ms else [0, 0]
    conn.send(("connected", {"connect_ms": connect_ms, "failures": failures[:5], "failed": len(failures),
                             "span_ns": span}))  # fmt: skip

    while True:
        command, arg = await _recv(conn)
        if command == "converge":
            # Until every subscriber shows the expected end state; past the soft deadline only while still progressing
            # (fewer subscribers pending than 2 s before), and never past the hard one.
            want, soft, hard = arg
            history: list[tuple[float, int]] = []
            while True:
                for sub in subs:
                    sub.parse_pending()
                pending = sum(1 for s in subs if s.state != want)
                now = time.time()
                history.append((now, pending))
                before = [p for t, p in history if t <= now - 2.0]
                stalled = bool(before) and pending >= before[-1]
                if not pending or now >= hard or (now >= soft and stalled):
                    break
                await asyncio.sleep(0.05)
            conn.send(("converged", {"pending": pending, "t": time.time()}))
        elif command == "analyse":
            for sub in subs:
                sub.close()
            await asyncio.sleep(0.05)
            parser.cancel()
            for sub in subs:
                sub.parse_pending()
            conn.send(("result", analyse(subs, **arg)))
        elif command == "storm":
            conn.send(("stormed", await storm(subs, spec, *arg)))
        elif command == "stop":
            return


async def storm(subs: list[Subscriber], spec: WorkerSpec, want: bytes, deadline: float, sample: int) -> dict[str, Any]:
    """A reconnect storm: every subscriber (all closed by now, as after a hub restart) reopens its stream at once
    with its Last-Event-ID; per subscriber, the time until it shows `want` (its catch-up arrived). Connects are only
    limited by the worker's gate (as many in flight as the initial connect allowed), never spread out in time."""
    gate = asyncio.Semaphore(spec.concurrency * 4)
    started = time.time_ns()
    bytes_before = sum(sub.bytes for sub in subs)
    done: dict[int, int] = {}
    failures = 0

    async def reopen(sub: Subscriber) -> None:
        nonlocal failures
        async with gate:
            sub.closing = False
            sub.in_body = False
            sub.buf.clear()
            header = b"Last-Event-ID: " + sub.last_id + b"\r\n" if sub.last_id else b""
            sub.request = sub.base_request[:-2] + header + b"\r\n"
            sub.connected = sub._future()
            try:
                await asyncio.get_running_loop().create_connection(lambda: sub, "127.0.0.1", spec.port)
                await asyncio.wait_for(asyncio.shield(sub.connected), spec.connect_timeout)
            except Exception:
                failures += 1

    async def watch() -> None:
        while len(done) < len(subs) and time.time() < deadline:
            for i, sub in enumerate(subs):
                if i not in done:
                    sub.parse_pending()
                    if sub.state == want:
                        done[i] = time.time_ns()
            await asyncio.sleep(0.002)

    watcher = asyncio.create_task(watch())
    await asyncio.gather(*(reopen(sub) for sub in subs))
    await watcher
    for sub in subs:
        sub.close()
    return {
        "started_ns": started,
        "converge_ms": sorted((t - started) / 1e6 for t in done.values()),
        "not_converged": len(subs) - len(done),
        "failed": failures,
        "bytes": sum(sub.bytes for sub in subs) - bytes_before,
        "samples": [bytes(sub.state) for sub in subs[:sample]],
    }


async def _parse_in_background(subs: list[Subscriber]) -> None:
    """Parse what the subscribers received in slices of about 2 ms, letting reads (and their timestamps) in between."""
    while True:
        busy = False
        started = time.perf_counter()
        for sub in subs:
            if sub.pending:
                busy = True
                sub.parse_pending()
                if time.perf_counter() - started > 0.002:
                    await asyncio.sleep(0)
                    started = time.perf_counter()
        if not busy:
            await asyncio.sleep(0.02)


def worker_main(conn: Connection, spec: WorkerSpec) -> None:
    """Entry point of a subscriber worker process."""
    try:
        import uvloop

        uvloop.run(_worker(conn, spec))
    except ImportError:
        asyncio.run(_worker(conn, spec))


# -- accounting -------------------------------------------------------------------------------------------------------


def analyse(
    subs: list[Subscriber],
    *,
    log_path: str,
    w0_ns: int,
    w1_ns: int,
    final: bytes,
    burst_cams: list[int] | None = None,
    burst_t0_ns: int = 0,
) -> dict[str, Any]:
    """Match every subscriber's received rows against the send log.

    Per (subscriber, camera), the rows seen form a sequence, and so do the changes sent; the hub may skip states
    (coalescing, latest wins) but never reorders them. Row j (status s, received at r) is attributed to the latest
    change with status s that was sent at or before r and is consistent with the rows seen after it (a backward pass
    bounds each row by its successor's change). A change is *delivered* when a row is attributed to it; an undelivered
    change followed by a delivered change of the same camera is *superseded* (coalesced away, not missed); a row
    attributed to the same change as the row before it is a *duplicate*. A subscriber *missed* a camera when, after the
    drain, it shows a status different from the last one sent. Latencies are kept for changes sent inside the measured
    window; the delivery count (for throughput and CPU per delivery) is of deliveries received inside the window.
    """
    cams, statuses, times = read_log(log_path)
    by_cam_t: dict[int, list[int]] = {}
    by_cam_s: dict[int, list[int]] = {}
    for cam, status, t in zip(cams, statuses, times, strict=True):
        by_cam_t.setdefault(cam, []).append(t)
        by_cam_s.setdefault(cam, []).append(status)
    # Prefix counts of in-window changes per camera, for superseded / undelivered accounting.
    win_prefix: dict[int, list[int]] = {}
    for cam, sent_times in by_cam_t.items():
        acc = [0]
        for t in sent_times:
            acc.append(acc[-1] + (w0_ns <= t < w1_ns))
        win_prefix[cam] = acc

    latencies = array("i")
    delivered_in_window = duplicates = superseded = undelivered = unmatched = missed = rows = 0
    missed_subs = 0
    burst_set = set(burst_cams or ())
    converge_ms: list[float] = []
    burst_messages: list[int] = []
    burst_bytes: list[int] = []
    not_converged = 0
    for sub in subs:
        rows += len(sub.cams)
        seen: dict[int, list[tuple[int, int]]] = {}
        for cam, code, r in zip(sub.cams, sub.codes, sub.times, strict=True):
            seen.setdefault(cam, []).append((code, r))
        for cam, obs in seen.items():
            tl = by_cam_t.get(cam)
            if tl is None:
                unmatched += len(obs)
                continue
            sl = by_cam_s[cam]
            # Backward pass: the latest change each row can stand for, bounded by the next row's change.
            bound = len(tl) - 1
            next_code = -1
            picks = [-1] * len(obs)
            for j in range(len(obs) - 1, -1, -1):
                code, r = obs[j]
                k = bisect.bisect_right(tl, r) - 1
                limit = bound if code == next_code else bound - 1 if next_code >= 0 else bound
                k = min(k, limit)
                while k >= 0 and sl[k] != code:
                    k -= 1
                picks[j] = k
                if k >= 0:
                    bound, next_code = k, code
            prefix = win_prefix[cam]
            last = -1
            for j, k in enumerate(picks):
                if k < 0:
                    unmatched += 1
                    continue
                if k == last:
                    duplicates += 1
                    continue
                superseded += prefix[k] - prefix[last + 1]
                last = k
                t = tl[k]
                r = obs[j][1]
                if w0_ns <= t < w1_ns:
                    latencies.append(min((r - t) // 1000, 2**31 - 1))
                if w0_ns <= r < w1_ns:
                    delivered_in_window += 1
            undelivered += prefix[len(tl)] - prefix[last + 1]
        wrong = sum(1 for cam in by_cam_t if cam < len(final) and sub.state[cam] != final[cam])
        missed += wrong
        missed_subs += wrong > 0
        if burst_set:
            first_off: dict[int, int] = {}
            for cam, code, r in zip(sub.cams, sub.codes, sub.times, strict=True):
                if cam in burst_set and code == 0 and r >= burst_t0_ns and cam not in first_off:
                    first_off[cam] = r
            if len(first_off) == len(burst_set):
                done = max(first_off.values())
                converge_ms.append((done - burst_t0_ns) / 1e6)
                during = [
                    (n, size)
                    for t, n, size in zip(sub.msg_times, sub.msg_counts, sub.msg_bytes, strict=True)
                    if burst_t0_ns <= t <= done
                ]
                burst_messages.append(sum(n for n, _ in during))
                burst_bytes.append(sum(size for _, size in during))
            else:
                not_converged += 1
    return {
        "latencies_us": latencies.tobytes(),
        "delivered_in_window": delivered_in_window,
        "duplicates": duplicates,
        "superseded": superseded,
        "undelivered": undelivered,
        "unmatched": unmatched,
        "missed": missed,
        "missed_subscribers": missed_subs,
        "rows": rows,
        "bytes": sum(s.bytes for s in subs),
        "reads": sum(s.reads for s in subs),
        "drops": sum(s.drops for s in subs),
        "messages": sum(sum(s.msg_counts) for s in subs),
        "burst_converge_ms": converge_ms,
        "burst_messages": burst_messages,
        "burst_bytes": burst_bytes,
        "burst_not_converged": not_converged,
    }
