"""Agent side, NVR sources over HTTP: one bounded client per poll (timeout, size limit, no proxy) and its failures
in words."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from nvrmon.agent.sources import SourceConfig
from nvrmon.agent.sources.reasons import SourceError, clean, connection_reason


def credentials(config: SourceConfig) -> tuple[str, str, str]:
    """(base URL without userinfo, username, password): credentials may come in the URL or beside it."""
    parts = urlsplit(config.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SourceError(f"{config.kind}: url must be http:// or https://host")
    username = config.username or unquote(parts.username or "")
    password = config.password or unquote(parts.password or "")
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", "")), username, password


def client(config: SourceConfig, timeout: float, auth: httpx.Auth | None = None) -> httpx.AsyncClient:
    base, _, _ = credentials(config)
    # trust_env=False: a proxy set for the internet must not carry LAN device traffic (or its credentials).
    return httpx.AsyncClient(
        base_url=base, timeout=httpx.Timeout(timeout), verify=config.verify_tls, auth=auth,
        follow_redirects=False, trust_env=False, headers={"Accept": "application/json, application/xml"},
    )  # fmt: skip


async def fetch(
    http: httpx.AsyncClient, config: SourceConfig, method: str, path: str, **kwargs: Any
) -> tuple[int, bytes]:
    """(status, body) of one request, the body read only up to config.max_response_bytes; transport failures and
    refused credentials raise SourceError with the reason in words."""
    label = config.kind
    try:
        async with http.stream(method, path, **kwargs) as response:
            if response.status_code == 401:  # 403 is left to the caller: ISAPI says "notSupport" with it
                raise SourceError(f"{label} 401 unauthorized")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > config.max_response_bytes:
                    raise SourceError(f"{label}: response over {config.max_response_bytes} bytes")
            return response.status_code, bytes(body)
    except httpx.TimeoutException as error:
        raise SourceError(f"{label} timeout") from error
    except httpx.TransportError as error:
        _, _, password = credentials(config)
        reason = connection_reason(error) or clean(f"{label}: {type(error).__name__} {error}", [password])
        raise SourceError(reason) from error


async def get_json(http: httpx.AsyncClient, config: SourceConfig, path: str, **kwargs: Any) -> Any:
    status, body = await fetch(http, config, "GET", path, **kwargs)
    if status != 200:
        raise SourceError(f"{config.kind} http {status} on {path.split('?')[0]}")
    try:
        return json.loads(body)
    except ValueError as error:
        raise SourceError(f"{config.kind}: unreadable answer on {path.split('?')[0]}") from error


async def get_xml(http: httpx.AsyncClient, config: SourceConfig, path: str) -> ET.Element:
    """An XML answer, namespaces stripped from the tags (ISAPI answers in a versioned namespace)."""
    status, body = await fetch(http, config, "GET", path)
    if status != 200:
        raise SourceError(f"{config.kind} http {status} on {path}")
    try:
        # expat refuses entity amplification (billion laughs) since 2.4.1; ElementTree fetches no external entity.
        root = ET.fromstring(body)
    except ET.ParseError as error:
        raise SourceError(f"{config.kind}: unreadable answer on {path}") from error
    for element in root.iter():
        element.tag = element.tag.rpartition("}")[2]
    return root


def number(value: object) -> float | None:
    """A device's number that may arrive as a string ("10.00"), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None
