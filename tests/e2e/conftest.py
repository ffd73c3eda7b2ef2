"""End-to-end fixtures: the sample knowledge base in a temporary embedded index, a SQLite log, and a tiny
random-weight Qwen3 reranker checkpoint on disk that goes through the real loading and scoring path."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SAMPLE_KB


@pytest.fixture(scope="session")
def tiny_reranker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rerank.random_checkpoint import build_random_checkpoint

    return build_random_checkpoint(tmp_path_factory.mktemp("qwen3-tiny"), size="tiny", seed=0)


@pytest.fixture(scope="session")
def kb_store(tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:
    """The sample knowledge base ingested once into an embedded Qdrant Edge folder; tests copy it."""
    from retrieval import ingest_path, open_index

    root = tmp_path_factory.mktemp("kb")
    docs = root / "sample_kb"
    shutil.copytree(SAMPLE_KB, docs)
    with open_index(None, str(root / "qdrant")) as index:
        summary = ingest_path(docs, index, embedder, "kb")
    assert not summary.failed, summary.failed
    return root


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kb_store: Path, tiny_reranker: Path) -> Path:
    """Environment for a ragbot process: its own copy of the index, its own SQLite database."""
    shutil.copytree(kb_store / "qdrant", tmp_path / "qdrant")
    monkeypatch.setenv("QDRANT_PATH", str(tmp_path / "qdrant"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'ragbot.db'}")
    monkeypatch.setenv("RERANK_MODEL", str(tiny_reranker))
    monkeypatch.setenv("RERANK_DEVICE", "cpu")
    for name in ("QDRANT_URL", "LLM_BASE_URL", "EMBED_MODEL", "RERANK_REQUIRED", "RAGBOT_COLLECTION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # nothing may land in ./data of the checkout
    return tmp_path


@pytest.fixture
def components(env: Path, embedder) -> Iterator:
    from bot.components import Components
    from bot.settings import Settings

    parts = Components(Settings())
    parts.__dict__["embedder"] = embedder  # reuse the session's loaded model
    yield parts
    parts.close()
