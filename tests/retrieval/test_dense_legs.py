"""Several embedders in one collection, on both `Index` backends: one named dense vector per embedder beside the
lexical one, fused in one query with weights by the question's language; the collection records which model made
each vector, and a different set of models is refused."""

from __future__ import annotations

import itertools
import math
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from retrieval import Retriever, UniversalSentenceEncoder, ingest_path
from retrieval.embedders import Embedder
from retrieval.errors import CollectionMismatchError
from retrieval.fusion import ALL_LANGUAGES, FusionPolicy, LegWeights
from retrieval.index import DenseVector, Fusion, IndexPoint, SearchRequest, point_id
from retrieval.lexical import LEXICAL_MODEL, SparseVector

SAMPLE_KB = Path(__file__).resolve().parents[2] / "sample_kb"


class Counting(Embedder):
    """Wraps an embedder and counts the questions it embeds."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name, self.dimension, self.max_tokens = inner.name, inner.dimension, inner.max_tokens
        self.queries = 0

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        return self.inner.encode(texts, batch_size)

    def encode_query(self, text: str) -> np.ndarray:
        self.queries += 1
        return self.inner.encode_query(text)


@pytest.fixture(scope="module")
def use() -> UniversalSentenceEncoder:
    return UniversalSentenceEncoder()


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two folders of the sample knowledge base (English and Chinese pages): enough to search, quick to embed."""
    root = tmp_path_factory.mktemp("docs")
    for folder in ("sso", "billing"):
        shutil.copytree(SAMPLE_KB / folder, root / folder)
    return root


# -- three legs by hand: the fused order is Qdrant's weighted RRF over all of them --------------------------

A_ORDER, B_ORDER, LEXICAL_ORDER = [0, 1, 2, 3], [3, 2, 1, 0], [2, 0]
TERM = 5


def _angle_vector(angle: float, size: int) -> list[float]:
    return [math.cos(angle), math.sin(angle)] + [0.0] * (size - 2)


def _hand_points() -> list[IndexPoint]:
    points = []
    for i in range(4):
        sparse = SparseVector((TERM,), (2.0 if i == 2 else 1.0,)) if i in LEXICAL_ORDER else SparseVector((9,), (1.0,))
        points.append(
            IndexPoint(
                point_id("hand", i),
                _angle_vector(0.1 * A_ORDER.index(i), 4),  # leg "dense": p0 closest
                {"path": "hand.md", "name": i},
                sparse,
                extra_vectors={"dense2": _angle_vector(0.1 * B_ORDER.index(i), 3)},  # leg "dense2": p3 closest
            )
        )
    return points


def _rrf(k: int, weights: Sequence[float]) -> list[int]:
    scores = dict.fromkeys(range(4), 0.0)
    for ranking, weight in zip((A_ORDER, B_ORDER, LEXICAL_ORDER), weights, strict=True):
        for rank, point in enumerate(ranking, start=1):
            if weight > 0:
                scores[point] += 1 / (rank / weight + k - 1)
    ranked = sorted(scores, key=lambda p: -scores[p])
    assert all(scores[a] - scores[b] > 1e-6 for a, b in itertools.pairwise(ranked)), "no ties in the design"
    return ranked


def test_three_legs_fuse_as_weighted_rrf_and_a_zero_weight_leaves_a_leg_out(index) -> None:
    index.create_collection("hand", 4, "model-a", LEXICAL_MODEL, [DenseVector("dense2", 3, "model-b")])
    index.upsert("hand", _hand_points())
    index.finish_writes("hand")
    info = index.collection_info("hand")
    assert info.extra_vectors == (DenseVector("dense2", 3, "model-b"),)
    assert info.embed_model == "model-a" and info.dimension == 4

    def query(weights: tuple[float, ...], **kwargs) -> list:
        request = SearchRequest(
            "hybrid",
            4,
            dense=_angle_vector(0, 4),
            extra_dense={"dense2": _angle_vector(0, 3)},
            lexical=SparseVector((TERM,), (1.0,)),
            fusion=Fusion("rrf", 2, weights),
            **kwargs,
        )
        return index.query("hand", request)

    for weights in [(1.0, 0.2, 0.2), (0.2, 1.0, 0.2), (1.0, 1.0, 1.0), (0.0, 1.0, 0.5)]:
        hits = query(weights)
        assert [hit.payload["name"] for hit in hits] == _rrf(2, weights), weights
    # B alone leads: p3 first, although it is last in leg "dense" and absent from the lexical leg
    assert query((0.0, 1.0, 0.0))[0].payload["name"] == 3
    explained = query((0.0, 1.0, 0.2), explain=True)
    assert all("dense" not in hit.legs for hit in explained)  # the leg weighted 0 was not run
    assert {leg for hit in explained for leg in hit.legs} == {"dense2", "lexical"}
    with pytest.raises(ValueError, match="do not match"):
        query((1.0, 1.0))


# -- ingestion and search with the bundled pair --------------------------------------------------------------


def test_ingest_stores_a_vector_per_embedder_and_search_leads_with_the_one_that_knows_the_language(
    index, embedder, use, docs: Path
) -> None:
    minilm, multilingual = Counting(embedder), Counting(use)
    summary = ingest_path(docs, index, [minilm, multilingual], "kb")
    assert summary.chunks > 0 and not summary.failed
    info = index.collection_info("kb")
    assert info.embed_model == embedder.name and info.dimension == 384
    assert info.extra_vectors == (DenseVector("dense2", 512, use.name),)

    retriever = Retriever(index, [minilm, multilingual])  # the default policy
    assert retriever.leg_languages == [frozenset({"english"}), ALL_LANGUAGES]
    chinese = retriever.search("开发票需要什么信息？", "kb", 5)
    assert minilm.queries == 0 and multilingual.queries == 1  # the English-only model was not asked
    assert any("fapiao" in c.path for c in chinese.candidates[:3])
    english = retriever.search("Can we set up single sign-on with Okta?", "kb", 5)
    assert minilm.queries == 1 and multilingual.queries == 2
    assert english.candidates[0].dense_rank is not None  # the primary leg is the candidate's "dense" place
    assert "sso" in english.candidates[0].path.lower() or "single sign-on" in english.candidates[0].text.lower()


def test_a_different_set_of_embedders_is_refused_with_the_rebuild_command(index, embedder, use) -> None:
    ingest_path(SAMPLE_KB / "sso" / "overview.md", index, embedder, "kb")  # built with MiniLM alone
    with pytest.raises(CollectionMismatchError) as refused:
        ingest_path(SAMPLE_KB / "sso" / "overview.md", index, [embedder, use], "kb")
    message = str(refused.value)
    assert use.name in message and "--rebuild" in message and "ragbot ingest DOCS --collection kb" in message
    with pytest.raises(CollectionMismatchError):
        Retriever(index, [embedder, use]).search("single sign-on", "kb", 3)
    # the same pair the other way round is another collection layout too
    ingest_path(SAMPLE_KB / "sso" / "overview.md", index, [embedder, use], "kb", rebuild=True)
    with pytest.raises(CollectionMismatchError):
        Retriever(index, [use, embedder]).search("single sign-on", "kb", 3)
    assert Retriever(index, [embedder, use]).search("single sign-on", "kb", 3).candidates


def test_the_policy_weighs_legs_by_the_question_language() -> None:
    english_only, everything = frozenset({"english"}), ALL_LANGUAGES
    same = LegWeights(k=2, lead=1.0, second=0.5, untrusted=0.0, lexical=0.2, lexical_alone=1.0)
    policy = FusionPolicy({"english": same, "chinese": same})
    assert policy.fusion("How do I reset a password?", [english_only, everything]).weights == (1.0, 0.5, 0.2)
    assert policy.fusion("如何重置密码？", [english_only, everything]).weights == (0.0, 1.0, 0.2)
    assert policy.fusion("如何重置密码？", [english_only]).weights == (0.0, 1.0)  # no model knows it: BM25 leads
    assert policy.fusion("如何重置密码？", [everything, english_only]).weights == (1.0, 0.0, 0.2)
    # the default: per-language weights (BM25 leads Chinese beside USE at half weight, a flatter k)
    default = FusionPolicy()
    assert default.fusion("如何重置密码？", [english_only, everything]) == Fusion("rrf", 10, (0.0, 0.5, 1.0))
    assert default.fusion("How do I reset a password?", [english_only, everything]) == Fusion("rrf", 2, (1, 0.1, 0.1))
