"""Stage 7, the API's contract: /api routes declared with their OpenAPI 3.1 description, and the document built of them.

Each web module that serves /api routes declares them as `Operation`s in an `ApiSection` next to its handlers (see
web/api.py) and the application adds `section.routes()`; the document at /api/openapi.json is built from the same
sections, so a route cannot exist without its description (tests/test_openapi.py walks the app to check).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from nvrmon.access.guard import Access, Endpoint, guard
from nvrmon.access.sessions import SESSION_COOKIE

Schema = dict[str, Any]
ERROR_REF = "#/components/responses/Error"
_PATH_PARAM = re.compile(r"{(\w+)(?::(\w+))?}")
STATUS_TEXT = {
    400: "Invalid parameters or body", 401: "No or an invalid session or API token", 403: "Not allowed",
    404: "No such object", 409: "Conflicts with what exists", 422: "Invalid body",
    502: "A peer refused or could not be reached", 503: "The hub's storage is degraded",
}  # fmt: skip


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def query(name: str, schema: Schema, description: str) -> Schema:
    """A query parameter's OpenAPI object."""
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


@dataclass(frozen=True, slots=True)
class Operation:
    """One method on one /api path: its handler, who may call it, and what it takes and returns."""

    method: str
    path: str  # Starlette's form: /api/nvrs/{nvr_id:int}
    endpoint: Endpoint
    access: Access
    summary: str
    response: Schema  # the success body's JSON schema
    parameters: tuple[Schema, ...] = ()
    body: Schema | None = None  # a JSON request body's schema
    errors: tuple[int, ...] = ()  # further error statuses it answers with (401 and 403 come with the access rule)
    status: int = 200
    description: str = ""
    media: tuple[tuple[str, Schema], ...] = ()  # other media types of the success body (a CSV export), by type

    @property
    def openapi_path(self) -> str:
        return _PATH_PARAM.sub(lambda m: "{" + m[1] + "}", self.path)

    def route(self) -> Route:
        return Route(self.path, guard(self.access, self.endpoint, "api"), methods=[self.method])

    def describe(self) -> Schema:
        params = [
            {"name": m[1], "in": "path", "required": True,
             "schema": {"type": "integer", "minimum": 0, "maximum": 2**53} if m[2] == "int" else {"type": "string"}}
            for m in _PATH_PARAM.finditer(self.path)
        ]  # fmt: skip
        statuses = set(self.errors)
        if self.parameters or self.body is not None:
            statuses.add(400)
        if params:
            statuses.add(404)
        if self.access != "public":
            statuses |= {401, 403}
        responses: Schema = {
            str(self.status): {
                "description": "OK",
                "content": {
                    "application/json": {"schema": self.response},
                    **{kind: {"schema": schema} for kind, schema in self.media},
                },
            }
        }
        for status in sorted(statuses):
            responses[str(status)] = {"$ref": ERROR_REF, "description": STATUS_TEXT.get(status, "Error")}
        out: Schema = {
            "operationId": f"{self.method.lower()}_{self.endpoint.__name__}",
            "summary": self.summary,
            "parameters": [*params, *self.parameters],
            "responses": responses,
            # Public routes take a credential optionally ({}): /healthz says more to a logged-in caller.
            "security": [{"session": []}, {"bearer": []}] + ([{}] if self.access == "public" else []),
            "x-nvrmon-access": self.access,
        }
        if self.description:
            out["description"] = self.description
        if self.body is not None:
            out["requestBody"] = {"required": True, "content": {"application/json": {"schema": self.body}}}
        return out


@dataclass(frozen=True, slots=True)
class ApiSection:
    """A web module's share of the API: its operations and the named schemas they refer to."""

    operations: tuple[Operation, ...]
    schemas: Mapping[str, Schema] = field(default_factory=dict)

    def routes(self) -> list[Route]:
        return [operation.route() for operation in self.operations]


ERROR_SCHEMA: Schema = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "string", "description": "machine-readable: not_found, read_only_token, ..."},
                "message": {"type": "string", "description": "for people"},
            },
        }
    },
}


def document(sections: Iterable[ApiSection], *, version: str) -> Schema:
    """The OpenAPI 3.1 document of these sections."""
    paths: dict[str, dict[str, Schema]] = {}
    schemas: dict[str, Schema] = {"Error": ERROR_SCHEMA}
    for section in sections:
        for name, schema in section.schemas.items():
            if schemas.setdefault(name, schema) is not schema:
                raise ValueError(f"two API sections define the schema {name!r}")
        for operation in section.operations:
            item = paths.setdefault(operation.openapi_path, {})
            if operation.method.lower() in item:
                raise ValueError(f"{operation.method} {operation.path} is declared twice")
            item[operation.method.lower()] = operation.describe()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "nvrmon API",
            "version": version,
            "description": "The hub's JSON API. Authenticate with an API token (`Authorization: Bearer nvrapi_…`, "
            "`nvrmon api-token create NAME --scope read|operator`) or a logged-in session cookie. Every error has "
            'the body {"error": {"code": …, "message": …}}. The fleet\'s lists take limit and offset and say their '
            "total.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "responses": {
                "Error": {
                    "description": "An error",
                    "content": {"application/json": {"schema": ref("Error")}},
                }
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "an API token (nvrapi_…)"},
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": SESSION_COOKIE,
                    "description": "a browser session (__Host-nvrmon_session over HTTPS)",
                },
            },  # fmt: skip
        },
    }


def published(sections: Iterable[ApiSection], version: str) -> list[ApiSection]:
    """The sections plus the one serving GET /api/openapi.json, whose document describes all of them and itself."""
    everything = list(sections)
    body: list[Schema] = []  # built at the first request, once every section is known

    async def openapi(request: Request) -> JSONResponse:
        if not body:
            body.append(document(everything, version=version))
        return JSONResponse(body[0], headers={"Cache-Control": "no-cache"})

    spec = Operation(
        "GET", "/api/openapi.json", openapi, "public", "This document (OpenAPI 3.1)",
        {"type": "object", "required": ["openapi", "paths"]},
    )  # fmt: skip
    everything.append(ApiSection((spec,)))
    return everything
