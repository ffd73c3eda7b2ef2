"""`ragbot rerank-server`: the Qwen3 reranker over HTTP, with dynamic batching across concurrent requests.

- `POST /v1/rerank` (also `/rerank`): the Jina / Cohere / vLLM / infinity shape.
  Request `{"model"?, "query", "documents": [str | {"text": str}], "top_n"?, "instruction"?,
  "return_documents"?}`; response `{"model", "results": [{"index", "relevance_score", "document"?}],
  "usage": {"total_tokens"}}`, results sorted by score (highest first, ties in input order), `document` as
  `{"text": ...}` when `return_documents` is true. `instruction` is this server's extension (the Qwen3
  `<Instruct>`); blank or absent means the model card's default. `model` is accepted and not checked (one
  model per server; the response names it). `usage.total_tokens` counts the templated sequences the engine
  scored (prefix + truncated body + suffix per document).
- `GET /healthz`: 503 until the model is loaded and warmed up, then 200.
- `GET /metrics`: Prometheus text format (requests by status, pairs, tokens, batch sizes, queue wait, latency).

Errors are `{"error": {"message", "type"}}`: 400 for bad requests, 413 for an oversized body, 503 with
`Retry-After` while loading or when the batcher's bounded queue is full, 500 only when the engine itself fails.

The wire format and its validation live in `rerank.protocol`, the Prometheus metrics in `rerank.metrics`; the
engine (`rerank.qwen3`, `rerank.batching`) never imports FastAPI, so it runs in-process without this layer.
"""

from __future__ import annotations

import asyncio
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

from rerank.base import rank_order
from rerank.batching import BatcherStopped, DynamicBatcher, QueueFull
from rerank.metrics import RerankMetrics
from rerank.protocol import (
    ErrorBody,
    ErrorDetail,
    RerankDocument,
    RerankRequest,
    RerankResponse,
    RerankResult,
    RerankUsage,
    describe_validation_error,
)

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

_LOADING_RETRY_AFTER = 5


class ApiError(Exception):
    """A request that ends in an error response (`error_response`): HTTP status, message, error type."""

    def __init__(self, status: int, message: str, type_: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.retry_after = retry_after


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


class RerankService:
    """The model behind the API: loads on a background thread, warms up, then serves through its batcher."""

    def __init__(
        self,
        batcher_factory: Callable[[], DynamicBatcher],
        model_name: str,
        metrics: RerankMetrics,
        *,
        warmup: bool = True,
    ) -> None:
        self.batcher_factory = batcher_factory
        self.model_name = model_name
        self.metrics = metrics
        self.warmup = warmup
        self.batcher: DynamicBatcher | None = None
        self.ready = threading.Event()
        self.failed = threading.Event()
        self.error: BaseException | None = None
        self.log_load_errors = True  # run_rerank_server raises the error instead
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def start_loading(self) -> None:
        """Start loading on a background thread (idempotent)."""
        with self._lock:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(target=self._load, name="rerank-load", daemon=True)
            self._thread.start()

    def _load(self) -> None:
        try:
            started = time.perf_counter()
            batcher = self.batcher_factory()
            if self.warmup:
                # Kernel selection and allocator growth happen here, not on the first request (two documents:
                # the shared-prefix path runs too). Straight on the engine, so the counters start at zero.
                reranker = batcher.reranker
                reranker.score("warm-up", ["warm-up", "a warm-up document"])
            batcher.add_listener(self.metrics.observe_batch)
            self.metrics.queue_depth.set_function(lambda: batcher.stats().queue_depth)
            with self._lock:
                if self._closed:
                    return
                self.batcher = batcher.start()
            self.metrics.ready.set(1)
            self.ready.set()
            log.info("reranker %s ready in %.1f s", self.model_name, time.perf_counter() - started)
        except BaseException as exc:
            self.error = exc
            self.failed.set()
            if self.log_load_errors:
                log.error("Reranker %s failed to load: %s", self.model_name, exc)

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the model is ready (True) or failed / timed out (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.ready.is_set() and not self.failed.is_set():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            self.ready.wait(0.05 if remaining is None else min(0.05, remaining))
        return self.ready.is_set()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            batcher = self.batcher
        if batcher is not None:
            batcher.stop()
        self.metrics.ready.set(0)


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
        service.start_loading()  # in case the server runs without lifespan events
        if service.ready.is_set():
            return JSONResponse({"status": "ok", "model": model_name})
        if service.failed.is_set():
            return JSONResponse({"status": "error", "model": model_name, "error": str(service.error)}, status_code=503)
        return JSONResponse(
            {"status": "loading", "model": model_name},
            status_code=503,
            headers={"Retry-After": str(_LOADING_RETRY_AFTER)},
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
        service.start_loading()
        batcher = service.batcher
        if batcher is None or not service.ready.is_set():
            if service.failed.is_set():
                raise ApiError(503, f"the reranker model failed to load: {service.error}", "model_unavailable")
            raise ApiError(503, "the reranker model is still loading", "model_loading", _LOADING_RETRY_AFTER)

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

        try:
            batcher.ensure_room()  # refuse before spending CPU on tokenizing
            if batcher.token_path:
                sequences = await run_in_threadpool(batcher.tokenize, req.query, req.documents, req.instruction)
                total_tokens = sum(len(s) for s in sequences)
                future = batcher.submit_sequences(sequences)
            else:
                total_tokens = 0
                future = batcher.submit(req.query, req.documents, req.instruction)
        except QueueFull as exc:
            raise _overloaded(exc) from exc
        except BatcherStopped as exc:
            raise ApiError(503, str(exc), "service_unavailable", _LOADING_RETRY_AFTER) from exc
        try:
            scores = await asyncio.wrap_future(future)
        except BatcherStopped as exc:
            raise ApiError(503, str(exc), "service_unavailable", _LOADING_RETRY_AFTER) from exc
        except Exception as exc:
            log.exception("reranking failed")
            raise ApiError(500, f"the reranker failed: {type(exc).__name__}: {exc}", "internal_error") from exc

        results = [
            RerankResult(
                index=i,
                relevance_score=float(scores[i]),
                document=RerankDocument(text=req.documents[i]) if req.return_documents else None,
            )
            for i in rank_order(scores)[: req.top_n]  # top_n None: every document
        ]
        response = RerankResponse(model=model_name, results=results, usage=RerankUsage(total_tokens=total_tokens))
        return JSONResponse(response.to_json())

    api.add_api_route("/v1/rerank", rerank, methods=["POST"])
    api.add_api_route("/rerank", rerank, methods=["POST"], include_in_schema=False)  # vLLM / infinity alias
    return api


def _overloaded(exc: QueueFull) -> ApiError:
    return ApiError(503, str(exc), "overloaded_error", exc.retry_after)


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
