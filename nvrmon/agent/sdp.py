"""Agent side, stream descriptions: the video track of an SDP (RFC 8866) and the picture size its codec tells."""

from __future__ import annotations

import base64
import binascii
import contextlib
from dataclasses import dataclass, field

MAX_SDP = 64 * 1024


@dataclass(frozen=True, slots=True)
class Track:
    media: str  # "video", "audio", …
    payload: int
    codec: str = ""  # from rtpmap, upper case: H264, H265, JPEG, MP4V-ES
    clock_rate: int = 90000
    control: str = ""
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    fmtp: dict[str, str] = field(default_factory=dict)


def parse(text: str) -> list[Track]:
    """Every m= section as a Track; attributes before the first m= (session level) are not a track's."""
    tracks: list[dict[str, object]] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("m="):
            parts = line[2:].split()
            payload = int(parts[3]) if len(parts) > 3 and parts[3].isdigit() else -1
            tracks.append({"media": parts[0] if parts else "", "payload": payload, "fmtp": {}})
        elif line.startswith("a=") and tracks:
            _attribute(tracks[-1], line[2:])
    return [_track(t) for t in tracks]


def video(tracks: list[Track]) -> Track | None:
    return next((t for t in tracks if t.media == "video"), None)


def _attribute(track: dict[str, object], attribute: str) -> None:
    name, _, value = attribute.partition(":")
    value = value.strip()
    if name == "rtpmap":
        payload, _, encoding = value.partition(" ")
        if payload.strip() == str(track["payload"]):
            codec, _, rate = encoding.partition("/")
            track["codec"] = codec.upper()
            track["clock_rate"] = int(rate.split("/")[0]) if rate.split("/")[0].isdigit() else 90000
    elif name == "fmtp":
        _, _, params = value.partition(" ")
        fmtp = track["fmtp"]
        assert isinstance(fmtp, dict)
        for param in params.split(";"):
            key, _, val = param.strip().partition("=")
            if key:
                fmtp[key.lower()] = val.strip()
    elif name == "control":
        track["control"] = value
    elif name == "framerate":
        with contextlib.suppress(ValueError):
            fps = float(value)
            if 0 < fps <= 1000:
                track["fps"] = round(fps, 3)
    elif name == "x-dimensions":
        width, _, height = value.partition(",")
        if width.strip().isdigit() and height.strip().isdigit():
            track["width"], track["height"] = int(width), int(height)


def _track(raw: dict[str, object]) -> Track:
    track = Track(**raw)  # type: ignore[arg-type]
    if track.width is None and track.codec == "H264" and "sprop-parameter-sets" in track.fmtp:
        size = h264_size(track.fmtp["sprop-parameter-sets"])
        if size is not None:
            return Track(**{**raw, "width": size[0], "height": size[1]})  # type: ignore[arg-type]
    return track


def jpeg_size(payload: bytes) -> tuple[int, int] | None:
    """RFC 2435 §3.1: the RTP/JPEG main header carries the picture's width and height in 8-pixel units."""
    if len(payload) < 8 or payload[6] == 0 or payload[7] == 0:
        return None
    return payload[6] * 8, payload[7] * 8


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def bit(self) -> int:
        if self.pos >= len(self.data) * 8:
            raise ValueError("SPS ends early")
        value = self.data[self.pos // 8] >> (7 - self.pos % 8) & 1
        self.pos += 1
        return value

    def bits(self, n: int) -> int:
        value = 0
        for _ in range(n):
            value = value << 1 | self.bit()
        return value

    def ue(self) -> int:  # Exp-Golomb, ITU-T H.264 §9.1
        zeros = 0
        while not self.bit():
            zeros += 1
            if zeros > 31:
                raise ValueError("bad Exp-Golomb code")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        value = self.ue()
        return (value + 1) // 2 if value % 2 else -(value // 2)


HIGH_PROFILES = (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135)


def h264_size(sprop: str) -> tuple[int, int] | None:
    """Width and height from the SPS in sprop-parameter-sets (H.264 §7.3.2.1.1); None when it can't be read."""
    try:
        nal = base64.b64decode(sprop.split(",")[0], validate=False)
    except (binascii.Error, ValueError):
        return None
    if len(nal) < 4 or nal[0] & 0x1F != 7:
        return None
    rbsp = nal[1:].replace(b"\x00\x00\x03", b"\x00\x00")  # emulation prevention bytes
    try:
        bits = _Bits(rbsp)
        profile = bits.bits(8)
        bits.bits(16)  # constraint flags, level
        bits.ue()  # seq_parameter_set_id
        chroma = 1
        if profile in HIGH_PROFILES:
            chroma = bits.ue()
            if chroma == 3:
                bits.bit()
            bits.ue(), bits.ue(), bits.bit()  # bit depths, qpprime_y_zero_transform_bypass
            if bits.bit():
                return None  # scaling matrices: rare on cameras, and not worth parsing for a size
        bits.ue()  # log2_max_frame_num_minus4
        poc_type = bits.ue()
        if poc_type == 0:
            bits.ue()
        elif poc_type == 1:
            bits.bit(), bits.se(), bits.se()
            for _ in range(min(bits.ue(), 255)):
                bits.se()
        bits.ue(), bits.bit()  # max_num_ref_frames, gaps_in_frame_num_allowed
        width_mbs, height_units = bits.ue() + 1, bits.ue() + 1
        frame_mbs_only = bits.bit()
        if not frame_mbs_only:
            bits.bit()
        bits.bit()  # direct_8x8_inference
        crop = [bits.ue() for _ in range(4)] if bits.bit() else [0, 0, 0, 0]
    except ValueError:
        return None
    unit_x = 2 if chroma in (1, 2) else 1
    unit_y = (2 if chroma == 1 else 1) * (2 - frame_mbs_only)
    width = width_mbs * 16 - unit_x * (crop[0] + crop[1])
    height = (2 - frame_mbs_only) * height_units * 16 - unit_y * (crop[2] + crop[3])
    return (width, height) if width > 0 and height > 0 else None
