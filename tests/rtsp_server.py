"""Test peer, a real RTSP server: Debian's gst-rtsp-server, run by /usr/bin/python3 (where `gi` imports).

Serves 320x240 test video at 10 fps on 127.0.0.1: MJPEG at `/open` to anyone and at `/secure` only with user `viewer`
and password `s3cret`, H.264 (openh264) at `/h264` to anyone,
on two servers: PORT answers with Digest (RFC 2617 MD5; gst-rtsp-server 1.22) and BASIC_PORT with Basic. Prints
`READY <port> <basic_port>` once listening. Standard input controls the source while the servers stay up:
`stop` drops every frame (the camera still answers RTSP, as a frozen encoder does), `start` lets them flow again;
each gets `ok` back. Exits when standard input closes.

    /usr/bin/python3 tests/rtsp_server.py [PORT [BASIC_PORT]]   (0: a free port)
"""

from __future__ import annotations

import sys
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

USER, PASSWORD = "viewer", "s3cret"
# format=I420 matters: without it the caps never settle and DESCRIBE hangs (field notes).
RAW = "videotestsrc is-live=true ! video/x-raw,format=I420,width=320,height=240,framerate=10/1"
PIPELINES = {  # the gate drops every frame while the source is stopped (events still pass: DESCRIBE still works)
    "jpeg": f"( {RAW} ! jpegenc quality=50 ! identity name=gate ! rtpjpegpay name=pay0 pt=26 )",
    "h264": f"( {RAW} ! openh264enc ! identity name=gate ! rtph264pay name=pay0 pt=96 config-interval=1 )",
}


class Gate:
    """Whether frames flow, applied to every media pipeline the servers made, now and later."""

    def __init__(self) -> None:
        self.stopped = False
        self.media: list[GstRtspServer.RTSPMedia] = []
        self.lock = threading.Lock()

    def configure(self, _factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia) -> None:
        with self.lock:
            self.media.append(media)
        self.apply(media)

    def apply(self, media: GstRtspServer.RTSPMedia) -> None:
        gate = media.get_element().get_by_name("gate")
        if gate is not None:
            gate.set_property("drop-probability", 1.0 if self.stopped else 0.0)

    def set(self, stopped: bool) -> bool:
        self.stopped = stopped
        with self.lock:
            for media in self.media:
                self.apply(media)
        return False


def factory(gate: Gate, roles: dict[str, bool], codec: str = "jpeg") -> GstRtspServer.RTSPMediaFactory:
    """`roles`: role -> may it play the stream. A role that may not still sees the mount (ACCESS), so it gets
    401 asking for credentials rather than 404 (gst-rtsp-server's rtsp-auth.c check_factory)."""
    made = GstRtspServer.RTSPMediaFactory()
    made.set_launch(PIPELINES[codec])
    made.set_shared(False)  # one pipeline per client, as cameras serve each session its own stream
    made.connect("media-configure", gate.configure)
    for role, plays in roles.items():
        text = f"{role}, media.factory.access=(boolean)true, media.factory.construct=(boolean){str(plays).lower()}"
        made.add_role_from_structure(Gst.Structure.from_string(text)[0])
    return made


def server(gate: Gate, port: int, method: GstRtsp.RTSPAuthMethod) -> GstRtspServer.RTSPServer:
    made = GstRtspServer.RTSPServer()
    made.set_address("127.0.0.1")
    made.set_service(str(port))
    auth = GstRtspServer.RTSPAuth()
    auth.set_supported_methods(method)
    viewer = GstRtspServer.RTSPToken()
    viewer.set_string("media.factory.role", "viewer")
    if method == GstRtsp.RTSPAuthMethod.DIGEST:
        auth.add_digest(USER, PASSWORD, viewer)
    else:
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(USER, PASSWORD), viewer)
    anonymous = GstRtspServer.RTSPToken()
    anonymous.set_string("media.factory.role", "anonymous")
    auth.set_default_token(anonymous)
    made.set_auth(auth)
    mounts = made.get_mount_points()
    mounts.add_factory("/open", factory(gate, {"anonymous": True, "viewer": True}))
    mounts.add_factory("/secure", factory(gate, {"anonymous": False, "viewer": True}))
    mounts.add_factory("/h264", factory(gate, {"anonymous": True, "viewer": True}, "h264"))
    made.attach(None)
    return made


def main() -> None:
    Gst.init(None)
    ports = [int(arg) for arg in sys.argv[1:3]] + [0, 0]
    gate = Gate()
    digest = server(gate, ports[0], GstRtsp.RTSPAuthMethod.DIGEST)
    basic = server(gate, ports[1], GstRtsp.RTSPAuthMethod.BASIC)
    loop = GLib.MainLoop()

    def control() -> None:
        for line in sys.stdin:
            command = line.strip()
            if command in ("stop", "start"):
                GLib.idle_add(gate.set, command == "stop")
                print("ok", flush=True)
        GLib.idle_add(loop.quit)

    threading.Thread(target=control, daemon=True).start()
    print(f"READY {digest.get_bound_port()} {basic.get_bound_port()}", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
