"""Alerts, channel addresses: check an Apprise URL before it is kept, and mask its credentials for every display."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlsplit

if TYPE_CHECKING:
    from apprise.plugins.base import NotifyBase

MAX_URL = 2000
# Query parameters that carry a credential in some Apprise services (besides what Apprise masks itself).
SECRET_PARAMS = re.compile(r"(pass|secret|token|key|auth|sig)", re.IGNORECASE)


class UrlError(ValueError):
    """An address Apprise cannot use; the message says why (without repeating the secret)."""


def check(url: str) -> str:
    """The URL as given if Apprise knows its service and can parse it; else UrlError."""
    url = url.strip()
    if not url or len(url) > MAX_URL:
        raise UrlError(f"give an Apprise URL of at most {MAX_URL} characters (e.g. json://host/path, mailto://…)")
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if _instantiate(url) is None:
        raise UrlError(
            f"Apprise cannot use this {scheme + ':// ' if scheme else ''}URL: unknown service or a malformed address "
            "(see https://github.com/caronc/apprise/wiki for each service's URL)"
        )
    return url


def masked(url: str) -> str:
    """The URL with its passwords, tokens and keys masked, for lists, pages and logs."""
    service = _instantiate(url)
    if service is None:
        return _fallback(url)
    shown = str(service.url(privacy=True))  # type: ignore[no-untyped-call]
    # Keys as written: a leading "+" (Apprise's custom HTTP header) is not a space here.
    given = {unquote(pair.split("=", 1)[0]) for pair in urlsplit(url).query.split("&") if pair}
    return _mask_params(_mask_userinfo(shown), given)


def _instantiate(url: str) -> NotifyBase | None:
    """Apprise's parse of a URL, with its log records of this call dropped: "Unparseable URL …" repeats the URL,
    credentials and all, and the caller says what was wrong instead."""
    import apprise  # on first use: a hub that never sees a channel URL doesn't load Apprise and requests (~8 MB)

    quiet = _Drop()
    logger = logging.getLogger("apprise")
    logger.addFilter(quiet)
    try:
        return apprise.Apprise.instantiate(url)
    finally:
        logger.removeFilter(quiet)


class _Drop(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


def _fallback(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}/…"


def _mask_userinfo(url: str) -> str:
    # user:password@ -> user:****@ (Apprise already does this for most services; this covers the rest).
    return re.sub(r"(://[^/@:]*):[^/@]+@", r"\1:****@", url)


def _mask_params(url: str, given: set[str]) -> str:
    base, sep, query = url.partition("?")
    if not sep:
        return url
    # Only the options the URL was given (Apprise spells out all its defaults); credentials among them masked.
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k in given]
    kept = [f"{k}={'****' if SECRET_PARAMS.search(k) and v else v}" for k, v in pairs]
    return f"{base}?{'&'.join(kept)}" if kept else base
