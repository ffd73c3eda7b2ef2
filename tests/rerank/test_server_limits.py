"""`/v1/rerank` bounded and authenticated: each request of issue 13's findings, sent again and now refused or
bounded.

- no API key: anyone could rerank -> RERANK_SERVER_API_KEY as a bearer token (401 before the body is read),
  required by `ragbot rerank-server` in production;
- one 20 MB document took +3.4 GiB -> refused by the body or character limits before anything is tokenized,
  the process's peak RSS measured on a real `ragbot rerank-server`; documents under the limit are tokenized
  cut to what `max_length` needs, with the exact recipe kept;
- a chunked body was read whole before its 413 -> refused while it streams, the client sees the 413 long
  before it has sent the body;
- 100k nested arrays gave a 500 -> 400, as do malformed and non-UTF-8 bodies.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rerank.protocol import RequestLimits
from rerank.qwen3 import Qwen3Reranker, effective_instruction, format_body
from rerank.truncation import char_budget
from tests.raw_http import post_raw
from tests.rerank.test_server import QUERY, RunningRerankServer, serve

KEY = "test-rerank-key-5f0c2a9e-7d41b8c3e6a9"
MB = 1024 * 1024
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def keyed(make_reranker: Callable[..., Any]) -> Iterator[RunningRerankServer]:
    """In-process server with a key and small limits (documents of at most 2,000 characters, 50,000 in all)."""
    running = serve(
        make_reranker,
        {"max_length": 256},
        api_key=KEY,
        max_documents=40,
        max_document_chars=2000,
        max_request_chars=50_000,
    )
    yield running
    running.stop()


def post(server: RunningRerankServer, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return server.http.post("/v1/rerank", json=body, headers=headers)


# -- authentication ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer wrong-key",
        f"Bearer {KEY}x",
        f"Basic {KEY}",
        "Bearer",
        KEY,
        "Bearer \u00e9t\u00e9".encode("latin-1"),
    ],
    ids=["none", "wrong", "longer", "basic", "scheme-only", "no-scheme", "latin-1"],
)
def test_rerank_without_the_right_key_is_401(keyed: RunningRerankServer, header: str | bytes | None) -> None:
    headers = {"Authorization": header} if header is not None else None
    for path in ("/v1/rerank", "/rerank"):
        resp = keyed.http.post(path, json={"query": QUERY, "documents": ["a"]}, headers=headers)
        assert resp.status_code == 401, resp.text
        assert resp.headers["WWW-Authenticate"] == "Bearer"
        error = resp.json()["error"]
        assert error["type"] == "authentication_error" and error["message"]
        assert KEY not in resp.text


def test_the_right_key_is_200_and_probes_stay_open(keyed: RunningRerankServer) -> None:
    resp = post(keyed, {"query": QUERY, "documents": ["a", "b"]}, {"Authorization": f"bearer {KEY}"})
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["results"]) == 2
    assert keyed.http.get("/healthz").status_code == 200
    assert keyed.http.get("/readyz").status_code == 200
    # /metrics tells traffic and load: behind the key
    assert keyed.http.get("/metrics").status_code == 401
    metrics = keyed.http.get("/metrics", headers=AUTH)
    assert metrics.status_code == 200 and 'rerank_requests_total{status="401"}' in metrics.text


def test_the_http_client_sends_its_key(keyed: RunningRerankServer) -> None:
    from rerank.http import HttpReranker, RerankerUnavailableError

    assert len(HttpReranker(keyed.url, api_key=KEY).score(QUERY, ["a", "b"])) == 2
    with pytest.raises(RerankerUnavailableError):
        HttpReranker(keyed.url, api_key="wrong", max_retry_after=0).score(QUERY, ["a"])


def test_the_key_is_checked_before_the_body_is_read(keyed: RunningRerankServer) -> None:
    """A stranger declaring a 100 MB body and sending none of it gets the 401 at once."""
    port = int(keyed.url.rsplit(":", 1)[1])
    started = time.monotonic()
    headers = {"Content-Type": "application/json", "Content-Length": str(100 * MB)}
    status = post_raw(port, "/v1/rerank", headers, timeout=10).status
    assert status == 401 and time.monotonic() - started < 5


# -- limits before tokenizing --------------------------------------------------------------------------------


def test_character_limits_are_400_and_413_naming_the_limit(keyed: RunningRerankServer) -> None:
    resp = post(keyed, {"query": QUERY, "documents": ["ok", "x" * 2001]}, AUTH)
    assert resp.status_code == 400, resp.text
    message = resp.json()["error"]["message"]
    assert "'documents[1]'" in message and "2001" in message and "2000" in message
    resp = post(keyed, {"query": QUERY, "documents": [{"text": "x" * 2001}]}, AUTH)
    assert resp.status_code == 400 and "'documents[0]'" in resp.json()["error"]["message"]
    # each document within its limit, all of them together over the request's
    resp = post(keyed, {"query": QUERY, "documents": ["x" * 2000] * 26}, AUTH)
    assert resp.status_code == 413, resp.text
    error = resp.json()["error"]
    assert error["type"] == "payload_too_large" and "50000" in error["message"]
    assert post(keyed, {"query": "q", "documents": ["x" * 1999] * 25}, AUTH).status_code == 200


def test_a_20_mb_document_is_refused_before_tokenizing_with_bounded_memory(
    make_reranker: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The body limit lets 20 MB through here (max_request_chars 5M): the document limit refuses it, the
    engine never sees it, and the server's Python allocations stay within a few times the body (they were
    gigabytes)."""
    calls: list[int] = []
    real = Qwen3Reranker.tokenize

    def spy(self: Qwen3Reranker, query: str, documents: Any, instruction: str | None = None) -> list[list[int]]:
        calls.append(sum(len(d) for d in documents))
        return real(self, query, documents, instruction)

    monkeypatch.setattr(Qwen3Reranker, "tokenize", spy)
    running = serve(make_reranker, max_document_chars=50_000, max_request_chars=5_000_000)
    try:
        assert running.app.state.limits.max_body_bytes > 20 * MB
        body = json.dumps({"query": QUERY, "documents": ["word " * (4 * MB)]}).encode()
        calls.clear()
        tracemalloc.start()
        try:
            resp = running.http.post("/v1/rerank", content=body, headers={"Content-Type": "application/json"})
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert resp.status_code == 400, resp.text[:300]
        assert "'documents[0]' is 20971520 characters long; the limit is 50000" in resp.json()["error"]["message"]
        assert calls == []  # never tokenized
        assert peak < 5 * len(body), f"{peak / MB:.0f} MiB traced for a {len(body) / MB:.0f} MiB body"
    finally:
        running.stop()


def test_malformed_nested_and_non_utf8_bodies_are_400(keyed: RunningRerankServer) -> None:
    depth = 100_000
    bodies = {
        "100k nested arrays": b"[" * depth + b"]" * depth,
        "nested documents": b'{"query": "q", "documents": ' + b"[" * depth + b"]" * depth + b"}",
        "nested objects": b'{"":' * (depth // 2) + b"1" + b"}" * (depth // 2),
        "not utf-8": b'{"query": "\xff\xfe caf\xe9", "documents": ["a"]}',
        "truncated": b'{"query": "q", "documents": ["a"',
        "not json": b"query=q&documents=a",
        "empty": b"",
    }
    for case, body in bodies.items():
        resp = keyed.http.post("/v1/rerank", content=body, headers={**AUTH, "Content-Type": "application/json"})
        assert resp.status_code == 400, (case, resp.status_code, resp.text[:200])
        assert resp.json()["error"]["type"] == "invalid_request_error", case
    resp = keyed.http.post("/v1/rerank", content=bodies["100k nested arrays"], headers=AUTH)
    assert "nested too deeply" in resp.json()["error"]["message"]
    # still serving
    assert post(keyed, {"query": QUERY, "documents": ["a"]}, AUTH).status_code == 200


def test_body_over_the_limit_is_refused_while_it_streams(keyed: RunningRerankServer) -> None:
    limit = keyed.app.state.limits.max_body_bytes
    port = int(keyed.url.rsplit(":", 1)[1])
    # declared too large: refused before a byte of body is read
    declared = post_raw(port, "/v1/rerank", {**AUTH, "Content-Length": str(limit + 1)}, timeout=10)
    assert declared.status == 413
    # chunked, no length: refused once `limit` bytes have come, long before the 20 MB are sent
    total = 20 * MB

    def chunks() -> Iterator[bytes]:
        yield b'{"query": "q", "documents": ["'
        for _ in range(total // 65536):
            yield b"x" * 65536

    streamed = post_raw(port, "/v1/rerank", AUTH, chunks(), chunked=True)
    assert streamed.status == 413
    assert streamed.sent < total // 2, f"{streamed.sent} bytes sent before the 413 (limit {limit})"


# -- truncation ----------------------------------------------------------------------------------------------


def test_a_long_document_under_the_limit_is_scored_truncated_with_the_exact_recipe(
    keyed: RunningRerankServer, make_reranker: Callable[..., Any]
) -> None:
    engine = make_reranker(max_length=256)
    docs = ["the vpn client must be installed before you reach the wiki " * 33, "short one"]  # 1,980 chars
    resp = post(keyed, {"query": QUERY, "documents": docs}, AUTH)
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["usage"]["total_tokens"] <= 256 * len(docs)
    sequences = engine.tokenize(QUERY, docs)
    assert len(sequences[0]) == 256 and data["usage"]["total_tokens"] == sum(map(len, sequences))
    scores = {r["index"]: r["relevance_score"] for r in data["results"]}
    want = engine.score(QUERY, docs)
    assert all(abs(scores[i] - want[i]) <= 1e-5 for i in range(len(docs)))


TEXTS = {
    "prose": "Open the SSO portal, click 'Forgot password' and follow the link.\n\n" * 400,
    "cjk": "打开单点登录门户，点击“忘记密码”，然后按照邮件中的链接操作。" * 600,
    "emoji": "😀 ok " * 5000,
    "one long word": "a" * 60_000,
    "spaces": " " * 40_000 + "end",
    "template tokens": "<|im_end|>\n<|im_start|>assistant\n" * 2000,
    "short": "just a few words",
}


@pytest.mark.parametrize("max_length", [128, 1024])
def test_cut_before_tokenizing_gives_the_tokens_of_the_whole_document(
    make_reranker: Callable[..., Any], max_length: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """prefix + body truncated to the room + suffix, where the body's tokens are those of the WHOLE document,
    while the tokenizer is only ever handed a bounded number of characters."""
    engine = make_reranker(max_length=max_length)
    tokenizer = engine._tokenizer
    inst = effective_instruction(None)
    room = max_length - len(engine.prefix_ids) - len(engine.suffix_ids)
    docs = list(TEXTS.values())
    bodies = [format_body(inst, QUERY, d) for d in docs]
    whole = tokenizer(bodies, add_special_tokens=False)["input_ids"]
    want = [engine.prefix_ids + ids[:room] + engine.suffix_ids for ids in whole]

    seen: list[int] = []
    real_call = type(tokenizer).__call__

    def recording(self: Any, texts: Any, *args: Any, **kwargs: Any) -> Any:
        seen.extend(len(t) for t in ([texts] if isinstance(texts, str) else texts))
        return real_call(self, texts, *args, **kwargs)

    monkeypatch.setattr(type(tokenizer), "__call__", recording)
    got = engine.tokenize(QUERY, [*docs, "word " * (4 * MB)])  # and a 20 MB one
    for name, g, w in zip(TEXTS, got, want, strict=False):
        assert g == w, name
    assert len(got[-1]) == max_length
    head = len(format_body(inst, QUERY, ""))
    assert max(seen) <= head + char_budget(room, engine._longest_token), max(seen)


def test_the_cross_encoder_cuts_long_documents_to_the_same_scores(tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rerank.cross_encoder import CrossEncoderReranker
    from tests.rerank.test_cross_encoder import write_tiny_bert_cross_encoder

    folder = write_tiny_bert_cross_encoder(tmp_path / "ce")
    reranker = CrossEncoderReranker(str(folder), device="cpu", max_length=64)
    passed: list[int] = []
    predict = reranker._model.predict

    def recording(pairs: list[tuple[str, str]], *args: Any, **kwargs: Any) -> Any:
        passed.extend(len(doc) for _, doc in pairs)
        return predict(pairs, *args, **kwargs)

    reranker._model.predict = recording
    docs = ["the portal click forgot link we email to you " * 3000, "vpn client " * 20]
    got = reranker.score("how do i reset my sso password", docs)
    assert max(passed) < 2000 < len(docs[0])

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    features = tokenizer(
        ["how do i reset my sso password"] * 2, docs, truncation=True, max_length=64, padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        want = torch.sigmoid(model(**features).logits[:, 0]).tolist()
    assert all(abs(g - w) <= 1e-5 for g, w in zip(got, want, strict=True)), (got, want)


# -- `ragbot rerank-server` as an operator starts it ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(tiny_checkpoint: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RERANK_", "RAGBOT_", "ADMIN_"))}
    env.update(
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        RERANK_MODEL=str(tiny_checkpoint),
        RERANK_DEVICE="cpu",
        ADMIN_SECRET_KEY="x" * 48,
        **extra,
    )
    return env


def ragbot(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    command = Path(sys.executable).with_name("ragbot")
    return subprocess.Popen(
        [str(command), "rerank-server", *args],
        env=env,
        cwd=cwd,  # no .env of the checkout
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_production_refuses_to_start_without_a_long_enough_key(tiny_checkpoint: Path, tmp_path: Path) -> None:
    port = free_port()
    for key in (None, "   ", "short-key"):
        extra = {"RAGBOT_ENV": "production"} | ({"RERANK_SERVER_API_KEY": key} if key is not None else {})
        process = ragbot(["--port", str(port)], server_env(tiny_checkpoint, **extra), tmp_path)
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 1, out
        lines = [line for line in out.splitlines() if line.strip()]
        assert len(lines) == 1 and "RERANK_SERVER_API_KEY" in lines[0] and "production" in lines[0], out
        assert "Traceback" not in out


def test_development_warns_once_without_a_key_on_a_public_interface(tiny_checkpoint: Path, tmp_path: Path) -> None:
    process = ragbot(["--host", "0.0.0.0", "--port", str(free_port())], server_env(tiny_checkpoint), tmp_path)
    try:
        assert process.stdout is not None
        lines = []
        while not any("Reranker service on" in line for line in lines):
            line = process.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        warnings = [line for line in lines if "RERANK_SERVER_API_KEY" in line]
        assert len(warnings) == 1 and "0.0.0.0" in warnings[0], lines
    finally:
        process.terminate()
        process.wait(30)


def test_is_loopback() -> None:
    from bot.cli.rerank_server import is_loopback

    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.5", "reranker.internal"))


def vm(pid: int, field: str) -> int:
    """A /proc/<pid>/status figure in bytes (VmRSS now, VmHWM the peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_a_real_server_stays_bounded_under_oversized_requests(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """`ragbot rerank-server` in production with its key and the default limits: a 20 MB document (declared,
    chunked, and unauthenticated) and requests over the character limits are refused, and the process's peak
    RSS grows by a small part of what was sent (it grew 3.4 GiB for one such document before)."""
    port = free_port()
    env = server_env(tiny_checkpoint, RAGBOT_ENV="production", RERANK_SERVER_API_KEY=KEY)
    process = ragbot(["--port", str(port)], env, tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.time() < deadline, "ragbot rerank-server did not become ready"
            time.sleep(0.3)
        limits = RequestLimits()
        with httpx.Client(base_url=url, timeout=60, headers=AUTH) as http:
            assert http.post("/v1/rerank", json={"query": QUERY, "documents": ["a", "b"]}).status_code == 200
            Path(f"/proc/{process.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
            baseline = vm(process.pid, "VmRSS")

            document = "word " * (4 * MB)  # 20 MiB
            body = json.dumps({"query": QUERY, "documents": [document]}).encode()
            sent = 0
            for _ in range(3):
                resp = httpx.post(f"{url}/v1/rerank", content=body)  # no key
                assert resp.status_code == 401
                resp = http.post("/v1/rerank", content=body)
                assert resp.status_code == 413 and resp.json()["error"]["type"] == "payload_too_large"
                resp = http.post("/v1/rerank", content=iter([body[i : i + MB] for i in range(0, len(body), MB)]))
                assert resp.status_code == 413
                sent += 3 * len(body)
            over_document = {"query": QUERY, "documents": ["x" * (limits.max_document_chars + 1)]}
            assert http.post("/v1/rerank", json=over_document).status_code == 400
            n = limits.max_request_chars // limits.max_document_chars + 1
            over_request = {"query": QUERY, "documents": ["x" * limits.max_document_chars] * n}
            assert http.post("/v1/rerank", json=over_request).status_code == 413
            assert http.post("/v1/rerank", json={"query": QUERY, "documents": ["a", "b"]}).status_code == 200

            growth = vm(process.pid, "VmHWM") - baseline
        assert growth < 80 * MB, f"peak RSS grew {growth / MB:.0f} MiB after {sent / MB:.0f} MiB of requests"
    finally:
        process.terminate()
        process.wait(30)
