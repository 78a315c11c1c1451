"""Cross-cutting protection, response headers: a strict CSP and the headers every response of the hub carries."""

from __future__ import annotations

from collections.abc import Awaitable, Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# No inline script or style anywhere (templates carry neither; htmx 4 injects no <style>), so both are 'self' only.
# frame-ancestors 'none': no page of the hub may be framed (clickjacking); /embed pages set their own allowlist.
_CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self'",
    "connect-src": "'self'",
    "font-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def content_security_policy(frame_ancestors: Iterable[str] = ()) -> str:
    """The hub's CSP; `frame_ancestors` (origins) replaces 'none' for pages meant to be framed."""
    directives = dict(_CSP)
    ancestors = " ".join(frame_ancestors)
    if ancestors:
        directives["frame-ancestors"] = ancestors
    return "; ".join(f"{name} {value}" for name, value in directives.items())


_DEFAULT_HEADERS = [
    (b"content-security-policy", content_security_policy().encode()),
    (b"x-frame-options", b"DENY"),  # for browsers without CSP frame-ancestors
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
]


# Only static assets may be kept by a browser or a proxy: every other answer (pages, JSON, fragments, refusals) is
# about one user's session or a fleet that changes by the second.
_NO_STORE = (b"cache-control", b"no-store")
_STATIC_PREFIX = "/static/"


class SecurityHeaders:
    """Adds the headers every response carries unless the endpoint chose its own (an embed's CSP, say).

    The outermost layer of the app, around the /events fast path too, so no response can miss them. Pure ASGI, so it
    never buffers the event stream.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable = str(scope.get("path", "")).startswith(_STATIC_PREFIX)

        # A plain function handing back the server's own awaitable, not a coroutine: no frame of this layer stays
        # suspended in each open stream, and a delivery (the broadcaster steps that awaitable itself) costs one call.
        def send_with_headers(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                message["headers"] = with_defaults(list(message.get("headers", [])), cacheable)
            return send(message)

        await self.app(scope, receive, send_with_headers)


def with_defaults(headers: list[tuple[bytes, bytes]], cacheable: bool) -> list[tuple[bytes, bytes]]:
    """`headers` plus each default the response didn't set itself."""
    present = {name.lower() for name, _ in headers}
    framed = b"content-security-policy" in present  # an endpoint with its own CSP decides about framing
    for name, value in _DEFAULT_HEADERS:
        if name not in present and not (framed and name == b"x-frame-options"):
            headers.append((name, value))
    if not cacheable and _NO_STORE[0] not in present:
        headers.append(_NO_STORE)
    return headers
