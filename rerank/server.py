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

The engine (`rerank.qwen3`, `rerank.batching`) never imports FastAPI; this module is the API server around it,
the split vLLM makes between its engine and its OpenAI-compatible server.
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
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from rerank.batching import BatcherStopped, BatchInfo, DynamicBatcher, QueueFull

log = logging.getLogger(__name__)

__all__ = ["RerankService", "create_rerank_app", "run_rerank_server"]

_LOADING_RETRY_AFTER = 5


class ApiError(Exception):
    def __init__(self, status: int, message: str, type_: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.retry_after = retry_after


def error_response(status: int, message: str, type_: str, retry_after: float | None = None) -> JSONResponse:
    headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if retry_after is not None else None
    return JSONResponse({"error": {"message": message, "type": type_}}, status_code=status, headers=headers)


@dataclass
class RerankRequest:
    query: str
    documents: list[str]
    top_n: int
    instruction: str | None
    return_documents: bool


def _invalid(message: str) -> ApiError:
    return ApiError(400, message, "invalid_request_error")


def parse_rerank_request(
    payload: Any, *, max_documents: int, max_instruction_chars: int, max_query_chars: int
) -> RerankRequest:
    """Validate a /v1/rerank body; raises `ApiError` (400) with a message naming the field."""
    if not isinstance(payload, dict):
        raise _invalid("the request body must be a JSON object")
    model = payload.get("model")
    if model is not None and not isinstance(model, str):
        raise _invalid("'model' must be a string")

    query = payload.get("query")
    if query is None:
        raise _invalid("'query' is required")
    if not isinstance(query, str):
        raise _invalid("'query' must be a string")
    if not query.strip():
        raise _invalid("'query' must not be empty")
    if len(query) > max_query_chars:
        raise _invalid(f"'query' is {len(query)} characters long; the limit is {max_query_chars}")

    documents = payload.get("documents")
    if documents is None:
        raise _invalid("'documents' is required")
    if not isinstance(documents, list):
        raise _invalid("'documents' must be a list of strings")
    if not documents:
        raise _invalid("'documents' must not be empty")
    if len(documents) > max_documents:
        raise _invalid(f"'documents' has {len(documents)} entries; the limit is {max_documents}")
    texts: list[str] = []
    for i, doc in enumerate(documents):
        if isinstance(doc, dict) and isinstance(doc.get("text"), str):  # Cohere / Jina object form
            doc = doc["text"]
        if not isinstance(doc, str):
            raise _invalid(f"'documents[{i}]' must be a string (or {{\"text\": string}}), not {_json_type(doc)}")
        texts.append(doc)

    top_n = payload.get("top_n")
    if top_n is None:
        top_n = len(texts)
    elif isinstance(top_n, bool) or not isinstance(top_n, int):
        raise _invalid("'top_n' must be an integer")
    elif top_n < 1:
        raise _invalid(f"'top_n' must be at least 1, not {top_n}")

    instruction = payload.get("instruction")
    if instruction is not None:
        if not isinstance(instruction, str):
            raise _invalid("'instruction' must be a string")
        if len(instruction) > max_instruction_chars:
            raise _invalid(f"'instruction' is {len(instruction)} characters long; the limit is {max_instruction_chars}")

    return_documents = payload.get("return_documents")
    if return_documents is None:
        return_documents = False
    elif not isinstance(return_documents, bool):
        raise _invalid("'return_documents' must be true or false")

    return RerankRequest(query, texts, min(top_n, len(texts)), instruction, return_documents)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "an object"}.get(
        type(value), type(value).__name__
    )


class RerankMetrics:
    """The service's Prometheus metrics, in a registry of their own (several apps can live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("rerank_requests", "POST /v1/rerank requests by HTTP status.", ["status"], registry=r)
        self.pairs = Counter("rerank_pairs", "Query-document pairs scored.", registry=r)
        self.tokens = Counter("rerank_tokens", "Tokens scored (templated sequences).", registry=r)
        self.batch_requests = Histogram(
            "rerank_batch_requests",
            "Requests combined in one engine batch.",
            buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128),
            registry=r,
        )
        self.batch_pairs = Histogram(
            "rerank_batch_pairs",
            "Query-document pairs in one engine batch.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000),
            registry=r,
        )
        self.batch_tokens = Histogram(
            "rerank_batch_tokens",
            "Tokens in one engine batch.",
            buckets=(256, 1024, 4096, 16384, 65536, 262144, 1048576),
            registry=r,
        )
        self.batch_seconds = Histogram(
            "rerank_batch_seconds",
            "Engine time of one batch.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.queue_wait = Histogram(
            "rerank_queue_wait_seconds",
            "Time a request waited in the queue before its batch started.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.latency = Histogram(
            "rerank_request_seconds",
            "POST /v1/rerank latency, from request to response.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.failed_batches = Counter("rerank_failed_batches", "Engine batches that raised.", registry=r)
        self.queue_depth = Gauge("rerank_queue_depth", "Requests waiting for the engine.", registry=r)
        self.ready = Gauge("rerank_ready", "1 once the model is loaded and warmed up.", registry=r)

    def observe_batch(self, info: BatchInfo) -> None:
        self.batch_requests.observe(info.requests)
        self.batch_pairs.observe(info.pairs)
        self.batch_tokens.observe(info.tokens)
        self.batch_seconds.observe(info.seconds)
        for wait in info.queue_waits:
            self.queue_wait.observe(wait)
        self.pairs.inc(info.pairs)
        self.tokens.inc(info.tokens)
        if not info.ok:
            self.failed_batches.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


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

        order = sorted(range(len(scores)), key=lambda i: -scores[i])[: req.top_n]
        results: list[dict[str, Any]] = []
        for i in order:
            item: dict[str, Any] = {"index": i, "relevance_score": float(scores[i])}
            if req.return_documents:
                item["document"] = {"text": req.documents[i]}
            results.append(item)
        return JSONResponse({"model": model_name, "results": results, "usage": {"total_tokens": total_tokens}})

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
    model: str,
    device: str = "auto",
    host: str = "127.0.0.1",
    port: int = 8080,
    dtype: str = "auto",
    batch_tokens: int = 16384,
    max_length: int = 8192,
    max_wait_ms: float = 5.0,
    max_queue: int = 256,
    max_documents: int = 1000,
) -> None:
    """Serve `model` until interrupted. The port opens at once (`/healthz` 503 while the model loads); if the
    model cannot be loaded the server stops and the loading error (`RerankerLoadError`) is raised."""
    import uvicorn

    factory = qwen3_batcher_factory(model, device, dtype, batch_tokens, max_length, max_wait_ms, max_queue)
    app = create_rerank_app(factory, model, max_documents=max_documents)
    service: RerankService = app.state.service
    service.log_load_errors = False  # raised below, once, for the command line to print
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))

    def watch() -> None:
        service.wait_ready()
        if service.ready.is_set():
            batcher = service.batcher
            engine = batcher.reranker if batcher else None
            print(
                f"Reranker ready: {model} on {getattr(engine, 'device', device)} "
                f"(batch_tokens={batch_tokens}, max_wait_ms={max_wait_ms:g}, max_queue={max_queue}); "
                f"POST http://{host}:{port}/v1/rerank",
                file=sys.stderr,
                flush=True,
            )
        elif service.failed.is_set():
            server.should_exit = True

    threading.Thread(target=watch, name="rerank-watch", daemon=True).start()
    server.run()
    if service.error is not None:
        raise service.error
