"""Agent side, the RTSP probe: OPTIONS, DESCRIBE (Basic or Digest), SETUP over TCP, PLAY, frames counted, TEARDOWN.

A camera is healthy when its stream delivers frames, so the probe does not stop at DESCRIBE: it plays the video track
interleaved on the RTSP connection for `sample` seconds and counts the frames (RTP marker bits, else timestamp
changes), which gives the measured fps and bitrate. Every read is bounded (header and body sizes, one timeout per
step), and every failure is a reason in words (`rtsp 401 unauthorized`, `connection refused`, `DESCRIBE timeout`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import struct
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from nvrmon.agent import sdp
from nvrmon.agent.facts import StreamFacts
from nvrmon.agent.rtsp_auth import Challenge, Credentials, choose, parse_challenges

MAX_HEADER = 16 * 1024  # one response's status line and headers
DEFAULT_PORT = 554
USER_AGENT = "nvrmon-agent"
TRANSPORT = "RTP/AVP/TCP;unicast;interleaved=0-1"
OS_REASONS = {errno.EHOSTUNREACH: "host unreachable", errno.ENETUNREACH: "network unreachable",
              errno.ETIMEDOUT: "connect timeout", errno.ECONNRESET: "connection reset"}  # fmt: skip


class ProbeFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason[:200]


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    phrase: str
    headers: dict[str, list[str]]
    body: bytes

    def header(self, name: str) -> str:
        values = self.headers.get(name.lower())
        return values[0] if values else ""


@dataclass(slots=True)
class Measure:
    """What PLAY delivered during the sample."""

    frames: int = 0
    packets: int = 0
    payload_bytes: int = 0
    fps: float | None = None
    bitrate_kbps: float | None = None
    size: tuple[int, int] | None = None


class RtspClient:
    """One RTSP/1.0 connection to one camera URL; credentials come from the URL and never go on the wire in it."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or ""
        self.port = parts.port or DEFAULT_PORT
        self.credentials = (
            Credentials(unquote(parts.username), unquote(parts.password or "")) if parts.username else None
        )
        netloc = f"[{self.host}]" if ":" in self.host else self.host
        netloc += f":{parts.port}" if parts.port else ""
        self.url = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        self.timeout = timeout
        self.cseq = 0
        self.challenge: Challenge | None = None
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=MAX_HEADER)
        except TimeoutError:
            raise ProbeFailed("connect timeout") from None
        except socket.gaierror:
            raise ProbeFailed("dns lookup failed") from None
        except ConnectionRefusedError:
            raise ProbeFailed("connection refused") from None
        except OSError as exc:
            reason = OS_REASONS.get(exc.errno or 0, f"connect failed: {exc.strerror or type(exc).__name__}")
            raise ProbeFailed(reason) from None

    async def request(self, method: str, url: str, headers: dict[str, str] | None = None) -> Response:
        """Send one request and return its 200 response; a 401 is answered once with the credentials (or again when
        the server changed its nonce); anything else is ProbeFailed with the status in words."""
        response = await self._exchange(method, url, headers or {})
        for _ in range(2):
            if response.status != 401 or self.credentials is None:
                break
            challenge = choose(parse_challenges(response.headers.get("www-authenticate", [])))
            if challenge is None or self.challenge is not None and challenge.params.get("stale", "").lower() != "true":
                break  # no scheme we speak, or the same credentials refused already
            self.challenge = challenge
            response = await self._exchange(method, url, headers or {})
        if response.status == 401:
            raise ProbeFailed("rtsp 401 unauthorized")
        if response.status != 200:
            raise ProbeFailed(f"rtsp {response.status} {response.phrase.lower()}".strip()[:80])
        return response

    def _write(self, method: str, url: str, headers: dict[str, str]) -> None:
        assert self.writer is not None
        self.cseq += 1
        lines = [f"{method} {url} RTSP/1.0", f"CSeq: {self.cseq}", f"User-Agent: {USER_AGENT}"]
        if self.challenge is not None and self.credentials is not None:
            # Digest's uri is the Request-URI as sent (RFC 2326 §D.2 uses the whole rtsp:// URL).
            lines.append(f"Authorization: {self.credentials.authorization(self.challenge, method, url)}")
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))

    async def _exchange(self, method: str, url: str, headers: dict[str, str]) -> Response:
        assert self.writer is not None
        try:
            self._write(method, url, headers)
            async with asyncio.timeout(self.timeout):
                await self.writer.drain()
                return await self._response(method)
        except TimeoutError:
            raise ProbeFailed(f"{method} timeout") from None
        except asyncio.IncompleteReadError:
            raise ProbeFailed(f"{method}: connection closed by the camera") from None
        except asyncio.LimitOverrunError:
            raise ProbeFailed(f"{method}: response header over {MAX_HEADER} bytes") from None
        except ConnectionError:
            raise ProbeFailed(f"{method}: connection reset") from None

    async def _message(self, first: bytes, method: str) -> tuple[str, dict[str, list[str]], bytes]:
        """One RTSP message whose first byte was read: its start line, headers (lower-case names) and body."""
        assert self.reader is not None
        head = (first + await self.reader.readuntil(b"\r\n\r\n")).decode("utf-8", "replace")
        start, *lines = head.split("\r\n")
        headers: dict[str, list[str]] = {}
        for line in lines:
            name, sep, value = line.partition(":")
            if sep:
                headers.setdefault(name.strip().lower(), []).append(value.strip())
        declared = headers.get("content-length", ["0"])[0]
        length = int(declared) if declared.isdigit() else 0
        if length > sdp.MAX_SDP:
            raise ProbeFailed(f"{method}: response body over {sdp.MAX_SDP // 1024} KiB")
        return start, headers, await self.reader.readexactly(length) if length else b""

    async def _response(self, method: str) -> Response:
        assert self.reader is not None
        while True:
            first = await self.reader.readexactly(1)
            if first == b"$":  # an interleaved RTP packet ahead of the response: skip it
                length = struct.unpack("!xH", await self.reader.readexactly(3))[0]
                await self.reader.readexactly(length)
                continue
            status_line, headers, body = await self._message(first, method)
            version, _, rest = status_line.partition(" ")
            if not version.startswith("RTSP/"):
                if version.startswith("HTTP/"):
                    raise ProbeFailed("not an RTSP server (it answers HTTP)")
                continue  # a request from the server (GET_PARAMETER, ANNOUNCE): not our answer
            if headers.get("cseq", [""])[0] not in ("", str(self.cseq)):
                continue  # a late answer to an earlier request
            code, _, phrase = rest.partition(" ")
            if not code.isdigit():
                raise ProbeFailed(f"{method}: malformed status line")
            return Response(int(code), phrase.strip(), headers, body)

    async def frames(self, channel: int, sample: float, track: sdp.Track) -> Measure:
        """Read interleaved RTP for `sample` seconds and count the video frames on `channel`."""
        assert self.reader is not None
        loop = asyncio.get_running_loop()
        measure = Measure()
        first_at = last_ts = first_ts = None
        changes = 0
        try:
            async with asyncio.timeout(sample):
                while True:
                    marker = await self.reader.readexactly(1)
                    if marker != b"$":  # an RTSP message from the server amid the data: read past it
                        await self._message(marker, "PLAY")
                        continue
                    got, length = struct.unpack("!BH", await self.reader.readexactly(3))
                    packet = await self.reader.readexactly(length)
                    if got != channel or len(packet) < 12 or packet[0] >> 6 != 2:
                        continue  # RTCP, or not RTP version 2
                    payload = _payload(packet)
                    timestamp = struct.unpack("!I", packet[4:8])[0]
                    measure.packets += 1
                    measure.payload_bytes += len(payload)
                    if first_at is None:
                        first_at, first_ts = loop.time(), timestamp
                    elif timestamp != last_ts:
                        changes += 1
                    last_ts = timestamp
                    if packet[1] & 0x80:
                        measure.frames += 1
                    if measure.size is None and track.codec == "JPEG" and payload[1:4] == b"\0\0\0":
                        measure.size = sdp.jpeg_size(payload)
        except TimeoutError:
            pass
        except (asyncio.IncompleteReadError, ConnectionError):
            if not measure.packets:
                raise ProbeFailed("connection closed by the camera after PLAY") from None
        except asyncio.LimitOverrunError:
            raise ProbeFailed("PLAY: oversized RTSP message amid the stream") from None
        measure.frames = measure.frames or changes
        if first_at is not None and first_ts is not None and last_ts is not None and changes:
            span = ((last_ts - first_ts) % 2**32) / (track.clock_rate or 90000)
            measure.fps = round(changes / span, 2) if span > 0 else None
            elapsed = loop.time() - first_at
            if elapsed > 0:
                measure.bitrate_kbps = round(measure.payload_bytes * 8 / 1000 / elapsed, 1)
        return measure

    async def close(self, session: str = "") -> None:
        if self.writer is None:
            return
        if session:
            # TEARDOWN without waiting for its answer: the connection closes next, which ends the session anyway.
            with contextlib.suppress(Exception):
                await self._send_only("TEARDOWN", self.url, {"Session": session})
        self.writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await self.writer.wait_closed()

    async def _send_only(self, method: str, url: str, headers: dict[str, str]) -> None:
        assert self.writer is not None
        self._write(method, url, headers)
        async with asyncio.timeout(1.0):
            await self.writer.drain()


def _payload(packet: bytes) -> bytes:
    """The RTP payload (RFC 3550 §5.1): past the CSRC list and header extension, without padding."""
    start = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10 and len(packet) >= start + 4:
        start += 4 + 4 * struct.unpack("!H", packet[start + 2 : start + 4])[0]
    end = len(packet) - (packet[-1] if packet[0] & 0x20 and packet[-1] else 0)
    return packet[start:end] if start < end else b""


def _control(base: str, control: str) -> str:
    if not control or control == "*":
        return base
    if control.lower().startswith("rtsp://"):
        return control
    return urljoin(base if base.endswith("/") else base + "/", control)


async def probe(url: str, *, timeout: float, sample: float) -> StreamFacts:
    """One probe of one camera: what it proved (ok, codec, size, measured fps and bitrate) or why it failed."""
    client = RtspClient(url, timeout)
    session = ""
    track: sdp.Track | None = None
    try:
        await client.connect()
        try:
            await client.request("OPTIONS", client.url)
        except ProbeFailed as exc:
            if "401" in exc.reason or "timeout" in exc.reason or "closed" in exc.reason:
                raise
            # Some cameras answer OPTIONS badly and DESCRIBE well: only DESCRIBE decides.
        described = await client.request("DESCRIBE", client.url, {"Accept": "application/sdp"})
        track = sdp.video(sdp.parse(described.body.decode("utf-8", "replace")))
        if track is None:
            raise ProbeFailed("no video track in the stream description")
        base = described.header("content-base") or described.header("content-location") or client.url
        setup = await client.request("SETUP", _control(base, track.control), {"Transport": TRANSPORT})
        session = setup.header("session").split(";")[0].strip()
        transport = setup.header("transport")
        channel = 0
        for part in transport.split(";"):
            if part.strip().startswith("interleaved="):
                first = part.split("=", 1)[1].split("-")[0]
                channel = int(first) if first.isdigit() else 0
        if "/TCP" not in transport.upper() and transport:
            raise ProbeFailed("the camera refused RTP over TCP")
        await client.request("PLAY", base, {"Session": session, "Range": "npt=0.000-"})
        measure = await client.frames(channel, sample, track)
        if not measure.frames:
            raise ProbeFailed(f"no frames for {sample:g} s")
        width, height = (track.width, track.height) if track.width else (measure.size or (None, None))
        return StreamFacts(
            ok=True, codec=track.codec[:32], width=width, height=height, fps=measure.fps, nominal_fps=track.fps,
            bitrate_kbps=measure.bitrate_kbps,
        )  # fmt: skip
    except ProbeFailed as exc:
        codec = track.codec[:32] if track else ""
        return StreamFacts(ok=False, reason=exc.reason, codec=codec, nominal_fps=track.fps if track else None)
    finally:
        await client.close(session)
