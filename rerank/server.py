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

Errors are `{"error": {"message", "type"}}`: 400 for bad requests, 413 for an oversized body, 503 with
`Retry-After` while loading or when the batcher's bounded queue is full, 500 only when the engine itself fails.

This module holds the routes only: the wire format and its validation live in `rerank.protocol`, the service
that loads the engine and answers requests in `rerank.serving`, the Prometheus metrics in `rerank.metrics`. The
engine (`rerank.qwen3`, `rerank.batching`) never imports FastAPI, so it runs in-process without this layer.
"""

from __future__ import annotations

import contextlib
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
from starlette.responses import Response

from rerank.batching import DynamicBatcher
from rerank.metrics import RerankMetrics
from rerank.protocol import ErrorBody, ErrorDetail, RerankRequest, describe_validation_error
from rerank.serving import LOADING_RETRY_AFTER, ApiError, RerankService

log = logging.getLogger(__name__)

__all__ = [
    "ApiError",
    "RerankMetrics",
    "RerankRequest",
    "RerankService",
    "create_rerank_app",
    "error_response",
    "parse_rerank_request",
    "qwen3_batcher_factory",
    "run_rerank_server",
]


def error_response(status: int, message: str, type_: str, retry_after: float | None = None) -> JSONResponse:
    """An `ErrorBody` response; `Retry-After` (whole seconds, at least 1) when the client should try again."""
    headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if retry_after is not None else None
    body = ErrorBody(error=ErrorDetail(message=message, type=type_))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _invalid(message: str) -> ApiError:
    return ApiError(400, message, "invalid_request_error")


def parse_rerank_request(
    payload: Any, *, max_documents: int, max_instruction_chars: int, max_query_chars: int
) -> RerankRequest:
    """Validate a /v1/rerank body against this app's limits; raises `ApiError` (400) with a message naming the
    field."""
    limits = {
        "max_documents": max_documents,
        "max_instruction_chars": max_instruction_chars,
        "max_query_chars": max_query_chars,
    }
    try:
        return RerankRequest.model_validate(payload, context=limits)
    except ValidationError as exc:
        raise _invalid(describe_validation_error(exc)) from None


def create_rerank_app(
    batcher_factory: Callable[[], DynamicBatcher],
    model_name: str,
    max_documents: int = 1000,
    max_instruction_chars: int = 2000,
    max_query_chars: int = 4000,
    *,
    max_body_bytes: int = 64 * 1024 * 1024,
    warmup: bool = True,
) -> FastAPI:
    """The reranker web app. `batcher_factory()` builds the engine and its (not yet started) `DynamicBatcher`;
    it runs on a background thread at startup, so `/healthz` answers 503 until the model is ready.
    `app.state.service` is the `RerankService` (batcher, readiness, metrics)."""
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
    def prometheus_metrics() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    async def rerank(request: Request) -> JSONResponse:
        started = time.perf_counter()
        try:
            response = await _rerank(request)
        except ApiError as exc:
            response = error_response(exc.status, exc.message, exc.type, exc.retry_after)
        metrics.requests.labels(status=str(response.status_code)).inc()
        metrics.latency.observe(time.perf_counter() - started)
        return response

    async def _rerank(request: Request) -> JSONResponse:
        service.check_ready()  # before reading the body

        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_body_bytes:
            raise ApiError(413, f"the request body is larger than {max_body_bytes} bytes", "payload_too_large")
        body = await request.body()
        if len(body) > max_body_bytes:
            raise ApiError(413, f"the request body is larger than {max_body_bytes} bytes", "payload_too_large")
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _invalid(f"the request body is not valid JSON ({exc})") from exc
        req = parse_rerank_request(
            payload,
            max_documents=max_documents,
            max_instruction_chars=max_instruction_chars,
            max_query_chars=max_query_chars,
        )

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
) -> None:
    """Serve the engine that `batcher_factory` loads until interrupted. The port opens at once (`/healthz` 503
    while the model loads); if the model cannot be loaded the server stops and the loading error
    (`RerankerLoadError`) is raised."""
    import uvicorn

    app = create_rerank_app(batcher_factory, model_name, max_documents=max_documents)
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
