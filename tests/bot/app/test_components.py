"""The composition root: parts built from settings once, parts a caller provides kept as they are, `close()`
releasing what it built, and the rerank server's engine following RERANK_BACKEND."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app import Components, load_engine, rerank_batcher_factory
from bot.settings import Settings
from rerank import CrossEncoderReranker, HttpReranker, Qwen3Reranker
from tests.rerank.test_cross_encoder import write_tiny_bert_cross_encoder


def settings(tmp_path: Path, **fields) -> Settings:
    return Settings(
        _env_file=None, database_url=f"sqlite:///{tmp_path / 'parts.db'}", qdrant_path=str(tmp_path / "q"), **fields
    )


def test_parts_are_built_once_and_close_releases_them(tmp_path: Path) -> None:
    parts = Components(settings(tmp_path, rerank_url="http://127.0.0.1:9/v1/rerank"))
    assert parts.sessions is parts.sessions and parts.answers is parts.answers
    remote = parts.reranker.get()
    assert isinstance(remote, HttpReranker)
    remote._http()  # the connection pool a question would open
    parts.close()
    assert remote._client is None  # the HTTP client is closed
    with pytest.raises(RuntimeError):  # the answer service's background thread is stopped
        parts.answers._background.submit(print)


def test_a_provided_part_is_used_and_left_open(tmp_path: Path, embedder) -> None:
    from retrieval import open_index

    index = open_index(None, str(tmp_path / "shared"))
    try:
        parts = Components(settings(tmp_path), index=index, embedder=embedder)
        assert parts.index is index and parts.retriever.index is index and parts.retriever.embedder is embedder
        parts.close()
        assert index.collection_info("kb") is None  # still open: the caller closes it
    finally:
        index.close()
    with pytest.raises(TypeError, match="Unknown component"):
        Components(settings(tmp_path), pipeline=object())


def test_the_rerank_server_engine_follows_rerank_backend(tmp_path: Path, tiny_reranker: Path) -> None:
    bert = write_tiny_bert_cross_encoder(tmp_path / "bert")
    cross = settings(tmp_path, rerank_backend="cross-encoder", rerank_model=str(bert), rerank_device="cpu")
    assert isinstance(load_engine(cross), CrossEncoderReranker)
    batcher = rerank_batcher_factory(cross)()
    assert isinstance(batcher.reranker, CrossEncoderReranker)
    qwen3 = settings(tmp_path, rerank_model=str(tiny_reranker), rerank_device="cpu", rerank_queue_size=7)
    batcher = rerank_batcher_factory(qwen3)()
    assert isinstance(batcher.reranker, Qwen3Reranker) and batcher.max_queue == 7
