"""Stage 7, accounts on the admin page: create, disable, enable, delete, reset passwords and change roles.

The rules are access/accounts.py's, shared with `nvrmon user …`: valid names, roles and passwords, nobody disables
or deletes their own account, and the last enabled admin stays one. Every change is audited in its transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import get_args

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nvrmon.access import accounts
from nvrmon.access.accounts import AccountError
from nvrmon.access.audit import actor_of, client_address
from nvrmon.access.guard import guard
from nvrmon.access.sessions import Auth, read_form
from nvrmon.store.credentials import Conflict, UserChange
from nvrmon.web.admin import render

DONE: dict[str, str] = {
    "disable": "Disabled {name}: it can't log in, and its sessions have ended.",
    "enable": "Enabled {name}: it can log in again.",
    "delete": "Deleted {name}; its sessions have ended.",
    "role": "{name} is now {role}.",
}


async def create_user(request: Request) -> Response:
    auth: Auth = request.state.auth
    form = await read_form(request)
    name, role = form.get("username", "").strip(), form.get("role", "viewer")
    try:
        await accounts.add_user(
            auth.credentials, name, role, form.get("password", ""), actor=actor_of(request.state.identity),
            address=client_address(request),
        )  # fmt: skip
    except (AccountError, Conflict) as exc:
        return await render(request, status=400, error=f"Can't create {name or 'the account'}: {exc}.", form=form)
    return await render(request, notice=f"Created {role} {name}.")


async def reset_password(request: Request) -> Response:
    auth: Auth = request.state.auth
    name = request.path_params["name"]
    form = await read_form(request)
    try:
        done = await accounts.change_password(
            auth.credentials, name, form.get("password", ""), actor=actor_of(request.state.identity),
            address=client_address(request),
        )  # fmt: skip
    except AccountError as exc:
        return await render(request, status=400, error=f"Can't reset the password of {name}: {exc}.")
    if not done:
        return await render(request, status=404, error=f"No user {name}.")
    auth.revocations.notify()  # its open pages end now, not at the next poll
    return await render(request, notice=f"Password of {name} reset; its sessions have ended.")


def _change(change: UserChange) -> Callable[[Request], Awaitable[Response]]:
    async def changed(request: Request) -> Response:
        auth: Auth = request.state.auth
        name = request.path_params["name"]
        role = (await read_form(request)).get("role", "") if change == "role" else ""
        try:
            user = await accounts.change_user(
                auth.credentials, name, change, role=role, actor=actor_of(request.state.identity),
                address=client_address(request),
            )  # fmt: skip
        except AccountError as exc:
            status = 404 if str(exc).startswith("no user") else 409
            return await render(request, status=status, error=f"Can't {change} {name}: {exc}.")
        auth.revocations.notify()  # a disabled or deleted account's open pages end now
        return await render(request, notice=DONE[change].format(name=user.name, role=role))

    changed.__name__ = f"{change}_user"
    return changed


def routes() -> list[Route]:
    return [
        Route("/admin/users", guard("admin", create_user), methods=["POST"]),
        Route("/admin/users/{name}/password", guard("admin", reset_password), methods=["POST"]),
        *(
            Route(f"/admin/users/{{name}}/{change}", guard("admin", _change(change)), methods=["POST"])
            for change in get_args(UserChange)
        ),
    ]
