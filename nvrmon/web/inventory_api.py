"""Stage 7, the fleet's write endpoints (operator role): declare, edit and decommission NVRs and cameras over JSON.

Who may write is checked before anything else: each route is wrapped in `guard("operator", …, "api")` (the role,
then CSRF for a browser session), so a refused caller never gets the body parsed or an id looked up. The edits go
through the hub's single writer, so their seqs are in commit order and open pages update live.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from nvrmon import inventory as inv
from nvrmon.access import audit
from nvrmon.access.audit import actor_of, client_address
from nvrmon.access.guard import api_error
from nvrmon.access.sessions import Auth, Identity
from nvrmon.inventory import CameraDecl, InventoryError, NvrDecl
from nvrmon.models import FleetAdmin, HubInfo
from nvrmon.protocol import MAX_CAMERA_ID, MAX_HOSTNAME, MAX_TEXT
from nvrmon.store.fleet import Store
from nvrmon.web.openapi import ApiSection, Operation, Schema, ref

MAX_BODY = 65_536
NVR_FIELDS = {"device_name", "region", "site", "tags", "expected_cameras"}
NEW_NVR_FIELDS = NVR_FIELDS | {"hostname"}
CAMERA_FIELDS = {"name", "tags"}
NEW_CAMERA_FIELDS = CAMERA_FIELDS | {"nvr_id", "id"}


def error(status: int, code: str, message: str) -> JSONResponse:
    """The API's one error shape: {"error": {"code": …, "message": …}} (access/guard.py's api_error)."""
    return api_error(status, message, code)


class _BadBody(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.response = error(status, code, message)


async def _body(request: Request, allowed: set[str]) -> dict[str, Any]:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise _BadBody(415, "unsupported_media_type", "send the body as application/json")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise _BadBody(413, "too_large", f"the body is larger than {MAX_BODY} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _BadBody(422, "invalid_json", "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise _BadBody(422, "invalid_json", "the body must be a JSON object")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise _BadBody(422, "invalid_field", f"unknown field '{unknown[0]}'; allowed: {', '.join(sorted(allowed))}")
    return data


def _nvr_fields(data: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key in ("device_name", "region", "site"):
        if key in data:
            fields[key] = inv.text(data[key], key)
    if "tags" in data:
        fields["tags"] = inv.tags(data["tags"]) or ()
    if "expected_cameras" in data:
        fields["expected_cameras"] = inv.count(data["expected_cameras"])  # null clears it
    return fields


def _camera_fields(data: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if "name" in data:
        fields["name"] = inv.text(data["name"], "name")
        if not fields["name"]:
            raise InventoryError(422, "invalid_field", "field 'name' must not be empty")
    if "tags" in data:
        fields["tags"] = inv.tags(data["tags"]) or ()
    return fields


async def _edit(request: Request, edit: inv.Edit) -> inv.Outcome | JSONResponse:
    hub: HubInfo = request.state.hub
    if hub.health.degraded:
        return error(503, "storage_unavailable", "the hub's storage refuses writes now; try again later")
    admin: FleetAdmin = request.state.hub
    identity: Identity = request.state.identity
    try:
        return await admin.edit_inventory(edit, actor_of(identity), client_address(request))
    except InventoryError as exc:
        return error(exc.status, exc.code, exc.message)


async def _run(request: Request, allowed: set[str] | None, act: Any) -> Response:
    """Body (when the route takes one), then the edit; every refusal in the API's error shape."""
    try:
        data = await _body(request, allowed) if allowed is not None else {}
        return await act(data)  # type: ignore[no-any-return]
    except _BadBody as exc:
        return exc.response
    except InventoryError as exc:
        return error(exc.status, exc.code, exc.message)


async def create_nvr(request: Request) -> Response:
    """Declare an expected NVR: it shows "missing" until its agent connects."""
    store: Store = request.state.store

    async def act(data: dict[str, Any]) -> Response:
        fields = _nvr_fields(data)
        nvr = NvrDecl(inv.hostname(data.get("hostname")), fields.get("device_name", ""), fields.get("region", ""),
                      fields.get("site", ""), fields.get("tags"), fields.get("expected_cameras"))  # fmt: skip
        done = await _edit(request, inv.DeclareNvr(nvr))
        if isinstance(done, JSONResponse):
            return done
        found = await store.nvr(done.nvr_id)
        assert found is not None
        return JSONResponse(found.as_json(), status_code=201, headers={"Location": f"/api/nvrs/{found.id}"})

    return await _run(request, NEW_NVR_FIELDS, act)


async def patch_nvr(request: Request) -> Response:
    """Rename (device_name), move (region, site), tag, or set the expected camera count of an NVR."""
    store: Store = request.state.store
    nvr_id: int = request.path_params["nvr_id"]

    async def act(data: dict[str, Any]) -> Response:
        fields = _nvr_fields(data)
        if not fields:
            raise InventoryError(
                422, "invalid_field", f"nothing to change; send one of {', '.join(sorted(NVR_FIELDS))}"
            )
        done = await _edit(request, inv.PatchNvr(nvr_id, fields))
        if isinstance(done, JSONResponse):
            return done
        found = await store.nvr(nvr_id)
        assert found is not None
        return JSONResponse(found.as_json())

    return await _run(request, NVR_FIELDS, act)


async def delete_nvr(request: Request) -> Response:
    """Decommission an NVR: its rows become tombstones and its agent tokens are revoked (as `nvrmon nvr remove`)."""
    store: Store = request.state.store
    hub: FleetAdmin = request.state.hub
    auth: Auth = request.state.auth
    identity: Identity = request.state.identity
    if request.state.hub.health.degraded:
        return error(503, "storage_unavailable", "the hub's storage refuses writes now; try again later")
    nvr = await store.nvr(request.path_params["nvr_id"])
    if nvr is None or nvr.removed or not await hub.remove_nvr(nvr.hostname, actor_of(identity)):
        return error(404, "not_found", f"no NVR with id {request.path_params['nvr_id']}")
    auth.revocations.notify()  # connections on its own agent tokens close now, not at the next poll
    await audit.note(
        request, "nvr.remove", nvr.hostname, "decommissioned through the API, with its cameras and agent tokens"
    )
    return Response(status_code=204)


async def create_camera(request: Request) -> Response:
    """Declare an expected camera of an NVR: it shows "missing" until its NVR lists it."""
    store: Store = request.state.store

    async def act(data: dict[str, Any]) -> Response:
        nvr_id = data.get("nvr_id")
        if not isinstance(nvr_id, int) or isinstance(nvr_id, bool) or nvr_id < 1:
            raise InventoryError(422, "invalid_field", "field 'nvr_id' must be an NVR id (a number)")
        fields = _camera_fields(data)
        camera = CameraDecl(inv.camera_id(data.get("id")), fields.get("name", ""), fields.get("tags"))
        done = await _edit(request, inv.DeclareCamera(nvr_id, camera))
        if isinstance(done, JSONResponse):
            return done
        found = await store.camera(done.camera_id)
        assert found is not None
        return JSONResponse(found.as_json(), status_code=201, headers={"Location": f"/api/cameras/{found.id}"})

    return await _run(request, NEW_CAMERA_FIELDS, act)


async def patch_camera(request: Request) -> Response:
    """Rename or tag a camera; a declared name wins over the one its NVR reports."""
    store: Store = request.state.store
    camera_id: int = request.path_params["camera_id"]

    async def act(data: dict[str, Any]) -> Response:
        fields = _camera_fields(data)
        if not fields:
            raise InventoryError(422, "invalid_field", "nothing to change; send name or tags")
        done = await _edit(request, inv.PatchCamera(camera_id, fields))
        if isinstance(done, JSONResponse):
            return done
        found = await store.camera(camera_id)
        assert found is not None
        return JSONResponse(found.as_json())

    return await _run(request, CAMERA_FIELDS, act)


async def delete_camera(request: Request) -> Response:
    """Decommission a camera: open pages drop it; its NVR listing it again brings it back."""
    camera_id: int = request.path_params["camera_id"]

    async def act(data: dict[str, Any]) -> Response:
        done = await _edit(request, inv.DecommissionCamera(camera_id))
        return done if isinstance(done, JSONResponse) else Response(status_code=204)

    return await _run(request, None, act)


_TAGS: Schema = {"type": "array", "items": {"type": "string", "maxLength": inv.MAX_TAG}, "maxItems": inv.MAX_TAGS}
_TEXT: Schema = {"type": "string", "maxLength": MAX_TEXT}
_COUNT: Schema = {"type": ["integer", "null"], "minimum": 0, "maximum": inv.MAX_EXPECTED}
_NVR_FIELDS: dict[str, Schema] = {"device_name": _TEXT, "region": _TEXT, "site": _TEXT, "tags": _TAGS,
                                  "expected_cameras": _COUNT}  # fmt: skip
_CAMERA_FIELDS: dict[str, Schema] = {"name": {**_TEXT, "minLength": 1}, "tags": _TAGS}
SCHEMAS: dict[str, Schema] = {
    "NvrDeclaration": {"type": "object", "required": ["hostname"], "additionalProperties": False,
                       "properties": {"hostname": {"type": "string", "minLength": 1, "maxLength": MAX_HOSTNAME},
                                      **_NVR_FIELDS}},
    "NvrChanges": {"type": "object", "minProperties": 1, "additionalProperties": False, "properties": _NVR_FIELDS},
    "CameraDeclaration": {"type": "object", "required": ["nvr_id", "id"], "additionalProperties": False,
                          "properties": {"nvr_id": {"type": "integer", "minimum": 1},
                                         "id": {"type": "string", "minLength": 1, "maxLength": MAX_CAMERA_ID},
                                         **_CAMERA_FIELDS}},
    "CameraChanges": {"type": "object", "minProperties": 1, "additionalProperties": False,
                      "properties": _CAMERA_FIELDS},
}  # fmt: skip
_WRITE_ERRORS = (409, 413, 415, 422, 503)
_NOTHING: Schema = {"description": "no body"}

# The write operations; the same paths' reads (GET) are web/api.py's, and Starlette picks by method.
API = ApiSection(
    (
        Operation("POST", "/api/nvrs", create_nvr, "operator", "Declare an expected NVR (missing until it connects)",
                  ref("Nvr"), body=ref("NvrDeclaration"), errors=_WRITE_ERRORS, status=201,
                  description="docs/inventory.md. A hostname known already, or one that can't be told apart from "
                  "one, is 409."),
        Operation("PATCH", "/api/nvrs/{nvr_id:int}", patch_nvr, "operator",
                  "Rename, move (region, site), tag an NVR or set its expected camera count", ref("Nvr"),
                  body=ref("NvrChanges"), errors=_WRITE_ERRORS,
                  description="Declared values win over what its agent reports. expected_cameras null clears it."),
        Operation("DELETE", "/api/nvrs/{nvr_id:int}", delete_nvr, "operator",
                  "Decommission an NVR: its cameras and agent tokens go with it (as nvrmon nvr remove)", _NOTHING,
                  errors=(503,), status=204),
        Operation("POST", "/api/cameras", create_camera, "operator",
                  "Declare an expected camera of an NVR (missing until its NVR lists it)", ref("Camera"),
                  body=ref("CameraDeclaration"), errors=_WRITE_ERRORS, status=201),
        Operation("PATCH", "/api/cameras/{camera_id:int}", patch_camera, "operator", "Rename or tag a camera",
                  ref("Camera"), body=ref("CameraChanges"), errors=_WRITE_ERRORS),
        Operation("DELETE", "/api/cameras/{camera_id:int}", delete_camera, "operator",
                  "Decommission a camera (its NVR listing it again brings it back)", _NOTHING, errors=(503,),
                  status=204),
    ),
    SCHEMAS,
)  # fmt: skip
