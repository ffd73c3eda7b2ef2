"""`ragbot rerank-server` over real HTTP (uvicorn on a free port) with the tiny random-weight checkpoint.

The /v1/rerank contract (fields, order, top_n, return_documents, usage, model), every 4xx case, /healthz, /readyz
503-then-200, /metrics, the queue-full 503, that server scores equal the in-process engine's `score()` whether
or not the batcher combined requests, and that one huge request never makes a forward pass larger than the
engine's token budget."""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from rerank.batching import BatcherStopped, DynamicBatcher, QueueFull
from rerank.qwen3 import Qwen3Reranker
from rerank.server import create_rerank_app

TOL = 1e-5
MODEL_NAME = "qwen3-tiny-test"

QUERY = "How do I reset my SSO password?"
DOCS = [
    "Open the SSO portal, click 'Forgot password' and follow the link we email to you.",
    "Expense reports are due on the fifth business day of every month.",
    "The VPN client must be installed before you can reach the internal wiki from home.",
    "",
    "打开单点登录门户，点击“忘记密码”，然后按照邮件中的链接操作。",
]
INSTRUCTION = "Given an IT help desk question, find the passage with the exact steps"


class RunningRerankServer:
    """`create_rerank_app` served by uvicorn on 127.0.0.1:<free port>, lifespan on (the model loads at
    startup on a background thread, as in `ragbot rerank-server`)."""

    def __init__(self, app: Any, wait_ready: bool = True) -> None:
        self.app = app
        self.service = app.state.service
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.time() + 30
        while not self._server.started:
            if time.time() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(base_url=self.url, timeout=60)
        if wait_ready:
            assert self.service.wait_ready(60), f"model did not load: {self.service.error}"

    @property
    def batcher(self) -> DynamicBatcher:
        return self.service.batcher

    def rerank(self, **body: Any) -> httpx.Response:
        return self.http.post("/v1/rerank", json=body)

    def stop(self) -> None:
        self.http.close()
        self._server.should_exit = True
        self._thread.join(timeout=30)


def serve(make_reranker: Callable[..., Any], engine_kwargs: dict[str, Any] | None = None, **options: Any) -> Any:
    """A running server over a fresh engine on the tiny checkpoint. `options`: DynamicBatcher's keywords plus
    create_rerank_app's limits."""
    app_keys = {
        "max_documents",
        "max_instruction_chars",
        "max_query_chars",
        "max_document_chars",
        "max_request_chars",
        "api_key",
        "warmup",
    }
    app_kwargs = {k: options.pop(k) for k in list(options) if k in app_keys}
    engine = make_reranker(**(engine_kwargs or {}))

    def factory() -> DynamicBatcher:
        return DynamicBatcher(engine, **options)

    return RunningRerankServer(create_rerank_app(factory, MODEL_NAME, **app_kwargs))


@pytest.fixture(scope="module")
def server(make_reranker: Callable[..., Any]) -> Iterator[RunningRerankServer]:
    running = serve(make_reranker, max_documents=50, max_instruction_chars=200, max_query_chars=300)
    yield running
    running.stop()


def assert_close(got: list[float], want: list[float]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert abs(g - w) <= TOL, (got, want)


def in_input_order(results: list[dict[str, Any]], n: int) -> list[float]:
    scores = [0.0] * n
    for r in results:
        scores[r["index"]] = r["relevance_score"]
    return scores


# -- the contract --------------------------------------------------------------------------------------------


def test_response_fields_order_top_n_documents_usage(server: RunningRerankServer, reranker: Qwen3Reranker) -> None:
    resp = server.rerank(query=QUERY, documents=DOCS, top_n=3, return_documents=True, model="anything")
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert set(data) == {"model", "results", "usage"}
    assert data["model"] == MODEL_NAME
    results = data["results"]
    assert len(results) == 3
    scores = [r["relevance_score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    want = reranker.score(QUERY, DOCS)
    best_first = sorted(range(len(DOCS)), key=lambda i: -want[i])[:3]
    assert [r["index"] for r in results] == best_first
    for r in results:
        assert set(r) == {"index", "relevance_score", "document"}
        assert r["document"] == {"text": DOCS[r["index"]]}
        assert abs(r["relevance_score"] - want[r["index"]]) <= TOL
    # usage counts the templated sequences the engine scored (all documents, not just the top_n)
    assert data["usage"]["total_tokens"] == sum(len(s) for s in reranker.tokenize(QUERY, DOCS))


def test_all_results_without_documents_by_default(server: RunningRerankServer, reranker: Qwen3Reranker) -> None:
    resp = server.rerank(query=QUERY, documents=DOCS)
    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    assert sorted(r["index"] for r in results) == list(range(len(DOCS)))
    assert all(set(r) == {"index", "relevance_score"} for r in results)
    assert [r["relevance_score"] for r in results] == sorted((r["relevance_score"] for r in results), reverse=True)
    # single request: the same scores as the in-process engine
    assert_close(in_input_order(results, len(DOCS)), reranker.score(QUERY, DOCS))
    # top_n larger than the documents: all of them; Cohere/Jina object documents are read too
    objects = [{"text": d} for d in DOCS]
    resp = server.rerank(query=QUERY, documents=objects, top_n=100, return_documents=False)
    assert resp.status_code == 200 and len(resp.json()["results"]) == len(DOCS)


def test_instruction_is_honoured(server: RunningRerankServer, reranker: Qwen3Reranker) -> None:
    default = in_input_order(server.rerank(query=QUERY, documents=DOCS).json()["results"], len(DOCS))
    resp = server.rerank(query=QUERY, documents=DOCS, instruction=INSTRUCTION)
    assert resp.status_code == 200
    custom = in_input_order(resp.json()["results"], len(DOCS))
    assert_close(custom, reranker.score(QUERY, DOCS, INSTRUCTION))
    assert max(abs(a - b) for a, b in zip(custom, default, strict=True)) > 1e-4
    # blank or null instruction: the model card's default
    for blank in (None, "", "   "):
        resp = server.rerank(query=QUERY, documents=DOCS, instruction=blank)
        assert_close(in_input_order(resp.json()["results"], len(DOCS)), default)


BAD_REQUESTS: list[tuple[str, Any]] = [
    ("no documents field", {"query": QUERY}),
    ("empty documents", {"query": QUERY, "documents": []}),
    ("documents not a list", {"query": QUERY, "documents": "just one string"}),
    ("too many documents", {"query": QUERY, "documents": ["doc"] * 51}),
    ("a number as document", {"query": QUERY, "documents": ["ok", 3]}),
    ("null document", {"query": QUERY, "documents": [None]}),
    ("nested list document", {"query": QUERY, "documents": [["a", "b"]]}),
    ("object without text", {"query": QUERY, "documents": [{"content": "a"}]}),
    ("instruction too long", {"query": QUERY, "documents": DOCS, "instruction": "x" * 201}),
    ("instruction not a string", {"query": QUERY, "documents": DOCS, "instruction": 7}),
    ("top_n zero", {"query": QUERY, "documents": DOCS, "top_n": 0}),
    ("top_n negative", {"query": QUERY, "documents": DOCS, "top_n": -2}),
    ("top_n a string", {"query": QUERY, "documents": DOCS, "top_n": "3"}),
    ("top_n a float", {"query": QUERY, "documents": DOCS, "top_n": 1.5}),
    ("top_n a boolean", {"query": QUERY, "documents": DOCS, "top_n": True}),
    ("empty query", {"query": "", "documents": DOCS}),
    ("blank query", {"query": "  \n ", "documents": DOCS}),
    ("missing query", {"documents": DOCS}),
    ("query not a string", {"query": ["q"], "documents": DOCS}),
    ("query too long", {"query": "q" * 301, "documents": DOCS}),
    ("return_documents not a boolean", {"query": QUERY, "documents": DOCS, "return_documents": "yes"}),
    ("model not a string", {"query": QUERY, "documents": DOCS, "model": 1}),
    ("body is a list", [QUERY, DOCS]),
]


@pytest.mark.parametrize(("case", "body"), BAD_REQUESTS, ids=[c for c, _ in BAD_REQUESTS])
def test_bad_requests_get_400_with_a_json_error(server: RunningRerankServer, case: str, body: Any) -> None:
    resp = server.http.post("/v1/rerank", json=body)
    assert resp.status_code == 400, (case, resp.status_code, resp.text)
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert isinstance(error["message"], str) and error["message"]


def test_malformed_bodies_and_routes_are_4xx(server: RunningRerankServer) -> None:
    for content in (b"{not json", b"", b"\xff\xfe"):
        resp = server.http.post("/v1/rerank", content=content, headers={"Content-Type": "application/json"})
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"]["type"] == "invalid_request_error"
    resp = server.http.get("/v1/rerank")
    assert resp.status_code == 405 and "error" in resp.json()
    resp = server.http.post("/v2/nothing", json={})
    assert resp.status_code == 404 and "error" in resp.json()
    # the /rerank alias (vLLM, infinity) answers like /v1/rerank
    assert server.http.post("/rerank", json={"query": QUERY, "documents": DOCS}).status_code == 200


def test_oversized_body_is_413(make_reranker: Callable[..., Any]) -> None:
    running = serve(make_reranker, max_documents=10, max_document_chars=1000, max_request_chars=1000)
    try:
        limit = running.app.state.limits.max_body_bytes  # derived from the character limits
        resp = running.rerank(query=QUERY, documents=["x" * (limit + 1)])
        assert resp.status_code == 413
        assert resp.json()["error"]["type"] == "payload_too_large"
        assert str(limit) in resp.json()["error"]["message"]
    finally:
        running.stop()


def test_metrics_count_requests_pairs_tokens_and_batches(server: RunningRerankServer) -> None:
    before = server.batcher.stats()
    for _ in range(2):
        assert server.rerank(query=QUERY, documents=DOCS[:3]).status_code == 200
    assert server.rerank(query=QUERY, documents=[]).status_code == 400
    resp = server.http.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    samples = _samples(text)
    assert samples['rerank_requests_total{status="200"}'] >= 2
    assert samples['rerank_requests_total{status="400"}'] >= 1
    after = server.batcher.stats()
    assert after.pairs - before.pairs == 6
    assert samples["rerank_pairs_total"] == after.pairs
    assert samples["rerank_tokens_total"] == after.tokens > 0
    assert samples["rerank_batch_requests_count"] == after.batches
    assert samples["rerank_queue_wait_seconds_count"] == after.completed
    assert samples["rerank_request_seconds_count"] >= 3
    for name in ("rerank_batch_pairs_bucket", "rerank_batch_seconds_sum", "rerank_queue_depth", "rerank_ready"):
        assert any(key.startswith(name) for key in samples), name
    assert samples["rerank_ready"] == 1


def _samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


# -- readiness -----------------------------------------------------------------------------------------------


def test_readyz_is_503_until_the_model_is_loaded_and_healthz_200_throughout(make_reranker: Callable[..., Any]) -> None:
    release = threading.Event()

    def slow_factory() -> DynamicBatcher:
        assert release.wait(30)
        return DynamicBatcher(make_reranker())

    running = RunningRerankServer(create_rerank_app(slow_factory, MODEL_NAME), wait_ready=False)
    try:
        resp = running.http.get("/readyz")
        assert resp.status_code == 503
        assert resp.json()["status"] == "loading"
        assert "Retry-After" in resp.headers
        alive = running.http.get("/healthz")
        assert alive.status_code == 200 and alive.json() == {"status": "ok", "model": MODEL_NAME, "ready": False}
        resp = running.rerank(query=QUERY, documents=DOCS)
        assert resp.status_code == 503
        assert resp.json()["error"]["type"] == "model_loading"
        assert "Retry-After" in resp.headers
        release.set()
        assert running.service.wait_ready(30)
        resp = running.http.get("/readyz")
        assert resp.status_code == 200 and resp.json() == {"status": "ok", "model": MODEL_NAME}
        assert running.http.get("/healthz").json() == {"status": "ok", "model": MODEL_NAME, "ready": True}
        assert running.rerank(query=QUERY, documents=DOCS).status_code == 200
    finally:
        release.set()
        running.stop()


def test_a_model_that_fails_to_load_keeps_readyz_503_with_the_reason(tmp_path: Any) -> None:
    from rerank import RerankerLoadError

    def broken() -> DynamicBatcher:
        raise RerankerLoadError(f"Cannot load reranker model {str(tmp_path)!r}: no such folder")

    running = RunningRerankServer(create_rerank_app(broken, MODEL_NAME), wait_ready=False)
    try:
        assert not running.service.wait_ready(10)
        resp = running.http.get("/readyz")
        assert resp.status_code == 503 and "no such folder" in resp.json()["error"]
        resp = running.rerank(query=QUERY, documents=DOCS)
        assert resp.status_code == 503 and "no such folder" in resp.json()["error"]["message"]
    finally:
        running.stop()


# -- dynamic batching ----------------------------------------------------------------------------------------


class ForwardRecorder:
    """Wraps `Qwen3Reranker._forward` to record each pass's shape (rows, padded tokens)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, stub: bool = False) -> None:
        self.passes: list[tuple[int, int]] = []
        self._lock = threading.Lock()
        original = Qwen3Reranker._forward
        recorder = self

        def forward(self: Qwen3Reranker, rows: list[list[int]], cache: Any, offset: int) -> list[float]:
            with recorder._lock:
                recorder.passes.append((len(rows), len(rows) * max(len(r) for r in rows)))
            if stub:
                return [0.5] * len(rows)
            return original(self, rows, cache, offset)

        monkeypatch.setattr(Qwen3Reranker, "_forward", forward)

    def reset(self) -> None:
        with self._lock:
            self.passes.clear()


def test_concurrent_requests_share_forward_passes_and_keep_exact_scores(
    make_reranker: Callable[..., Any], reranker: Qwen3Reranker, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = 6
    questions = [(f"{QUERY} (variant {i})", DOCS[i % 3 : i % 3 + 3], INSTRUCTION if i % 2 else None) for i in range(n)]
    want = [reranker.score(q, d, inst) for q, d, inst in questions]
    # max_padding=1.0: passes may mix lengths (as on a GPU), so requests really share passes on this CPU too;
    # max_batch_requests=n: the worker closes the group as soon as all n are queued (max_wait_ms is a bound).
    running = serve(make_reranker, {"max_padding": 1.0}, max_wait_ms=5000, max_batch_requests=n)
    try:
        recorder = ForwardRecorder(monkeypatch)
        barrier = threading.Barrier(n)

        def ask(i: int) -> list[float]:
            q, d, inst = questions[i]
            barrier.wait()
            resp = running.rerank(query=q, documents=d, instruction=inst)
            assert resp.status_code == 200, resp.text
            return in_input_order(resp.json()["results"], len(d))

        with concurrent.futures.ThreadPoolExecutor(n) as pool:
            got = list(pool.map(ask, range(n)))
        for g, w in zip(got, want, strict=True):
            assert_close(g, w)
        stats = running.batcher.stats()
        assert stats.combined_batches >= 1, stats
        assert stats.max_batch_requests_seen >= 2
        # at least one forward pass carried more rows than any one request has documents
        assert max(rows for rows, _ in recorder.passes) > 3, recorder.passes

        # and one request on its own (the per-question prefix cache) still matches the engine
        recorder.reset()
        resp = running.rerank(query=QUERY, documents=DOCS, instruction=INSTRUCTION)
        assert_close(in_input_order(resp.json()["results"], len(DOCS)), reranker.score(QUERY, DOCS, INSTRUCTION))
        assert running.batcher.stats().batch_sizes.get(1, 0) >= 1
    finally:
        running.stop()


def test_full_queue_answers_503_with_retry_after(make_reranker: Callable[..., Any]) -> None:
    engine = make_reranker()
    gate, entered, armed = threading.Event(), threading.Event(), threading.Event()
    real = engine.score_token_ids

    def blocking_score_token_ids(sequences: Any) -> list[float]:
        if armed.is_set():
            entered.set()
            assert gate.wait(30)
        return real(sequences)

    engine.score_token_ids = blocking_score_token_ids
    app = create_rerank_app(lambda: DynamicBatcher(engine, max_wait_ms=0, max_queue=1), MODEL_NAME)
    running = RunningRerankServer(app)
    pool = concurrent.futures.ThreadPoolExecutor(2)
    try:
        armed.set()
        first = pool.submit(running.rerank, query=QUERY, documents=DOCS)  # taken by the worker, which blocks
        assert entered.wait(10)
        second = pool.submit(running.rerank, query=QUERY, documents=DOCS[:2])  # waits in the queue
        deadline = time.time() + 10
        while running.batcher.stats().queue_depth < 1:
            assert time.time() < deadline
            time.sleep(0.01)
        third = running.rerank(query=QUERY, documents=DOCS[:1])  # no room: refused at once
        assert third.status_code == 503
        assert third.json()["error"]["type"] == "overloaded_error"
        assert int(third.headers["Retry-After"]) >= 1
        with pytest.raises(QueueFull):
            running.batcher.submit(QUERY, DOCS[:1])
        gate.set()
        assert first.result(30).status_code == 200
        assert second.result(30).status_code == 200
        assert running.batcher.stats().rejected == 2
        assert 'rerank_requests_total{status="503"} 1.0' in running.http.get("/metrics").text
    finally:
        gate.set()
        pool.shutdown(wait=True)
        running.stop()


# -- memory ---------------------------------------------------------------------------------------------------


def test_forward_passes_stay_under_the_token_budget_for_a_huge_request(
    make_reranker: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """100 documents of ~8,192 tokens in ONE request: no forward pass may hold more than batch_tokens padded
    tokens. The passes are recorded by wrapping `Qwen3Reranker._forward`, which here returns a constant instead
    of running the model (50 real passes of 16k tokens take minutes on a small CPU; the shapes are the point)."""
    budget = 16384
    recorder = ForwardRecorder(monkeypatch, stub=True)
    running = serve(
        make_reranker,
        {"max_length": 8192, "batch_tokens": budget, "max_padding": 1.0},
        max_documents=100,
        max_document_chars=100_000,
        max_request_chars=10_000_000,
        warmup=False,
    )
    try:
        words = "the vpn client must be installed before you can reach the internal wiki from home".split()
        docs = [" ".join(words[(i + j) % len(words)] for j in range(7000 + 40 * i)) for i in range(100)]
        recorder.reset()
        resp = running.http.post("/v1/rerank", content=json.dumps({"query": QUERY, "documents": docs}))
        assert resp.status_code == 200, resp.text[:300]
        usage = resp.json()["usage"]["total_tokens"]
        assert usage > 100 * 7000  # the documents really are ~8k tokens each (the longest are truncated)
        assert sum(rows for rows, _ in recorder.passes) == 100  # every document scored
        largest = max(padded for _, padded in recorder.passes)
        assert largest <= budget, recorder.passes
        assert max(rows for rows, _ in recorder.passes) >= 2  # the budget, not a one-row rule, bounds a pass
    finally:
        running.stop()


def test_load_bench_runs_on_the_tiny_checkpoint(tiny_checkpoint: Any, capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / "rerank_load.py"
    spec = importlib.util.spec_from_file_location("rerank_load", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["rerank_load"] = module
    try:
        spec.loader.exec_module(module)
        argv = ["--checkpoint", str(tiny_checkpoint), "--concurrency", "1,3", "--requests", "1", "--docs", "3"]
        code = module.main([*argv, "--min-tokens", "20", "--max-tokens", "40", "--max-wait-ms", "50"])
    finally:
        sys.modules.pop("rerank_load", None)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "req/s" in out and "pairs/s" in out and "req/batch" in out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith(("1 ", "3 "))]
    assert [r[0] for r in rows] == ["1", "3"] and all(r[2] == "0" for r in rows), out


# -- the batcher on its own ----------------------------------------------------------------------------------


class FakeEngine:
    """Token-path engine: a sequence's score is its length / 1000; a sequence holding -1 makes the call fail."""

    name = "fake"
    batch_tokens = 1000

    def __init__(self) -> None:
        self.calls: list[int] = []

    def tokenize(self, query: str, documents: list[str], instruction: str | None = None) -> list[list[int]]:
        return [[1] * len(query) + ([-1] if d == "poison" else [2] * len(d)) for d in documents]

    def score_token_ids(self, sequences: list[list[int]]) -> list[float]:
        self.calls.append(len(sequences))
        if any(-1 in s for s in sequences):
            raise ValueError("poisoned document")
        return [len(s) / 1000 for s in sequences]

    def score(self, query: str, documents: list[str], instruction: str | None = None) -> list[float]:
        return self.score_token_ids(self.tokenize(query, documents, instruction))


def test_a_failing_request_does_not_fail_the_requests_batched_with_it() -> None:
    engine = FakeEngine()
    with DynamicBatcher(engine, max_wait_ms=5000, max_batch_requests=3) as batcher:
        good1 = batcher.submit("q", ["ab", "abc"])
        bad = batcher.submit("q", ["ab", "poison"])
        good2 = batcher.submit("qq", ["a"])
        assert good1.result(10) == [0.003, 0.004]
        assert good2.result(10) == [0.003]
        with pytest.raises(ValueError, match="poisoned"):
            bad.result(10)
        stats = batcher.stats()
    assert engine.calls[0] == 5  # first the combined call, then each request alone
    assert (stats.completed, stats.failed, stats.combined_batches) == (2, 1, 1)


def test_plain_rerankers_are_served_one_request_per_call_and_stop_fails_the_queue() -> None:
    class Plain:
        name = "plain"

        def __init__(self) -> None:
            self.gate = threading.Event()

        def score(self, query: str, documents: list[str], instruction: str | None = None) -> list[float]:
            assert self.gate.wait(10)
            return [0.5 if instruction else 0.25] * len(documents)

    plain = Plain()
    batcher = DynamicBatcher(plain, max_wait_ms=0, max_queue=2).start()
    assert not batcher.token_path
    first = batcher.submit("q", ["a", "b"], "inst")
    deadline = time.time() + 10
    while batcher.stats().queue_depth:  # the worker has taken the first request
        assert time.time() < deadline
        time.sleep(0.01)
    queued = [batcher.submit("q", ["c"]), batcher.submit("q", ["d"])]
    with pytest.raises(QueueFull):
        batcher.submit("q", ["e"])
    plain.gate.set()
    assert first.result(10) == [0.5, 0.5]
    assert [f.result(10) for f in queued] == [[0.25], [0.25]]
    assert batcher.stats().combined_batches == 0
    plain.gate.clear()
    blocked = batcher.submit("q", ["f"])
    waiting = batcher.submit("q", ["g"])
    while batcher.stats().queue_depth > 1:
        time.sleep(0.01)
    threading.Timer(0.2, plain.gate.set).start()
    batcher.stop()
    assert blocked.result(10) == [0.25]  # the call in progress finishes
    with pytest.raises(BatcherStopped):
        waiting.result(10)
    with pytest.raises(BatcherStopped):
        batcher.submit("q", ["h"])
