"""The `/slack/events` HTTP adapter: bounded raw body -> Slack signature -> Bolt request -> dispatch -> response.

Nothing a stranger sends is parsed or held beyond `MAX_BODY_BYTES`: the body is read as a stream and refused
with 413 once it passes the limit (or at once when its Content-Length says it will), and the signature is
checked on the raw bytes before any parsing. A signed body that is not a Slack payload gets a 400, not a 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_bolt.request.internals import parse_body
from slack_sdk.signature import SignatureVerifier
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse, Response

log = logging.getLogger(__name__)

# Slack's own requests are a few KiB (a block_actions payload carries the message's blocks: at most 50 blocks of
# 3,000 characters, well under 1 MiB even with every character escaped).
MAX_BODY_BYTES = 1024 * 1024


class BodyTooLarge(ValueError):
    """The request body passed `MAX_BODY_BYTES`."""


async def read_bounded(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, read chunk by chunk; `BodyTooLarge` as soon as it passes `limit` (the rest is never read)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(f"request body over {limit} bytes")
    return bytes(body)


def _refuse(status: int, reason: str) -> Response:
    return PlainTextResponse(reason, status_code=status)


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    return int(value) if value.isascii() and value.isdigit() else -1


def add_slack_route(api: FastAPI, slack_app: App, signing_secret: str, path: str = "/slack/events") -> None:
    """Route Slack's events, actions, views and commands at `path` into `slack_app`, verified against
    `signing_secret` here (Bolt verifies again: the same check in depth)."""
    verifier = SignatureVerifier(signing_secret)

    @api.post(path)
    async def slack_events(request: Request) -> Response:
        declared = _declared_length(request)
        if declared is not None and declared < 0:
            return _refuse(400, "Bad Content-Length")
        if declared is not None and declared > MAX_BODY_BYTES:
            return _refuse(413, f"Request body over {MAX_BODY_BYTES} bytes")
        timestamp = request.headers.get("x-slack-request-timestamp")
        signature = request.headers.get("x-slack-signature")
        if not timestamp or not signature:
            return _refuse(401, "Unsigned request")  # nothing read: an unsigned stream costs nothing
        try:
            body = await read_bounded(request)
        except BodyTooLarge:
            return _refuse(413, f"Request body over {MAX_BODY_BYTES} bytes")
        try:
            valid = verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
        except ValueError:  # a timestamp that is not a number, or a body that is not UTF-8: not Slack's
            valid = False
        if not valid:
            return _refuse(401, "Invalid signature")
        text = body.decode("utf-8")  # is_valid decoded it already
        try:
            payload = parse_body(text, request.headers.get("content-type"))
        except (ValueError, RecursionError):  # bad JSON, or a form whose `payload=` is not JSON
            log.warning("Refused a signed Slack request whose body is not JSON or form data")
            return _refuse(400, "Body is not a Slack payload")
        if not isinstance(payload, dict):
            log.warning("Refused a signed Slack request whose body is not an object")
            return _refuse(400, "Body is not a Slack payload")
        try:
            bolt_request = to_bolt_request(request, body)
        except Exception as exc:  # Bolt reads ids out of the payload; a shape it does not expect is not Slack's
            log.warning("Refused a signed Slack request Bolt could not read: %s: %s", type(exc).__name__, exc)
            return _refuse(400, "Body is not a Slack payload")
        # Bolt's dispatch is synchronous (it returns once a listener acks): keep it off the event loop.
        try:
            bolt_response = await run_in_threadpool(slack_app.dispatch, bolt_request)
        except Exception as exc:
            # dispatch answers its listeners' and middleware's failures itself; what escapes is Bolt reading a
            # field its kwargs need (`actions[0]`, `view["type"]`) again in its own error handler: not Slack's.
            log.warning("Refused a Slack payload Bolt could not read: %s: %s", type(exc).__name__, exc)
            return _refuse(400, "Body is not a Slack payload")
        return to_starlette_response(bolt_response)
