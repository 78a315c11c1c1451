"""Stage 4, view keys: a page's or embed's scope as a value (View), its canonical key, and its stream URLs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, urlencode

from nvrmon.access.embed_tokens import EmbedError, Scope
from nvrmon.filters import ListKind, ListQuery
from nvrmon.incidents import IncidentFilter
from nvrmon.models import Cursor

ViewKind = Literal["dashboard", "nvrs", "cameras", "nvr", "camera", "embed", "incidents", "incident"]
# What a page's stream may ask for; "embed" views are made from an embed token only (View.for_embed).
KINDS: tuple[ViewKind, ...] = ("dashboard", "nvrs", "cameras", "nvr", "camera", "incidents", "incident")
ID_KINDS = ("nvr", "camera", "incident")  # detail views: one record by its numeric id
LIST_KINDS: tuple[ListKind, ...] = ("nvrs", "cameras")
EMBED = "embed:"  # the prefix of every embed view's key


class ViewError(ValueError):
    pass


MAX_PARSED = 1024  # distinct stream URLs remembered by View.parse (emptied when full)
_PARSED: dict[tuple[str | None, str | None], View] = {}


@dataclass(frozen=True, slots=True)
class View:
    """A page's scope. Subscribers with equal keys share every rendered byte.

    List views (nvrs, cameras) carry their normalised filters, sort and page, and the device whose detail modal is
    open (`detail`), so each distinct URL is one view and a stream only gets what its page shows. Embed views carry
    their token's Scope (`embed:kpis`, `embed:nvrs?region=North`, `embed:nvr/12`): every embed of one scope shares
    the bytes, and none shares with a page (whose messages hold toasts and events an embed must not show).
    """

    kind: ViewKind
    id: int = 0
    query: ListQuery | None = None
    detail: int = 0
    embed: Scope | None = None
    incidents: IncidentFilter | None = None  # the /incidents page's filters
    # The key, computed once: every stream's start, subscription and catch-up asks for it.
    _key: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind in LIST_KINDS and self.query is None:
            object.__setattr__(self, "query", ListQuery(self.kind))
        if self.kind == "embed" and self.embed is None:
            raise ViewError("an embed view needs its scope")
        object.__setattr__(self, "_key", self._make_key())

    @property
    def list_query(self) -> ListQuery:
        assert self.query is not None, self.kind
        return self.query

    @property
    def scope(self) -> Scope:
        assert self.embed is not None, self.kind
        return self.embed

    @property
    def ident(self) -> str:
        """The stream URL's `id`: a device id for detail views; for lists, the canonical filter query string."""
        if self.kind in ID_KINDS:
            return str(self.id)
        if self.incidents is not None:
            return urlencode(self.incidents.params())
        if self.query is None:
            return ""
        params = self.query.params()
        if self.detail:
            params["detail"] = str(self.detail)
        return urlencode(params)

    @property
    def key(self) -> str:
        return self._key

    def _make_key(self) -> str:
        if self.embed is not None:
            scope = self.embed
            if scope.view == "nvr":
                return f"{EMBED}nvr/{scope.nvr_id}"
            return f"{EMBED}{scope.view}" + (f"?{urlencode({'region': scope.region})}" if scope.region else "")
        if self.kind in ID_KINDS:
            return f"{self.kind}:{self.id}"
        return f"{self.kind}?{self.ident}" if self.ident else self.kind

    @classmethod
    def parse(cls, kind: str | None, ident: str | None = None) -> View:
        """The view a stream URL (or a key) names. Views are values, so each distinct (kind, ident) is parsed once
        and shared: every stream's start and every view of each publish asks again."""
        found = _PARSED.get((kind, ident))
        if found is None:
            found = cls._parse(kind, ident)
            if ident is None or len(ident) <= 1024:  # (a longer one names no view the parse would keep apart)
                if len(_PARSED) >= MAX_PARSED:
                    _PARSED.clear()
                _PARSED[(kind, ident)] = found
        return found

    @classmethod
    def _parse(cls, kind: str | None, ident: str | None) -> View:
        if kind not in KINDS:
            raise ViewError(f"view must be one of {', '.join(KINDS)}")
        if kind in ID_KINDS:
            if not ident or not ident.isdigit() or len(ident) > 12:
                raise ViewError(f"view '{kind}' needs a numeric id")
            return cls(kind, int(ident))
        if kind == "incidents":
            params = dict(parse_qsl(ident or "")) if ident and len(ident) <= 1024 else {}
            return cls(kind, incidents=IncidentFilter.parse(params))
        if kind == "nvrs" or kind == "cameras":
            params = dict(parse_qsl(ident or "")) if ident and len(ident) <= 1024 else {}
            return cls.for_list(kind, params, detail=params.get("detail", ""))
        return cls(kind)

    @classmethod
    def for_list(cls, kind: ListKind, params: Mapping[str, str], detail: str = "") -> View:
        query = ListQuery.parse(kind, params)
        return cls(kind, query=query, detail=int(detail) if detail.isdigit() and len(detail) < 10 else 0)

    @classmethod
    def for_embed(cls, scope: Scope) -> View:
        return cls("embed", scope.nvr_id or 0, embed=scope)

    @classmethod
    def from_key(cls, key: str) -> View:
        if key.startswith(EMBED):
            return cls._embed_from_key(key.removeprefix(EMBED))
        kind, sep, ident = key.partition("?")
        if not sep:
            kind, _, ident = key.partition(":")
        return cls.parse(kind, ident or None)

    @classmethod
    def _embed_from_key(cls, rest: str) -> View:
        view, sep, ident = rest.partition("/")
        if not sep:
            view, _, ident = rest.partition("?")
        try:
            if view == "nvr":
                if not ident.isdigit() or len(ident) > 16:
                    raise ViewError("embed view 'nvr' needs a numeric id")
                return cls.for_embed(Scope.of(view, nvr_id=int(ident)))
            return cls.for_embed(Scope.of(view, region=dict(parse_qsl(ident)).get("region")))
        except EmbedError as exc:
            raise ViewError(str(exc)) from exc

    def events_url(self, cursor: Cursor) -> str:
        return "/events?" + self._query(cursor)

    def poll_url(self, cursor: Cursor) -> str:
        return "/poll?" + self._query(cursor)

    def _query(self, cursor: Cursor) -> str:
        query: dict[str, str | int] = {"view": self.kind}
        if self.ident:
            query["id"] = self.ident
        query["since"] = str(cursor)
        return urlencode(query)
