"""Access, embed tokens: what a read-only embed may show (Scope), for which origins, for how long, and its shape.

An embed token is a bearer capability in a URL (`/embed/<token>`): whoever sees the portal's page source can read the
scoped view, nothing else, until it expires or is revoked. See docs/embedding.md.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from nvrmon import protocol
from nvrmon.access.agent_tokens import hash_token
from nvrmon.models import Nvr
from nvrmon.store.credentials import Credentials, EmbedToken, EmbedView

VIEWS: tuple[EmbedView, ...] = ("kpis", "nvrs", "nvr")
MAX_TTL = 365 * 86400.0
MAX_ORIGINS = 16
TOKEN_SHAPE = re.compile(r"emb_[A-Za-z0-9_-]{40,48}")


class EmbedError(ValueError):
    """An embed token that can't be created as asked; the message is meant for the admin."""


@dataclass(frozen=True, slots=True)
class Scope:
    """What one embed token may show. New filters (a region for the KPIs, a site…) become fields here, checked in
    `of` and applied in `shows`; the view code asks only these two."""

    view: EmbedView
    nvr_id: int | None = None
    region: str | None = None

    @classmethod
    def of(cls, view: str, *, nvr_id: int | None = None, region: str | None = None) -> Scope:
        for known in VIEWS:
            if view == known:
                break
        else:
            raise EmbedError(f"view must be one of {', '.join(VIEWS)}")
        if (known == "nvr") != (nvr_id is not None):
            raise EmbedError("view nvr needs --nvr ID; the other views take no NVR")
        if nvr_id is not None and not 0 < nvr_id < 2**53:
            raise EmbedError("--nvr must be an NVR id")
        if region is not None:
            if known != "nvrs":
                raise EmbedError("--region applies to the nvrs view only")
            region = region.strip()
            if not region or len(region) > protocol.MAX_TEXT or not protocol.printable(region):
                raise EmbedError(f"--region is 1 to {protocol.MAX_TEXT} printable characters")
        return cls(known, nvr_id, region)

    @classmethod
    def of_token(cls, token: EmbedToken) -> Scope:
        return cls(token.view, token.nvr_id, token.region)

    def describe(self) -> str:
        if self.view == "nvr":
            return f"nvr {self.nvr_id}"
        return f"nvrs in region {self.region}" if self.region is not None else self.view

    def shows(self, nvr: Nvr) -> bool:
        return self.region is None or nvr.region == self.region


def check_origins(origins: Iterable[str]) -> list[str]:
    """Exact origins (scheme://host[:port]); no wildcard: a token is framed or read by the portals named, no others."""
    clean: list[str] = []
    for raw in origins:
        origin = raw.strip().rstrip("/")
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname or "*" in origin:
            raise EmbedError(f"{raw!r} is not an origin such as https://portal.example.com")
        if parts.path or parts.query or parts.fragment or parts.username or parts.password:
            raise EmbedError(f"{raw!r}: an origin has no path, query or credentials")
        normal = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        if normal not in clean:
            clean.append(normal)
    if len(clean) > MAX_ORIGINS:
        raise EmbedError(f"at most {MAX_ORIGINS} origins per token")
    return clean


async def create(
    credentials: Credentials, scope: Scope, *, origins: Iterable[str], ttl: float, label: str, created_by: str
) -> tuple[str, int]:
    """A new embed token; returns (token, id). The token is shown once: only its hash is kept."""
    allowed = check_origins(origins)
    if not 0 < ttl <= MAX_TTL:
        raise EmbedError("an embed token lives at most 365 days")
    label = label.strip()
    if len(label) > protocol.MAX_TEXT or not protocol.printable(label):
        raise EmbedError(f"a label is at most {protocol.MAX_TEXT} printable characters")
    token = "emb_" + secrets.token_urlsafe(32)
    now = time.time()
    embed_id = await credentials.add_embed(
        hash_token(token), token[:8], scope.view, nvr_id=scope.nvr_id, region=scope.region, origins=allowed,
        label=label, now=now, expires=now + ttl, created_by=created_by,
    )  # fmt: skip
    return token, embed_id


async def usable(credentials: Credentials, raw: str, now: float | None = None) -> EmbedToken | None:
    """The embed token a URL carries, if it has the right shape, exists, and is neither revoked nor expired."""
    if not TOKEN_SHAPE.fullmatch(raw):
        return None
    found = await credentials.embed(hash_token(raw))
    return found if found is not None and found.usable(time.time() if now is None else now) else None
