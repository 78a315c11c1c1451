"""The RTSP probe against a real RTSP server (gst-rtsp-server): codec, size and fps measured, reasons in words."""

from __future__ import annotations

import time

import pytest

from nvrmon.agent import sdp
from nvrmon.agent.rtsp import probe
from nvrmon.agent.rtsp_auth import Challenge, Credentials, choose, parse_challenges
from tests.fake_http import closed_port, silent_port
from tests.rtsp import PASSWORD, USER, RtspServer

pytestmark = pytest.mark.anyio


async def test_probe_good_stream_measures_codec_size_and_fps(rtsp_server: RtspServer) -> None:
    facts = await probe(rtsp_server.url("/open"), timeout=3, sample=1.5)
    assert facts.ok and facts.reason == ""
    assert (facts.codec, facts.width, facts.height, facts.nominal_fps) == ("JPEG", 320, 240, 10)
    assert facts.fps is not None and 8 <= facts.fps <= 12  # measured from the RTP timestamps of the frames
    assert facts.bitrate_kbps is not None and facts.bitrate_kbps > 10


async def test_probe_h264_stream_reads_its_size_from_the_sps(rtsp_server: RtspServer) -> None:
    facts = await probe(rtsp_server.url("/h264"), timeout=3, sample=1.5)
    assert facts.ok and (facts.codec, facts.width, facts.height) == ("H264", 320, 240)


async def test_probe_digest_and_basic_credentials_play_the_secure_stream(rtsp_server: RtspServer) -> None:
    # gst-rtsp-server's Digest has no qop (the RFC 2069 form); the qop=auth form is checked by RFC 2617's example.
    digest = await probe(rtsp_server.url("/secure", user=USER, password=PASSWORD), timeout=3, sample=1)
    basic = await probe(rtsp_server.url("/secure", user=USER, password=PASSWORD, basic=True), timeout=3, sample=1)
    assert digest.ok and digest.codec == "JPEG", digest
    assert basic.ok and basic.codec == "JPEG", basic


async def test_probe_wrong_or_missing_password_is_401(rtsp_server: RtspServer) -> None:
    for url in (rtsp_server.url("/secure", user=USER, password="wrong"),
                rtsp_server.url("/secure", user=USER, password="wrong", basic=True),
                rtsp_server.url("/secure")):  # fmt: skip
        facts = await probe(url, timeout=3, sample=1)
        assert not facts.ok and facts.reason == "rtsp 401 unauthorized", (url, facts)


async def test_probe_unknown_path_says_404(rtsp_server: RtspServer) -> None:
    facts = await probe(rtsp_server.url("/nothing"), timeout=3, sample=1)
    assert facts.reason == "rtsp 404 not found"


async def test_probe_nothing_listening_is_connection_refused() -> None:
    facts = await probe(f"rtsp://127.0.0.1:{closed_port()}/stream1", timeout=3, sample=1)
    assert not facts.ok and facts.reason == "connection refused"


async def test_probe_camera_that_never_answers_times_out_in_its_limit() -> None:
    started = time.monotonic()
    with silent_port() as port:
        facts = await probe(f"rtsp://127.0.0.1:{port}/stream1", timeout=1, sample=1)
    assert facts.reason == "OPTIONS timeout" and time.monotonic() - started < 2


async def test_probe_stopped_source_says_no_frames_and_recovers(rtsp_server: RtspServer) -> None:
    rtsp_server.stop_source()
    stopped = await probe(rtsp_server.url("/open"), timeout=3, sample=1)
    assert not stopped.ok and stopped.reason == "no frames for 1 s" and stopped.codec == "JPEG"
    rtsp_server.start_source()
    assert (await probe(rtsp_server.url("/open"), timeout=3, sample=1)).ok


def test_digest_answer_matches_rfc_2617_example() -> None:
    # RFC 2617 §3.5: the documented request for /dir/index.html and its response digest.
    offered = (
        'Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    challenge = parse_challenges([offered])[0]
    header = Credentials("Mufasa", "Circle Of Life").authorization(challenge, "GET", "/dir/index.html", "0a4f113b")
    assert 'response="6629fae49393a05397450978507c4ef1"' in header and "nc=00000001" in header
    assert 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in header


def test_sdp_reads_x_dimensions_and_framerate() -> None:
    text = "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H265/90000\r\na=x-dimensions:1920,1080\r\na=framerate:25\r\n"
    track = sdp.video(sdp.parse(text))
    assert track is not None and (track.codec, track.width, track.height, track.fps) == ("H265", 1920, 1080, 25)


def test_digest_is_chosen_over_basic_when_a_camera_offers_both() -> None:
    offered = [
        'Basic realm="cam"',
        'Digest realm="cam", nonce="abc", algorithm=MD5',
        'Digest realm="x", algorithm=SHA-512',
    ]
    chosen = choose(parse_challenges(offered))
    assert chosen is not None and chosen.scheme == "digest" and chosen.params["nonce"] == "abc"
    assert choose(parse_challenges(['Digest realm="x", nonce="n", algorithm=SHA-512-256', 'Basic realm="x"'])) == (
        Challenge("basic", {"realm": "x"})
    )  # a digest algorithm it can't compute: Basic, rather than a certain 401
