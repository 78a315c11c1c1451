"""Stage 7, the pages about access: the login form, logging in and out, and the HTML page of a refusal."""

from __future__ import annotations

import logging
import math
import time

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from nvrmon.access import accounts, audit, sessions
from nvrmon.access.guard import guard, page_context
from nvrmon.access.sessions import CSRF_COOKIE, SESSION_COOKIE, Auth, Identity, read_form
from nvrmon.live.renderer import Renderer

log = logging.getLogger("nvrmon.web.login")


def error_page(request: Request, status: int, detail: str) -> Response:
    """The guard's refusal for people (nvrmon.access.guard.ErrorPage), in the hub's layout."""
    renderer: Renderer = request.state.renderer
    html = renderer.render(
        "error.html", title=str(status), active="", status=status, detail=detail, **page_context(request)
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def safe_next(value: str | None) -> str:
    """Only a path on this hub: never an absolute URL or //host (an open redirect after login)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")) or len(value) > 512:
        return "/"
    if any(ord(ch) < 32 for ch in value) or value.startswith(("/login", "/logout")):
        return "/"
    return value


# One sentence per reason; a removed account and a changed password read the same, so nothing says which exists.
ENDED = {
    sessions.SIGNED_OUT: "You signed out.",
    sessions.SESSION_EXPIRED: "Your session expired. Sign in again to go on.",
    sessions.SESSION_GONE: "Your session ended: signed out elsewhere, expired, or the account was removed or its "
    "password changed. Sign in again to go on.",
}


async def login_page(request: Request) -> Response:
    if request.state.identity is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    # The reason comes with the redirect (?ended=) or from the browser's stale session cookie, checked just now.
    reason = str(request.query_params.get("ended") or getattr(request.state, "session_end", ""))
    response = _login_form(request, safe_next(request.query_params.get("next")), "", "", notice=ENDED.get(reason, ""))
    if getattr(request.state, "session_end", ""):
        auth: Auth = request.state.auth
        auth.clear_cookie(request, response, SESSION_COOKIE)  # said once; a reload shows a plain form
    return response


def _login_form(
    request: Request, next_path: str, name: str, error: str, status: int = 200, retry_after: float = 0.0,
    notice: str = "",
) -> Response:  # fmt: skip
    auth: Auth = request.state.auth
    renderer: Renderer = request.state.renderer
    token, new = auth.login_csrf(request)
    html = renderer.render(
        "login.html", title="Log in", active="", next_path=next_path, username=name, error=error, login_csrf=token,
        user=None, csrf_token="", notice=notice,
    )  # fmt: skip
    headers = {"Cache-Control": "no-store"}
    if retry_after > 0:
        headers["Retry-After"] = str(math.ceil(retry_after))
    response = HTMLResponse(html, status_code=status, headers=headers)
    if new:
        auth.set_cookie(request, response, CSRF_COOKIE, token, None)
    return response


async def login(request: Request) -> Response:
    auth: Auth = request.state.auth
    form = await read_form(request)
    name, password = form.get("username", "").strip(), form.get("password", "")
    next_path = safe_next(form.get("next"))
    address = audit.client_address(request)
    # Checked and counted in one step before the password is hashed: simultaneous guesses can't all slip past a
    # check that would only see their failures once each had been evaluated.
    attempt = auth.limiter.attempt(name, address, time.time())
    if attempt.wait > 0:
        await audit.note(
            request,
            "login.throttled",
            name[:64],
            f"retry in {math.ceil(attempt.wait)} s",
            actor=name[:64] or "anonymous",
        )
        return _login_form(request, next_path, name, _wait_message(attempt.wait), 429, attempt.wait)
    try:
        user = await accounts.authenticate(auth.credentials, name, password) if name and password else None
        if user is None:
            attempt.failed(time.time())
            log.warning("failed login for %r from %s", name[:64], address)
            await audit.note(
                request, "login.failed", name[:64], "wrong user name or password", actor=name[:64] or "anonymous"
            )
            return _login_form(request, next_path, name, "Wrong user name or password.", 401)
        attempt.succeeded()
    finally:
        attempt.release()  # a no-op once failed or succeeded
    response = RedirectResponse(next_path, status_code=303)
    await auth.start_session(request, response, user.id)
    log.info("%s logged in from %s", user.name, address)
    await audit.note(request, "login", user.name, actor=user.name)
    return response


def _wait_message(wait: float) -> str:
    if wait < 60:
        return "Too many login attempts. Try again in a few seconds."
    minutes = max(1, round(wait / 60))
    return f"Too many failed attempts. Try again in {minutes} minute{'s' if minutes > 1 else ''}."


async def logout(request: Request) -> Response:
    auth: Auth = request.state.auth
    identity: Identity = request.state.identity
    response = RedirectResponse(f"/login?ended={sessions.SIGNED_OUT}", status_code=303)
    await auth.end_session(request, response, identity)
    await audit.note(request, "logout", identity.name)
    return response


def routes() -> list[Route]:
    return [
        Route("/login", guard("public", login_page), methods=["GET"]),
        Route("/login", guard("public", login), methods=["POST"]),
        Route("/logout", guard("viewer", logout), methods=["POST"]),
    ]
