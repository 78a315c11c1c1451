"""Agent side, one ONVIF device session: onvif-zeep-async's services for a device, each call bounded by a timeout,
its failures in words (ProbeFailure reasons), and the device clock read without credentials."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from nvrmon.agent.sources.reasons import SourceError, clean, connection_reason

NOT_INSTALLED = "onvif support not installed"
# ONVIF service name (onvif.definition.SERVICES) -> the namespace GetServices lists it under.
NAMESPACES = {
    "devicemgmt": "http://www.onvif.org/ver10/device/wsdl",
    "media": "http://www.onvif.org/ver10/media/wsdl",
    "recording": "http://www.onvif.org/ver10/recording/wsdl",
    "search": "http://www.onvif.org/ver10/search/wsdl",
}
# Fault subcodes that mean the credentials were refused: ONVIF Core's ter:NotAuthorized, WS-Security's own.
REFUSED = {"NotAuthorized", "FailedAuthentication", "InvalidSecurityToken", "InvalidSecurity"}


class OnvifSession:
    """Services of one device at `url` (http://user:pass@host:port), created on first use and closed on exit.

    It builds onvif-zeep-async's ONVIFService objects directly rather than ONVIFCamera, whose constructor removes
    http_proxy/https_proxy from the whole process's environment."""

    def __init__(self, url: str, *, timeout: float, username: str = "", password: str = "") -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SourceError("onvif: url must be http://user:pass@host:port")
        self.base = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        self.username = username or unquote(parts.username or "")
        self.password = password or unquote(parts.password or "")
        self.timeout = timeout
        self.clock_skew_s: float | None = None  # signs WS-Security timestamps in the device's time once known
        self.xaddrs: dict[str, str] = {"devicemgmt": f"{self.base}/onvif/device_service"}
        self._services: dict[str, Any] = {}
        # Concurrent calls (an NVR's channels) share one service each: the first creates it, the others wait for
        # its setup instead of calling a half-built one.
        self._creating = asyncio.Lock()

    async def __aenter__(self) -> OnvifSession:
        return self

    async def __aexit__(self, *_: object) -> None:
        for service in self._services.values():
            await service.close()
        self._services.clear()

    def offers(self, name: str) -> bool:
        return name in self.xaddrs

    async def call(self, service_name: str, operation: str, params: dict[str, Any] | None = None) -> Any:
        """One SOAP call with credentials, bounded by the timeout; SourceError carries the reason in words."""
        return await self._call(service_name, operation, params)

    async def read_clock(self) -> float:
        """Device clock minus ours, in seconds: GetSystemDateAndTime answers before authentication (ONVIF Core),
        so it is known even when the credentials are wrong. Measured against the middle of the round trip."""
        sent = time.time()
        answer = await self._call("devicemgmt", "authless_GetSystemDateAndTime", None)
        received = time.time()
        try:
            moment = answer.UTCDateTime
            device = datetime(
                moment.Date.Year, moment.Date.Month, moment.Date.Day,
                moment.Time.Hour, moment.Time.Minute, moment.Time.Second, tzinfo=UTC,
            ).timestamp()  # fmt: skip
        except (AttributeError, TypeError, ValueError, OverflowError) as error:
            raise SourceError("onvif: unreadable clock") from error
        self.clock_skew_s = round(device - (sent + received) / 2, 1)
        return self.clock_skew_s

    async def discover(self) -> None:
        """The device's service addresses: GetServices, or GetCapabilities on devices older than GetServices."""
        try:
            services = await self.call("devicemgmt", "GetServices", {"IncludeCapability": False})
        except SourceError as error:
            if error.reason in ("onvif timeout", "onvif 401 unauthorized"):
                raise
            await self._discover_capabilities()
            return
        by_namespace = {ns: name for name, ns in NAMESPACES.items()}
        for service in services or []:
            self._found(by_namespace.get(str(getattr(service, "Namespace", ""))), getattr(service, "XAddr", None))

    async def _discover_capabilities(self) -> None:
        capabilities = await self.call("devicemgmt", "GetCapabilities", {"Category": "All"})
        extension = getattr(capabilities, "Extension", None)
        self._found("media", getattr(getattr(capabilities, "Media", None), "XAddr", None))
        for name, element in (("recording", "Recording"), ("search", "Search")):
            self._found(name, getattr(getattr(extension, element, None), "XAddr", None))

    def _found(self, name: str | None, xaddr: object) -> None:
        if name and isinstance(xaddr, str) and xaddr.startswith(("http://", "https://")):
            self.xaddrs[name] = xaddr

    async def _call(self, service_name: str, operation: str, params: dict[str, Any] | None) -> Any:
        try:
            async with asyncio.timeout(self.timeout):
                service = await self._service(service_name)
                return await getattr(service, operation)(params)
        except TimeoutError as error:
            raise SourceError("onvif timeout") from error
        except SourceError:
            raise
        except Exception as error:  # the library wraps everything in ONVIFError; the cause tells what happened
            raise SourceError(reason_for(error, self.password)) from error

    async def _service(self, name: str) -> Any:
        async with self._creating:
            if name not in self._services:
                await self._create(name)
        return self._services[name]

    async def _create(self, name: str) -> None:
        try:
            import onvif  # type: ignore[import-untyped, import-not-found, unused-ignore]
            from onvif.client import ONVIFService  # type: ignore[import-untyped, import-not-found, unused-ignore]
            from onvif.definition import SERVICES  # type: ignore[import-untyped, import-not-found, unused-ignore]
        except ImportError as error:
            raise SourceError(NOT_INSTALLED) from error
        if name not in self.xaddrs:
            raise SourceError(f"onvif: device offers no {name} service")
        definition = SERVICES[name]
        wsdl = Path(onvif.__file__).parent / "wsdl" / definition["wsdl"]  # shipped with the package: read locally
        service = ONVIFService(
            self.xaddrs[name], self.username or None, self.password or None, str(wsdl),
            encrypt=True,  # WS-Security PasswordDigest, never the password in clear text
            no_cache=True,  # the WSDLs are the package's own files: no zeep cache file in the user's home
            dt_diff=timedelta(seconds=self.clock_skew_s) if self.clock_skew_s else None,
            binding_name=f"{{{definition['ns']}}}{definition['binding']}",
            binding_key=(name, None),
        )  # fmt: skip
        try:
            await service.setup()
        except BaseException:
            await service.close()
            raise
        self._services[name] = service


def reason_for(error: BaseException, password: str = "") -> str:
    """The words for a failed ONVIF call, from the innermost cause the library kept."""
    from zeep.exceptions import Fault, TransportError, XMLSyntaxError

    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for cause in chain:
        if isinstance(cause, TimeoutError):
            return "onvif timeout"
        if isinstance(cause, Fault):
            subcodes = {str(getattr(code, "localname", code)).rpartition(":")[2] for code in cause.subcodes or ()}
            code = str(cause.code or "").rpartition(":")[2]
            if subcodes & REFUSED or code in REFUSED or "not authorized" in str(cause.message).lower():
                return "onvif 401 unauthorized"
            return clean(f"onvif fault: {cause.message or code or 'unknown'}", [password])
        if isinstance(cause, TransportError):
            if cause.status_code == 401:
                return "onvif 401 unauthorized"
            return f"onvif http {cause.status_code}" if cause.status_code else "onvif: no answer"
        if isinstance(cause, XMLSyntaxError):
            return "onvif: unreadable answer"
    return connection_reason(error) or clean(f"onvif error: {type(chain[-1]).__name__}", [password])
