"""The admin app's pure ASGI middleware: a request-body limit enforced before the app sees a byte, and the
security headers every response carries.

The body is read here, whole, up to the limit, and only then handed on: so the session, the CSRF check and form
parsing never run on more than the limit, whoever sends it (no sign-in or CSRF token is needed to be refused).
"""

from __future__ import annotations

from collections.abc import Mapping

from python_multipart.multipart import parse_options_header
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from admin.playground import MAX_FORM_BYTES as PLAYGROUND_FORM_BYTES

# The largest admin form but the playground's is the preset form (an instruction of at most 1,000 characters and
# a question): far below this, even percent-encoded. Larger pastes get the form's own "at most N characters".
MAX_BODY_BYTES = 256 * 1024
# Paths (under the admin app's root) whose forms may be larger: the playground's pasted candidates.
LARGER_BODIES: Mapping[str, int] = {
    "/playground/rank": PLAYGROUND_FORM_BYTES,
    "/playground/rank.csv": PLAYGROUND_FORM_BYTES,
}
# The largest admin form has a dozen fields.
MAX_FORM_FIELDS = 64
# The same bounds for the app's form parsing (FastAPI's `form_limits`), behind this middleware: no admin form
# uploads files. The playground's rank routes raise max_part_size to their body limit.
FORM_LIMITS = {"max_fields": MAX_FORM_FIELDS, "max_files": 0, "max_part_size": MAX_BODY_BYTES}

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _route_path(scope: Scope) -> str:
    """The path under the app's mount point (/admin/presets -> /presets)."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _form_fields(content_type: str | None, body: bytes) -> int:
    """How many fields a form body holds, counted on the bytes (no parsing): 0 when it is no form."""
    if not content_type or not body:
        return 0
    kind, options = parse_options_header(content_type)
    if kind == b"application/x-www-form-urlencoded":
        return body.count(b"&") + 1
    if kind == b"multipart/form-data" and options.get(b"boundary"):
        return max(0, body.count(b"--" + options[b"boundary"]) - 1)
    return 0


async def _refuse(scope: Scope, receive: Receive, send: Send, message: str) -> None:
    await PlainTextResponse(message, status_code=413)(scope, receive, send)


class BodyLimit:
    """Refuses with 413 a body over `max_bytes` (or the path's entry in `larger`): a Content-Length over it
    before reading anything, a streamed (chunked) body as soon as what arrived passes it; and a form with more
    than `max_fields` fields, counted on the bytes before anything parses them."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int = MAX_BODY_BYTES,
        larger: Mapping[str, int] = LARGER_BODIES,
        max_fields: int = MAX_FORM_FIELDS,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = larger
        self.max_fields = max_fields

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(_route_path(scope), self.max_bytes)
        too_large = f"The request body is over the admin app's limit of {limit:,} bytes."
        headers = Headers(scope=scope)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _refuse(scope, receive, send, too_large)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left: nothing to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _refuse(scope, receive, send, too_large)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if _form_fields(headers.get("content-type"), body) > self.max_fields:
            await _refuse(scope, receive, send, f"The form has more than {self.max_fields} fields.")
            return

        replayed = False

        async def replay() -> Message:
            """The body read above, then whatever the server says next (a disconnect)."""
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every response that does not set them itself: a CSP that allows only the app's
    own scripts, styles and images (no inline script, no framing), nosniff and a same-origin Referrer-Policy."""

    def __init__(self, app: ASGIApp, headers: Mapping[str, str] = SECURITY_HEADERS) -> None:
        self.app = app
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
