"""Fake NVR HTTP APIs (Frigate, ZoneMinder, Hikvision ISAPI) for the source pollers' tests, served for real on
127.0.0.1 by tests/fake_http.py.

None of these products can run here, so each fake serves responses shaped like the product's documented ones,
from the fixture files in tests/fixtures/ (tests/fixtures/README.md says where each shape comes from), and lets a
test change them (a camera down, a disk full or failed, credentials refused). They are not the real products:
behaviour beyond these documented shapes is not covered.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import secrets
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@dataclass
class FakeFrigate:
    """Frigate 0.14's API (docs.frigate.video/integrations/api): /api/stats, /api/config, and /api/login on the
    authenticated port (8971), which answers a JWT cookie `frigate_token`."""

    stats: dict[str, Any] = field(default_factory=lambda: fixture("frigate_stats.json"))
    config: dict[str, Any] = field(default_factory=lambda: fixture("frigate_config.json"))
    username: str = ""  # set: every API call needs the cookie from /api/login
    password: str = ""
    token: str = field(default_factory=lambda: secrets.token_hex(8))

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/login", self.login, methods=["POST"]),
                Route("/api/stats", self.serve("stats")),
                Route("/api/config", self.serve("config")),
            ]
        )

    async def login(self, request: Request) -> Response:
        body = await request.json()
        if body.get("user") != self.username or body.get("password") != self.password:
            return JSONResponse({"message": "Login failed", "success": False}, status_code=401)
        response = JSONResponse({})
        response.set_cookie("frigate_token", self.token, httponly=True)
        return response

    def serve(self, name: str) -> Any:
        async def endpoint(request: Request) -> Response:
            if self.username and request.cookies.get("frigate_token") != self.token:
                return JSONResponse({"message": "Unauthorized", "success": False}, status_code=401)
            return JSONResponse(copy.deepcopy(getattr(self, name)))

        return endpoint


@dataclass
class FakeZoneMinder:
    """ZoneMinder 1.36's API (zoneminder.readthedocs.io, "API"; web/api/app/Controller/HostController.php and
    StorageController.php): token login, daemonCheck, monitors with Monitor_Status, storage areas, getDiskPercent."""

    monitors: dict[str, Any] = field(default_factory=lambda: fixture("zoneminder_monitors.json"))
    storage: dict[str, Any] | None = field(default_factory=lambda: fixture("zoneminder_storage.json"))
    disk_percent: dict[str, Any] = field(default_factory=lambda: fixture("zoneminder_diskpercent.json"))
    daemon_running: bool = True
    username: str = ""
    password: str = ""
    token: str = field(default_factory=lambda: secrets.token_hex(16))

    def app(self) -> Starlette:
        # ZoneMinder's web root is /zm (its API at /zm/api), as its packages install it.
        routes = [
            Route("/api/host/login.json", self.login, methods=["POST"]),
            Route("/api/host/daemonCheck.json", self.guarded(lambda: {"result": int(self.daemon_running)})),
            Route("/api/monitors.json", self.guarded(lambda: self.monitors)),
            Route("/api/storage.json", self.guarded(lambda: self.storage)),
            Route("/api/host/getDiskPercent.json", self.guarded(lambda: self.disk_percent)),
        ]
        return Starlette(routes=[Mount("/zm", routes=routes)])

    async def login(self, request: Request) -> Response:
        form = dict(urllib.parse.parse_qsl((await request.body()).decode()))  # no python-multipart here
        if form.get("user") != self.username or form.get("pass") != self.password:
            name = f'Login denied for user "{form.get("user")}"'
            return JSONResponse({"success": False, "data": {"name": name, "message": name}}, status_code=401)
        return JSONResponse(
            {"access_token": self.token, "access_token_expires": 7200, "refresh_token": secrets.token_hex(16),
             "refresh_token_expires": 86400, "version": "1.36.33", "apiversion": "2.0"}
        )  # fmt: skip

    def guarded(self, answer: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            if self.username and request.query_params.get("token") != self.token:
                return JSONResponse({"success": False, "data": {"name": "Not Authenticated"}}, status_code=401)
            body = answer()
            if body is None:
                return JSONResponse({"success": False, "data": {"name": "Not Found"}}, status_code=404)
            return JSONResponse(copy.deepcopy(body))

        return endpoint


@dataclass
class FakeHikvision:
    """A Hikvision NVR's ISAPI (Hikvision "ISAPI Core Protocol" / "Intelligent Security API" documentation, the
    XML shapes of /ISAPI/System/deviceInfo, /ISAPI/System/time, /ISAPI/ContentMgmt/Storage and
    /ISAPI/ContentMgmt/InputProxy/channels[/status]) behind HTTP Digest authentication (RFC 7616, MD5, qop=auth)."""

    username: str = "admin"
    password: str = "hik-password"
    time_offset_s: float = 0.0
    documents: dict[str, str | None] = field(default_factory=dict)  # path -> XML (None: unsupported), else fixtures
    realm: str = "DS-7608NI-K2"
    nonces: set[str] = field(default_factory=set)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/ISAPI/{path:path}", self.endpoint)])

    def document(self, path: str) -> str | None:
        if path in self.documents:  # an override; None makes the path unsupported (403 notSupport)
            return self.documents[path]
        name = "hikvision_" + path.removeprefix("/ISAPI/").replace("/", "_").lower() + ".xml"
        file = FIXTURES / name
        return file.read_text() if file.exists() else None

    async def endpoint(self, request: Request) -> Response:
        if not self.authorized(request):
            nonce = secrets.token_hex(16)
            self.nonces.add(nonce)
            challenge = f'Digest realm="{self.realm}", qop="auth", nonce="{nonce}", stale="FALSE"'
            return Response(status_code=401, headers={"WWW-Authenticate": challenge})
        path = request.url.path
        if path == "/ISAPI/System/time":
            return xml(self.time_document())
        body = self.document(path)
        if body is None:
            return xml(status_document(path, 4, "Invalid Operation", "notSupport"), status=403)
        return xml(body)

    def time_document(self) -> str:
        moment = datetime.fromtimestamp(time.time() + self.time_offset_s, UTC)
        return (
            '<?xml version="1.0" encoding="UTF-8"?><Time version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">'
            f"<timeMode>NTP</timeMode><localTime>{moment.strftime('%Y-%m-%dT%H:%M:%S')}+00:00</localTime>"
            "<timeZone>CST+0:00:00</timeZone></Time>"
        )

    def authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Digest "):
            return False
        fields = dict(re.findall(r'(\w+)="?([^",]*)"?', header[7:]))
        if fields.get("nonce") not in self.nonces or fields.get("username") != self.username:
            return False

        def md5(text: str) -> str:
            return hashlib.md5(text.encode()).hexdigest()

        ha1 = md5(f"{self.username}:{self.realm}:{self.password}")
        ha2 = md5(f"{request.method}:{fields.get('uri', '')}")
        expected = md5(f"{ha1}:{fields['nonce']}:{fields.get('nc', '')}:{fields.get('cnonce', '')}:auth:{ha2}")
        return fields.get("response") == expected


def status_document(path: str, code: int, text: str, sub: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><ResponseStatus version="2.0" '
        f'xmlns="http://www.hikvision.com/ver20/XMLSchema"><requestURL>{path}</requestURL>'
        f"<statusCode>{code}</statusCode><statusString>{text}</statusString><subStatusCode>{sub}</subStatusCode>"
        "</ResponseStatus>"
    )


def xml(body: str, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="application/xml")
