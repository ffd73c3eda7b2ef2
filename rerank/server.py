"""`ragbot rerank-server`: the Qwen3 reranker over HTTP, with dynamic batching across concurrent requests.

- `POST /v1/rerank` (also `/rerank`): the Jina / Cohere / vLLM / infinity shape.
  Request `{"model"?, "query", "documents": [str | {"text": str}], "top_n"?, "instruction"?,
  "return_documents"?}`; response `{"model", "results": [{"index", "relevance_score", "document"?}],
  "usage": {"total_tokens"}}`, results sorted by score (highest first, ties in input order), `document` as
  `{"text": ...}` when `return_documents` is true. `instruction` is this server's extension (the Qwen3
  `<Instruct>`); blank or absent means the model card's default. `model` is accepted and not checked (one
  model per server; the response names it). `usage.total_tokens` counts the templated sequences the engine
  scored (prefix + truncated body + suffix per document).
- `GET /healthz`: 200 while the process runs (`"ready"` says whether the model is).
- `GET /readyz`: 503 until the model is loaded and warmed up (and why, when it failed to load), then 200.
- `GET /metrics`: Prometheus text format (requests by status, pairs, tokens, batch sizes, queue wait, latency).

With an API key (`api_key`, RERANK_SERVER_API_KEY) `/v1/rerank`, `/rerank` and `/metrics` require
`Authorization: Bearer <key>` (401 with `WWW-Authenticate: Bearer` otherwise, before the body is read);
`/healthz` and `/readyz` stay open for liveness and readiness probes.

What a request costs is bounded before it reaches the engine (`RequestLimits`): a declared `Content-Length`
over the body limit is refused unread, a body without one is counted while it streams in and refused at the
limit, and the characters per document and per request are checked before anything is tokenized.

Errors are `{"error": {"message", "type"}}`: 400 for bad requests (malformed, nested too deep or not UTF-8
JSON included), 401 without the API key, 413 for an oversized body or request, 503 with `Retry-After` while
loading or when the batcher's bounded queue is full, 500 only when the engine itself fails.

This module holds the routes only: the wire format and its validation live in `rerank.protocol`, the service
that loads the engine and answers requests in `rerank.serving`, the Prometheus metrics in `rerank.metrics`. The
engine (`rerank.qwen3`, `rerank.batching`) never imports FastAPI, so it runs in-process without this layer.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import math
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from rerank.batching import DynamicBatcher
from rerank.metrics import RerankMetrics
from rerank.protocol import (
    ErrorBody,
    ErrorDetail,
    RequestLimits,
    RerankRequest,
    describe_validation_error,
    is_request_too_large,
)
from rerank.serving import LOADING_RETRY_AFTER, ApiError, RerankService

log = logging.getLogger(__name__)

__all__ = [
    "ApiError",
    "RequestLimits",
    "RerankMetrics",
    "RerankRequest",
    "RerankService",
    "create_rerank_app",
    "error_response",
    "parse_rerank_request",
    "qwen3_batcher_factory",
    "run_rerank_server",
]


def error_response(
    status: int,
    message: str,
    type_: str,
    retry_after: float | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An `ErrorBody` response; `Retry-After` (whole seconds, at least 1) when the client should try again."""
    headers = dict(headers or {})
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    body = ErrorBody(error=ErrorDetail(message=message, type=type_))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers or None)


def _invalid(message: str) -> ApiError:
    return ApiError(400, message, "invalid_request_error")


def _too_large(message: str) -> ApiError:
    return ApiError(413, message, "payload_too_large")


def parse_rerank_request(payload: Any, limits: RequestLimits) -> RerankRequest:
    """Validate a /v1/rerank body against this app's limits; raises `ApiError` with a message naming the field:
    400, or 413 when the request's characters all together pass `max_request_chars`."""
    try:
        return RerankRequest.model_validate(payload, context=limits.context())
    except ValidationError as exc:
        message = describe_validation_error(exc)
        raise (_too_large(message) if is_request_too_large(exc) else _invalid(message)) from None


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, message, "authentication_error")  # sent with `WWW-Authenticate: Bearer`


def _check_api_key(request: Request, api_key: str | None) -> None:
    """Raise a 401 `ApiError` unless the request carries `Authorization: Bearer <api_key>` (no key: open).
    Compared in constant time, on the bytes as sent."""
    if not api_key:
        return
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("this server requires an API key: send 'Authorization: Bearer <key>'")
    # Starlette decodes header bytes as latin-1: encoding back gives the bytes the client sent.
    if not hmac.compare_digest(token.strip().encode("latin-1"), api_key.encode("utf-8")):
        raise _unauthorized("the API key is not valid")


async def _read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refused (413) as soon as it is known to pass `max_bytes`: from a declared
    `Content-Length` before reading anything, else while it streams in (chunked bodies), so an oversized body
    is never held whole."""
    length = request.headers.get("content-length")
    if length is not None:
        if not length.strip().isdigit():
            raise _invalid("the Content-Length header is not a number")
        if int(length) > max_bytes:
            raise _too_large(f"the request body is {int(length)} bytes; the limit is {max_bytes}")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_bytes:
                raise _too_large(f"the request body is larger than {max_bytes} bytes (the limit)")
    except ClientDisconnect:
        raise _invalid("the client disconnected before sending the whole body") from None
    return bytes(body)


def _parse_json(body: bytes) -> Any:
    """The JSON value of `body`, or a 400 `ApiError` for anything that is not JSON: malformed, not UTF-8
    (or UTF-16/32 with its BOM), or nested too deeply for the parser."""
    try:
        return json.loads(body)
    except RecursionError:
        raise _invalid("the request body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise _invalid(f"the request body is not valid JSON ({exc})") from None


def create_rerank_app(
    batcher_factory: Callable[[], DynamicBatcher],
    model_name: str,
    max_documents: int = 1000,
    max_instruction_chars: int = 2000,
    max_query_chars: int = 4000,
    *,
    max_document_chars: int = RequestLimits.max_document_chars,
    max_request_chars: int = RequestLimits.max_request_chars,
    api_key: str | None = None,
    warmup: bool = True,
) -> FastAPI:
    """The reranker web app. `batcher_factory()` builds the engine and its (not yet started) `DynamicBatcher`;
    it runs on a background thread at startup, so `/readyz` answers 503 until the model is ready.
    `app.state.service` is the `RerankService` (batcher, readiness, metrics), `app.state.limits` the
    `RequestLimits`. `api_key` (None or empty: no authentication) is required as a bearer token on
    `/v1/rerank`, `/rerank` and `/metrics`."""
    limits = RequestLimits(
        max_documents=max_documents,
        max_query_chars=max_query_chars,
        max_instruction_chars=max_instruction_chars,
        max_document_chars=max_document_chars,
        max_request_chars=max_request_chars,
    )
    metrics = RerankMetrics()
    service = RerankService(batcher_factory, model_name, metrics, warmup=warmup)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service.start_loading()
        try:
            yield
        finally:
            await run_in_threadpool(service.close)

    api = FastAPI(title="ragbot reranker", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    api.state.service = service
    api.state.metrics = metrics
    api.state.limits = limits

    def api_error_response(exc: ApiError) -> JSONResponse:
        challenge = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error_response(exc.status, exc.message, exc.type, exc.retry_after, challenge)

    @api.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not_found_error", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, str(exc.detail), kind)

    @api.get("/healthz")
    def healthz() -> JSONResponse:
        """200 while the process runs (liveness); whether the model is ready is `/readyz`'s."""
        service.start_loading()  # in case the server runs without lifespan events
        return JSONResponse({"status": "ok", "model": model_name, "ready": service.ready.is_set()})

    @api.get("/readyz")
    def readyz() -> JSONResponse:
        """200 once the model is loaded and warmed up; 503 (and why) until then or when it failed to load."""
        service.start_loading()  # in case the server runs without lifespan events
        if service.ready.is_set():
            return JSONResponse({"status": "ok", "model": model_name})
        if service.failed.is_set():
            return JSONResponse({"status": "error", "model": model_name, "error": str(service.error)}, status_code=503)
        return JSONResponse(
            {"status": "loading", "model": model_name},
            status_code=503,
            headers={"Retry-After": str(LOADING_RETRY_AFTER)},
        )

    @api.get("/metrics")
    def prometheus_metrics(request: Request) -> Response:
        """The counters (behind the API key when there is one: they tell traffic and load)."""
        try:
            _check_api_key(request, api_key)
        except ApiError as exc:
            return api_error_response(exc)
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    async def rerank(request: Request) -> JSONResponse:
        started = time.perf_counter()
        try:
            response = await _rerank(request)
        except ApiError as exc:
            response = api_error_response(exc)
        metrics.requests.labels(status=str(response.status_code)).inc()
        metrics.latency.observe(time.perf_counter() - started)
        return response

    async def _rerank(request: Request) -> JSONResponse:
        # Everything a stranger can make cheap comes first: the key, readiness, then the body within its limit.
        _check_api_key(request, api_key)
        service.check_ready()
        body = await _read_body(request, limits.max_body_bytes)
        # Parsing and validating a body of up to max_body_bytes takes a while: off the event loop, so other
        # requests are read and answered meanwhile.
        req = await run_in_threadpool(lambda: parse_rerank_request(_parse_json(body), limits))
        return JSONResponse((await service.rerank(req)).to_json())

    api.add_api_route("/v1/rerank", rerank, methods=["POST"])
    api.add_api_route("/rerank", rerank, methods=["POST"], include_in_schema=False)  # vLLM / infinity alias
    return api


def qwen3_batcher_factory(
    model: str,
    device: str = "auto",
    dtype: str = "auto",
    batch_tokens: int = 16384,
    max_length: int = 8192,
    max_wait_ms: float = 5.0,
    max_queue: int = 256,
    max_batch_requests: int = 64,
    max_padding: float | None = None,
) -> Callable[[], DynamicBatcher]:
    """A `batcher_factory` for `create_rerank_app` that loads `Qwen3Reranker` (raises `RerankerLoadError`)."""

    def factory() -> DynamicBatcher:
        from rerank.qwen3 import Qwen3Reranker

        reranker = Qwen3Reranker(
            model,
            device=device,
            dtype=dtype,
            max_length=max_length,
            batch_tokens=batch_tokens,
            max_padding=max_padding,
        )
        return DynamicBatcher(
            reranker, max_wait_ms=max_wait_ms, max_queue=max_queue, max_batch_requests=max_batch_requests
        )

    return factory


def run_rerank_server(
    batcher_factory: Callable[[], DynamicBatcher],
    model_name: str,
    host: str = "127.0.0.1",
    port: int = 8080,
    max_documents: int = 1000,
    *,
    max_document_chars: int = RequestLimits.max_document_chars,
    max_request_chars: int = RequestLimits.max_request_chars,
    api_key: str | None = None,
) -> None:
    """Serve the engine that `batcher_factory` loads until interrupted. The port opens at once (`/readyz` 503
    while the model loads); if the model cannot be loaded the server stops and the loading error
    (`RerankerLoadError`) is raised. `api_key`: see `create_rerank_app`."""
    import uvicorn

    app = create_rerank_app(
        batcher_factory,
        model_name,
        max_documents=max_documents,
        max_document_chars=max_document_chars,
        max_request_chars=max_request_chars,
        api_key=api_key,
    )
    service: RerankService = app.state.service
    service.log_load_errors = False  # raised below, once, for the command line to print
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))

    def watch() -> None:
        service.wait_ready()
        if service.ready.is_set() and service.batcher is not None:
            batcher = service.batcher
            engine = batcher.reranker
            print(
                f"Reranker ready: {model_name} on {getattr(engine, 'device', 'cpu')} "
                f"(batch_tokens={getattr(engine, 'batch_tokens', 'n/a')}, max_wait_ms={batcher.max_wait * 1000:g}, "
                f"max_queue={batcher.max_queue}); POST http://{host}:{port}/v1/rerank",
                file=sys.stderr,
                flush=True,
            )
        elif service.failed.is_set():
            server.should_exit = True

    threading.Thread(target=watch, name="rerank-watch", daemon=True).start()
    server.run()
    if service.error is not None:
        raise service.error
