"""`RemoteEmbedder` against a real HTTP server that speaks the OpenAI embeddings protocol (tests/fake_openai.py):
what it sends, what it makes of the answers, and the errors a user sees when the server is wrong or goes away."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

from retrieval import EmbedderLoadError, EmbedderUnavailableError, Retriever, ingest_path, load_embedders
from retrieval.documents import passage_text
from retrieval.edge_index import EdgeIndex
from retrieval.embedders.remote import REQUEST_BATCH, RemoteEmbedder
from tests.conftest import SAMPLE_KB
from tests.fake_openai import FakeOpenAI, RunningFakeOpenAI, fake_embedding, running_fake_openai

KEY = "sk-test-4f9a2c7e"


@pytest.fixture
def server():
    with running_fake_openai() as running:
        yield running


def embedding_requests() -> list[dict]:
    return [r for r in FakeOpenAI.requests if r["path"].endswith("/embeddings")]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_vectors_are_unit_rows_in_input_order_batched_into_requests(server: RunningFakeOpenAI) -> None:
    embedder = RemoteEmbedder("my-model", server.url, api_key=KEY)
    texts = [f"passage number {i}" for i in range(2 * REQUEST_BATCH + 22)]
    FakeOpenAI.requests.clear()

    vectors = embedder.encode(texts)

    assert vectors.dtype == np.float32 and vectors.shape == (len(texts), FakeOpenAI.dimension)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    for i in (0, REQUEST_BATCH, len(texts) - 1):  # each row is its own text's vector, normalised
        raw = np.asarray(fake_embedding(texts[i], FakeOpenAI.dimension), dtype=np.float32)
        np.testing.assert_allclose(vectors[i], raw / np.linalg.norm(raw), rtol=1e-5)
    sent = embedding_requests()
    assert [len(r["body"]["input"]) for r in sent] == [REQUEST_BATCH, REQUEST_BATCH, 22]
    assert [t for r in sent for t in r["body"]["input"]] == texts
    assert all(r["body"]["model"] == "my-model" and r["body"]["encoding_format"] == "float" for r in sent)
    assert embedder.encode([]).shape == (0, FakeOpenAI.dimension)
    np.testing.assert_allclose(embedder.encode_query(texts[3]), vectors[3], rtol=1e-5)


def test_the_server_answering_out_of_order_is_put_back_in_order(server: RunningFakeOpenAI, monkeypatch) -> None:
    embedder = RemoteEmbedder("my-model", server.url)
    in_order = embedder.encode(["alpha", "beta", "gamma"])
    original = FakeOpenAI._json

    def reversed_data(self, payload: dict) -> None:
        if "data" in payload and payload.get("usage"):
            payload = {**payload, "data": payload["data"][::-1]}
        original(self, payload)

    monkeypatch.setattr(FakeOpenAI, "_json", reversed_data)
    np.testing.assert_array_equal(embedder.encode(["alpha", "beta", "gamma"]), in_order)


def test_dimension_comes_from_the_probe_and_max_tokens_from_models(server: RunningFakeOpenAI) -> None:
    FakeOpenAI.dimension, FakeOpenAI.max_model_len = 24, 32768
    embedder = RemoteEmbedder("my-model", server.url)
    assert embedder.name == "my-model" and embedder.dimension == 24 and embedder.max_tokens == 32768
    assert [r["path"] for r in FakeOpenAI.requests] == ["/v1/embeddings", "/v1/models"]
    assert embedder.count_tokens("three short words") > 3  # the base estimate, special tokens included
    assert "24-d" in embedder.describe() and "32768" in embedder.describe()


def test_a_server_without_max_model_len_reads_any_length(server: RunningFakeOpenAI) -> None:
    FakeOpenAI.max_model_len = None
    assert RemoteEmbedder("my-model", server.url).max_tokens is None


def test_the_api_key_reaches_the_server_as_a_bearer_header(server: RunningFakeOpenAI) -> None:
    RemoteEmbedder("my-model", server.url, api_key=KEY).encode(["hello"])
    assert FakeOpenAI.requests and {r["auth"] for r in FakeOpenAI.requests} == {f"Bearer {KEY}"}


def test_a_closed_port_at_start_names_the_url_masked_and_what_to_check() -> None:
    url = f"http://admin:hunter2@127.0.0.1:{closed_port()}/v1?api_key=topsecret"
    with pytest.raises(EmbedderLoadError) as info:
        RemoteEmbedder("my-model", url, api_key=KEY, timeout=2)
    message = str(info.value)
    assert "admin:***@127.0.0.1:" in message and "api_key=***" in message
    assert "hunter2" not in message and "topsecret" not in message and KEY not in message
    assert "Is the server running?" in message
    assert all(setting in message for setting in ("EMBED_URL", "EMBED_MODEL", "EMBED_API_KEY"))
    assert "\n" not in message and "Traceback" not in message


def test_a_model_the_server_does_not_serve_fails_at_start(server: RunningFakeOpenAI) -> None:
    with pytest.raises(EmbedderLoadError) as info:
        RemoteEmbedder("other-model", server.url)
    assert "other-model" in str(info.value) and "404" in str(info.value) and "EMBED_MODEL" in str(info.value)


def test_a_refused_api_key_says_so(server: RunningFakeOpenAI) -> None:
    FakeOpenAI.embedding_error = 401
    with pytest.raises(EmbedderLoadError, match="EMBED_API_KEY") as info:
        RemoteEmbedder("my-model", server.url, api_key=KEY)
    assert KEY not in str(info.value)


def test_a_url_that_is_not_http_is_refused_before_any_request() -> None:
    with pytest.raises(EmbedderLoadError, match="not an http"):
        RemoteEmbedder("my-model", "gpu:8000/v1")


def test_the_server_going_away_after_start_is_a_clear_error(server: RunningFakeOpenAI) -> None:
    embedder = RemoteEmbedder("my-model", server.url, api_key=KEY, timeout=2)
    server.stop()  # its port is closed now
    with pytest.raises(EmbedderUnavailableError) as info:
        embedder.encode_query("how do I set up SSO?")
    message = str(info.value)
    assert server.url in message and "Is the server running?" in message and KEY not in message


def test_a_server_error_after_start_is_a_clear_error(server: RunningFakeOpenAI) -> None:
    embedder = RemoteEmbedder("my-model", server.url)
    FakeOpenAI.embedding_error = 503
    with pytest.raises(EmbedderUnavailableError, match="HTTP 503"):
        embedder.encode(["a", "b"])


def test_a_wrong_number_of_vectors_is_a_clear_error(server: RunningFakeOpenAI) -> None:
    embedder = RemoteEmbedder("my-model", server.url)
    FakeOpenAI.drop_embeddings = 1
    with pytest.raises(EmbedderUnavailableError, match=r"answered 3 texts .* with 2 vectors"):
        embedder.encode(["a", "b", "c"])


def test_a_different_dimension_after_start_is_a_clear_error(server: RunningFakeOpenAI) -> None:
    embedder = RemoteEmbedder("my-model", server.url)
    FakeOpenAI.dimension = 16
    with pytest.raises(EmbedderUnavailableError, match="16-d vectors where it gave 12-d"):
        embedder.encode(["a"])


def test_load_embedders_builds_a_remote_embedder_from_the_url(server: RunningFakeOpenAI) -> None:
    (embedder,) = load_embedders("my-model", url=server.url, api_key=KEY, timeout=5)
    assert isinstance(embedder, RemoteEmbedder) and embedder.dimension == FakeOpenAI.dimension
    with pytest.raises(EmbedderLoadError, match="EMBED_URL"):
        load_embedders("my-model", backends="openai")


def test_ingest_and_dense_search_through_the_server(server: RunningFakeOpenAI, tmp_path: Path) -> None:
    embedder = RemoteEmbedder("my-model", server.url)
    index = EdgeIndex(tmp_path / "qdrant")
    try:
        summary = ingest_path(SAMPLE_KB, index, embedder, "kb")
        assert summary.chunks and not summary.failed, summary.failed
        assert len(embedding_requests()) > 1
        result = Retriever(index, embedder).search("How do I set up single sign-on?", "kb", 5, mode="dense")
        assert len(result.candidates) == 5 and all(c.text for c in result.candidates)
        # The fake's vectors are hashes: a passage's own text is its nearest neighbour, whatever it means.
        last = result.candidates[-1]
        own_text = passage_text(last.title, last.section, last.text)
        again = Retriever(index, embedder).search(own_text, "kb", 1, mode="dense").candidates
        assert again[0].point_id == last.point_id
    finally:
        index.close()
