"""`HttpReranker` against `ragbot rerank-server` on 127.0.0.1 (real uvicorn, tiny checkpoint), and against a
scripted local server for the parts other servers do differently: instruction in the query, 503 then 200,
timeouts, errors, logits, result order and shapes."""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import uvicorn

from rerank.base import DEFAULT_INSTRUCTION, Reranker
from rerank.batching import DynamicBatcher
from rerank.http import HttpReranker, RerankerUnavailableError
from rerank.server import create_rerank_app

TOL = 1e-5
QUERY = "How do I reset my SSO password?"
DOCS = [
    "Expense reports are due on the fifth business day of every month.",
    "Open the SSO portal, click 'Forgot password' and follow the link we email to you.",
    "The VPN client must be installed before you can reach the internal wiki from home.",
    "打开单点登录门户，点击“忘记密码”，然后按照邮件中的链接操作。",
]
INSTRUCTION = "Given an IT help desk question, find the passage with the exact steps"


# -- ragbot's own server ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server_url(make_reranker: Callable[..., Any]) -> Iterator[str]:
    engine = make_reranker()
    app = create_rerank_app(lambda: DynamicBatcher(engine), "qwen3-tiny-test")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        assert time.time() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    assert app.state.service.wait_ready(60)
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=30)


def close(got: list[float], want: list[float]) -> bool:
    return len(got) == len(want) and all(abs(g - w) <= TOL for g, w in zip(got, want, strict=True))


def test_scores_in_input_order_equal_the_engine(server_url: str, reranker: Any) -> None:
    remote = HttpReranker(server_url)
    assert isinstance(remote, Reranker)
    got = remote.score(QUERY, DOCS)
    assert close(got, reranker.score(QUERY, DOCS))
    assert got != sorted(got, reverse=True)  # the server answers best first; we map back by index
    assert remote.server_model == "qwen3-tiny-test"
    assert remote.score(QUERY, []) == []
    # base URL with a slash, the full endpoint, and the /rerank alias all reach the same scores
    for url in (server_url + "/", server_url + "/v1/rerank", server_url + "/rerank"):
        assert close(HttpReranker(url).score(QUERY, DOCS), got)


def test_instruction_is_honoured(server_url: str, reranker: Any) -> None:
    remote = HttpReranker(server_url)
    default = remote.score(QUERY, DOCS)
    custom = remote.score(QUERY, DOCS, INSTRUCTION)
    assert close(custom, reranker.score(QUERY, DOCS, INSTRUCTION))
    assert max(abs(a - b) for a, b in zip(custom, default, strict=True)) > 1e-4
    assert close(remote.score(QUERY, DOCS, None), default)


def test_server_errors_become_unavailable_errors(server_url: str) -> None:
    too_long = "x" * 5000  # the server's default max_query_chars is 4000: a 400, not retried
    with pytest.raises(RerankerUnavailableError, match=r"127\.0\.0\.1.*HTTP 400.*query"):
        HttpReranker(server_url).score(too_long, DOCS)


def test_closed_port_fails_fast_with_the_url() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    remote = HttpReranker(f"http://127.0.0.1:{port}", timeout=5)
    started = time.perf_counter()
    with pytest.raises(RerankerUnavailableError) as info:
        remote.score(QUERY, DOCS)
    assert time.perf_counter() - started < 3
    message = str(info.value)
    assert f"http://127.0.0.1:{port}/v1/rerank" in message and "cannot connect" in message
    assert "\n" not in message


# -- a scripted server ----------------------------------------------------------------------------------------


class Scripted:
    """A local HTTP server that answers from a script of (status, headers, body, delay) and records requests."""

    def __init__(self, *script: tuple[int, dict[str, str], Any, float]) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                owner.requests.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(body)})
                status, headers, payload, delay = owner.script.pop(0) if len(owner.script) > 1 else owner.script[0]
                if delay:
                    time.sleep(delay)
                if callable(payload):
                    payload = payload(owner.requests[-1]["json"])
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def ok(scores: list[float], key: str = "relevance_score") -> Callable[[dict[str, Any]], Any]:
    """A Cohere/Jina-style answer: best first, `index` into the request's documents."""

    def answer(_: dict[str, Any]) -> Any:
        order = sorted(range(len(scores)), key=lambda i: -scores[i])
        return {"model": "remote-model", "results": [{"index": i, key: scores[i]} for i in order]}

    return answer


@pytest.fixture
def scripted() -> Iterator[Callable[..., Scripted]]:
    made: list[Scripted] = []

    def make(*script: tuple[int, dict[str, str], Any, float]) -> Scripted:
        made.append(Scripted(*script))
        return made[-1]

    yield make
    for s in made:
        s.close()


def test_request_body_headers_and_result_mapping(scripted: Callable[..., Scripted]) -> None:
    server = scripted((200, {}, ok([0.1, 0.9, 0.5, 0.3]), 0))
    remote = HttpReranker(server.url, api_key="sk-test", model="Qwen/Qwen3-Reranker-0.6B")
    assert remote.score(QUERY, DOCS, INSTRUCTION) == [0.1, 0.9, 0.5, 0.3]
    (req,) = server.requests
    assert req["path"] == "/v1/rerank"
    assert req["headers"]["Authorization"] == "Bearer sk-test"
    assert req["json"] == {
        "query": QUERY,
        "documents": DOCS,
        "top_n": len(DOCS),
        "return_documents": False,
        "model": "Qwen/Qwen3-Reranker-0.6B",
        "instruction": INSTRUCTION,
    }
    assert remote.name == "Qwen/Qwen3-Reranker-0.6B"
    HttpReranker(server.url).score(QUERY, DOCS)
    assert "Authorization" not in server.requests[-1]["headers"]
    assert "instruction" not in server.requests[-1]["json"] and "model" not in server.requests[-1]["json"]


def test_instruction_mode_query_sends_the_formatted_query(scripted: Callable[..., Scripted]) -> None:
    server = scripted((200, {}, ok([0.2, 0.4, 0.6, 0.8]), 0))
    remote = HttpReranker(server.url, instruction_mode="query")
    remote.score(QUERY, DOCS, INSTRUCTION)
    remote.score(QUERY, DOCS)
    first, second = (r["json"] for r in server.requests)
    assert first["query"] == f"<Instruct>: {INSTRUCTION}\n<Query>: {QUERY}"
    assert second["query"] == f"<Instruct>: {DEFAULT_INSTRUCTION}\n<Query>: {QUERY}"
    assert "instruction" not in first and "instruction" not in second
    with pytest.raises(ValueError):
        HttpReranker(server.url, instruction_mode="prompt")  # type: ignore[arg-type]


def test_503_then_200_is_retried_once_after_retry_after(scripted: Callable[..., Scripted]) -> None:
    busy = {"error": {"message": "the reranker queue is full", "type": "overloaded_error"}}
    server = scripted((503, {"Retry-After": "1"}, busy, 0), (200, {}, ok([0.3, 0.7, 0.1, 0.2]), 0))
    started = time.perf_counter()
    assert HttpReranker(server.url, timeout=5).score(QUERY, DOCS) == [0.3, 0.7, 0.1, 0.2]
    assert len(server.requests) == 2
    assert time.perf_counter() - started >= 0.9  # it waited for Retry-After


def test_retry_after_is_capped_and_a_second_failure_raises(scripted: Callable[..., Scripted]) -> None:
    busy = {"error": {"message": "model is loading", "type": "model_loading"}}
    server = scripted((503, {"Retry-After": "3600"}, busy, 0))
    remote = HttpReranker(server.url, max_retry_after=0.2)
    started = time.perf_counter()
    with pytest.raises(RerankerUnavailableError, match=r"HTTP 503 \(model is loading\)") as info:
        remote.score(QUERY, DOCS)
    assert time.perf_counter() - started < 2
    assert len(server.requests) == 2  # one retry, not more
    assert server.url in str(info.value)


def test_500_is_retried_once_400_is_not(scripted: Callable[..., Scripted]) -> None:
    flaky = scripted((500, {}, {"detail": "boom"}, 0), (200, {}, ok([0.5, 0.6, 0.7, 0.8]), 0))
    assert HttpReranker(flaky.url, retry_pause=0).score(QUERY, DOCS) == [0.5, 0.6, 0.7, 0.8]
    assert len(flaky.requests) == 2
    bad = scripted((400, {}, {"error": {"message": "'documents' has 1001 entries", "type": "x"}}, 0))
    with pytest.raises(RerankerUnavailableError, match=r"HTTP 400 .*1001 entries"):
        HttpReranker(bad.url).score(QUERY, DOCS)
    assert len(bad.requests) == 1


def test_timeout_raises_quickly(scripted: Callable[..., Scripted]) -> None:
    slow = scripted((200, {}, ok([0.1, 0.2, 0.3, 0.4]), 2.0))
    started = time.perf_counter()
    with pytest.raises(RerankerUnavailableError, match=r"no answer within 0\.3 s"):
        HttpReranker(slow.url, timeout=0.3).score(QUERY, DOCS)
    assert time.perf_counter() - started < 1.5


def test_logits_go_through_a_sigmoid_probabilities_do_not(scripted: Callable[..., Scripted]) -> None:
    logits = [-2.0, 3.5, 0.25, -0.5]
    server = scripted((200, {}, ok(logits), 0))
    got = HttpReranker(server.url).score(QUERY, DOCS)
    assert all(abs(g - 1 / (1 + math.exp(-x))) < 1e-12 for g, x in zip(got, logits, strict=True))
    probabilities = [0.0, 1.0, 0.25, 0.5]
    server = scripted((200, {}, ok(probabilities), 0))
    assert HttpReranker(server.url).score(QUERY, DOCS) == probabilities


def test_other_response_shapes(scripted: Callable[..., Scripted]) -> None:
    # text-embeddings-inference: a bare list of {"index", "score"}
    tei_answer = [{"index": 2, "score": 0.9}, {"index": 1, "score": 0.4}, {"index": 0, "score": 0.1}]
    tei = scripted((200, {}, tei_answer, 0))
    assert HttpReranker(tei.url + "/rerank").score(QUERY, DOCS[:3]) == [0.1, 0.4, 0.9]
    assert tei.requests[-1]["path"] == "/rerank"
    # missing documents, bad indices, non-numeric scores, not JSON-like
    for answer, pattern in (
        ({"results": [{"index": 0, "relevance_score": 0.5}]}, "scores 1 of 4"),
        ({"results": [{"index": 9, "relevance_score": 0.5}]}, "invalid index 9"),
        ({"results": [{"index": 0, "relevance_score": "high"}]}, "no numeric relevance_score"),
        ({"detail": "nope"}, "no 'results' list"),
    ):
        server = scripted((200, {}, answer, 0))
        with pytest.raises(RerankerUnavailableError, match=pattern):
            HttpReranker(server.url).score(QUERY, DOCS)
