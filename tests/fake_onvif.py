"""A fake ONVIF device (camera or NVR) for the ONVIF probe's tests: a real HTTP server answering SOAP 1.2.

No ONVIF simulator exists, so this follows what onvif-zeep-async's own tests do (tests/fake_hikvision.py in
openvideolibs/python-onvif-zeep-async): canned SOAP bodies, here shaped from the ONVIF specifications' documented
responses: Core (device service: GetSystemDateAndTime, GetDeviceInformation, GetServices, GetCapabilities), Media
(GetProfiles, GetVideoSources, GetStreamUri), Recording Control (GetRecordings, GetRecordingJobs,
GetRecordingJobState) and Recording Search (GetRecordingSummary, GetRecordingInformation), element names as in the
WSDL/XSD files the library ships. It checks the WS-Security UsernameToken PasswordDigest (Base64(SHA-1(nonce +
created + password))) as ONVIF Core 5.12 requires, and refuses a wrong one with the ter:NotAuthorized fault.
It is not a real device: vendor quirks beyond these shapes are not covered.
"""

from __future__ import annotations

import base64
import hashlib
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

SOAP = "http://www.w3.org/2003/05/soap-envelope"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
NAMESPACES = (
    'xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:tt="http://www.onvif.org/ver10/schema" '
    'xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" '
    'xmlns:trc="http://www.onvif.org/ver10/recording/wsdl" xmlns:tse="http://www.onvif.org/ver10/search/wsdl" '
    'xmlns:ter="http://www.onvif.org/ver10/error"'
)
SERVICES = {
    "device_service": "http://www.onvif.org/ver10/device/wsdl",
    "Media": "http://www.onvif.org/ver10/media/wsdl",
    "Recording": "http://www.onvif.org/ver10/recording/wsdl",
    "Search": "http://www.onvif.org/ver10/search/wsdl",
}
# ONVIF Core, "Access classes": these answer before authentication (a client reads the clock to sign with it).
PRE_AUTH = {"GetSystemDateAndTime", "GetServices", "GetCapabilities", "GetWsdlUrl", "GetHostname"}


def iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class FakeRecording:
    token: str
    source_id: str  # the channel (video source token) it records
    earliest: float
    latest: float
    status: str = "Recording"  # tt:RecordingStatus: Initiated | Recording | Stopped | Removing | Removed | Unknown
    job_state: str = "Active"  # tt:RecordingJobState: Idle | Active | PartiallyActive | Error
    job_mode: str = "Active"  # tt:RecordingJobMode: Idle | Active


@dataclass
class FakeChannel:
    token: str
    name: str
    width: int = 1920
    height: int = 1080
    fps: float = 25.0
    encoding: str = "H264"
    bitrate_kbps: int = 4096


@dataclass
class FakeOnvifDevice:
    username: str = "admin"
    password: str = "correct-password"
    clock_offset_s: float = 0.0  # the device clock runs this far ahead of the host's
    manufacturer: str = "HIKVISION"
    model: str = "DS-2CD2143G2-I"
    firmware: str = "V5.7.3 build 220112"
    serial: str = "DS-2CD2143G2-I20220101AAWRJ12345678"
    recordings: list[FakeRecording] = field(default_factory=list)
    channels: list[FakeChannel] = field(default_factory=list)
    with_recording: bool = True  # GetServices lists the Recording and Search services
    http_401: bool = False  # refuse as HTTP 401 without a body (HTTP-digest devices) instead of the SOAP fault
    fault_on: set[str] = field(default_factory=set)  # operations answered with a receiver fault
    bodies: dict[str, str] = field(default_factory=dict)  # operation -> the SOAP body to answer instead (odd devices)
    operations: list[str] = field(default_factory=list)  # every operation received, in order
    base_url: str = ""

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/onvif/{service}", self.handle, methods=["POST"])])

    async def handle(self, request: Request) -> Response:
        envelope = ET.fromstring(await request.body())
        body = envelope.find(f"{{{SOAP}}}Body")
        operation = body[0].tag.rsplit("}", 1)[-1] if body is not None and len(body) else ""
        self.operations.append(operation)
        if operation not in PRE_AUTH and not self.authorized(envelope):
            if self.http_401:
                return Response(status_code=401, headers={"WWW-Authenticate": 'Digest realm="onvif", nonce="x"'})
            return fault("env:Sender", "ter:NotAuthorized", "Sender not Authorized", status=400)
        if operation in self.fault_on:
            return fault("env:Receiver", "ter:ActionNotSupported", f"{operation} failed", status=500)
        if operation in self.bodies:
            return Response(envelope_of(self.bodies[operation]), media_type="application/soap+xml; charset=utf-8")
        build = getattr(self, f"_{operation}", None)
        if build is None:
            return fault("env:Receiver", "ter:ActionNotSupported", f"Optional Action Not Implemented: {operation}")
        return Response(envelope_of(build(body[0])), media_type="application/soap+xml; charset=utf-8")

    def authorized(self, envelope: ET.Element) -> bool:
        token = envelope.find(f".//{{{WSSE}}}UsernameToken")
        if token is None:
            return False
        username = token.findtext(f"{{{WSSE}}}Username", "")
        digest = token.findtext(f"{{{WSSE}}}Password", "")
        nonce = token.findtext(f"{{{WSSE}}}Nonce", "")
        created = token.findtext(f"{{{WSU}}}Created", "")
        expected = hashlib.sha1(base64.b64decode(nonce) + created.encode() + self.password.encode()).digest()
        return username == self.username and digest == base64.b64encode(expected).decode()

    def now(self) -> float:
        return time.time() + self.clock_offset_s

    # -- device service (ONVIF Core) ------------------------------------------------------------------------
    def _GetSystemDateAndTime(self, _: ET.Element) -> str:
        moment = datetime.fromtimestamp(self.now(), UTC)
        return (
            "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>NTP</tt:DateTimeType>"
            "<tt:DaylightSavings>false</tt:DaylightSavings><tt:TimeZone><tt:TZ>UTC0</tt:TZ></tt:TimeZone>"
            f"<tt:UTCDateTime><tt:Time><tt:Hour>{moment.hour}</tt:Hour><tt:Minute>{moment.minute}</tt:Minute>"
            f"<tt:Second>{moment.second}</tt:Second></tt:Time><tt:Date><tt:Year>{moment.year}</tt:Year>"
            f"<tt:Month>{moment.month}</tt:Month><tt:Day>{moment.day}</tt:Day></tt:Date></tt:UTCDateTime>"
            "</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"
        )

    def _GetDeviceInformation(self, _: ET.Element) -> str:
        return (
            f"<tds:GetDeviceInformationResponse><tds:Manufacturer>{escape(self.manufacturer)}</tds:Manufacturer>"
            f"<tds:Model>{escape(self.model)}</tds:Model><tds:FirmwareVersion>{escape(self.firmware)}"
            f"</tds:FirmwareVersion><tds:SerialNumber>{escape(self.serial)}</tds:SerialNumber>"
            "<tds:HardwareId>88</tds:HardwareId></tds:GetDeviceInformationResponse>"
        )

    def _GetServices(self, _: ET.Element) -> str:
        offered = [name for name in SERVICES if self.with_recording or name not in ("Recording", "Search")]
        entries = "".join(
            f"<tds:Service><tds:Namespace>{SERVICES[name]}</tds:Namespace>"
            f"<tds:XAddr>{self.base_url}/onvif/{name}</tds:XAddr>"
            "<tds:Version><tt:Major>2</tt:Major><tt:Minor>5</tt:Minor></tds:Version></tds:Service>"
            for name in offered
        )
        return f"<tds:GetServicesResponse>{entries}</tds:GetServicesResponse>"

    def _GetCapabilities(self, _: ET.Element) -> str:
        return (
            "<tds:GetCapabilitiesResponse><tds:Capabilities>"
            f"<tt:Device><tt:XAddr>{self.base_url}/onvif/device_service</tt:XAddr></tt:Device>"
            f"<tt:Media><tt:XAddr>{self.base_url}/onvif/Media</tt:XAddr></tt:Media>"
            "</tds:Capabilities></tds:GetCapabilitiesResponse>"
        )

    # -- media service (ONVIF Media, ver10) -----------------------------------------------------------------
    def _GetVideoSources(self, _: ET.Element) -> str:
        sources = "".join(
            f'<trt:VideoSources token="{c.token}"><tt:Framerate>{c.fps}</tt:Framerate>'
            f"<tt:Resolution><tt:Width>{c.width}</tt:Width><tt:Height>{c.height}</tt:Height></tt:Resolution>"
            "</trt:VideoSources>"
            for c in self.channels
        )
        return f"<trt:GetVideoSourcesResponse>{sources}</trt:GetVideoSourcesResponse>"

    def _GetProfiles(self, _: ET.Element) -> str:
        profiles = "".join(
            f'<trt:Profiles token="profile_{c.token}" fixed="true"><tt:Name>{escape(c.name)}</tt:Name>'
            f'<tt:VideoSourceConfiguration token="vsc_{c.token}"><tt:Name>{escape(c.name)}</tt:Name>'
            f"<tt:UseCount>1</tt:UseCount><tt:SourceToken>{c.token}</tt:SourceToken>"
            f'<tt:Bounds x="0" y="0" width="{c.width}" height="{c.height}"/></tt:VideoSourceConfiguration>'
            f'<tt:VideoEncoderConfiguration token="vec_{c.token}"><tt:Name>{escape(c.name)}</tt:Name>'
            f"<tt:UseCount>1</tt:UseCount><tt:Encoding>{c.encoding}</tt:Encoding><tt:Resolution>"
            f"<tt:Width>{c.width}</tt:Width><tt:Height>{c.height}</tt:Height></tt:Resolution>"
            "<tt:Quality>4</tt:Quality><tt:RateControl>"
            f"<tt:FrameRateLimit>{int(c.fps)}</tt:FrameRateLimit><tt:EncodingInterval>1</tt:EncodingInterval>"
            f"<tt:BitrateLimit>{c.bitrate_kbps}</tt:BitrateLimit></tt:RateControl>"
            "<tt:SessionTimeout>PT60S</tt:SessionTimeout></tt:VideoEncoderConfiguration></trt:Profiles>"
            for c in self.channels
        )
        return f"<trt:GetProfilesResponse>{profiles}</trt:GetProfilesResponse>"

    def _GetStreamUri(self, request: ET.Element) -> str:
        profile = request.findtext("{http://www.onvif.org/ver10/media/wsdl}ProfileToken", "")
        channel = profile.removeprefix("profile_")
        return (
            "<trt:GetStreamUriResponse><trt:MediaUri>"
            f"<tt:Uri>rtsp://127.0.0.1:554/Streaming/Channels/{escape(channel)}</tt:Uri>"
            "<tt:InvalidAfterConnect>false</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false</tt:InvalidAfterReboot>"
            "<tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:GetStreamUriResponse>"
        )

    # -- recording control (ONVIF Recording Control Service) -----------------------------------------------
    def _GetRecordings(self, _: ET.Element) -> str:
        items = "".join(
            f"<trc:RecordingItem><tt:RecordingToken>{r.token}</tt:RecordingToken><tt:Configuration><tt:Source>"
            f"<tt:SourceId>{r.source_id}</tt:SourceId><tt:Name>{r.source_id}</tt:Name><tt:Location/>"
            "<tt:Description/><tt:Address/></tt:Source><tt:Content/>"
            "<tt:MaximumRetentionTime>PT0S</tt:MaximumRetentionTime></tt:Configuration><tt:Tracks><tt:Track>"
            "<tt:TrackToken>VIDEO001</tt:TrackToken><tt:Configuration><tt:TrackType>Video</tt:TrackType>"
            "<tt:Description/></tt:Configuration></tt:Track></tt:Tracks></trc:RecordingItem>"
            for r in self.recordings
        )
        return f"<trc:GetRecordingsResponse>{items}</trc:GetRecordingsResponse>"

    def _GetRecordingJobs(self, _: ET.Element) -> str:
        items = "".join(
            f"<trc:JobItem><tt:JobToken>job_{r.token}</tt:JobToken><tt:JobConfiguration>"
            f"<tt:RecordingToken>{r.token}</tt:RecordingToken><tt:Mode>{r.job_mode}</tt:Mode>"
            "<tt:Priority>1</tt:Priority></tt:JobConfiguration></trc:JobItem>"
            for r in self.recordings
        )
        return f"<trc:GetRecordingJobsResponse>{items}</trc:GetRecordingJobsResponse>"

    def _GetRecordingJobState(self, request: ET.Element) -> str:
        job = request.findtext("{http://www.onvif.org/ver10/recording/wsdl}JobToken", "")
        recording = next(r for r in self.recordings if f"job_{r.token}" == job)
        return (
            "<trc:GetRecordingJobStateResponse><trc:State>"
            f"<tt:RecordingToken>{recording.token}</tt:RecordingToken><tt:State>{recording.job_state}</tt:State>"
            "</trc:State></trc:GetRecordingJobStateResponse>"
        )

    # -- recording search (ONVIF Recording Search Service) -------------------------------------------------
    def _GetRecordingSummary(self, _: ET.Element) -> str:
        earliest = min((r.earliest for r in self.recordings), default=self.now())
        latest = max((r.latest for r in self.recordings), default=self.now())
        return (
            f"<tse:GetRecordingSummaryResponse><tse:Summary><tt:DataFrom>{iso(earliest)}</tt:DataFrom>"
            f"<tt:DataUntil>{iso(latest)}</tt:DataUntil><tt:NumberRecordings>{len(self.recordings)}"
            "</tt:NumberRecordings></tse:Summary></tse:GetRecordingSummaryResponse>"
        )

    def _GetRecordingInformation(self, request: ET.Element) -> str:
        token = request.findtext("{http://www.onvif.org/ver10/search/wsdl}RecordingToken", "")
        r = next(r for r in self.recordings if r.token == token)
        return (
            "<tse:GetRecordingInformationResponse><tse:RecordingInformation>"
            f"<tt:RecordingToken>{r.token}</tt:RecordingToken><tt:Source><tt:SourceId>{r.source_id}</tt:SourceId>"
            f"<tt:Name>{r.source_id}</tt:Name><tt:Location/><tt:Description/><tt:Address/></tt:Source>"
            f"<tt:EarliestRecording>{iso(r.earliest)}</tt:EarliestRecording>"
            f"<tt:LatestRecording>{iso(r.latest)}</tt:LatestRecording><tt:Content/>"
            f"<tt:RecordingStatus>{r.status}</tt:RecordingStatus>"
            "</tse:RecordingInformation></tse:GetRecordingInformationResponse>"
        )


def envelope_of(body: str) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><env:Envelope {NAMESPACES}><env:Body>{body}</env:Body></env:Envelope>'
    )


def fault(code: str, subcode: str, reason: str, status: int = 500) -> Response:
    """A SOAP 1.2 fault as ONVIF Core 5.11.2 documents them (code, ter: subcode, reason text)."""
    body = (
        f"<env:Fault><env:Code><env:Value>{code}</env:Value><env:Subcode><env:Value>{subcode}</env:Value>"
        f'</env:Subcode></env:Code><env:Reason><env:Text xml:lang="en">{escape(reason)}</env:Text></env:Reason>'
        "</env:Fault>"
    )
    return Response(envelope_of(body), status_code=status, media_type="application/soap+xml; charset=utf-8")
