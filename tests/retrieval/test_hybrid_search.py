"""Hybrid retrieval on both `Index` backends (Qdrant Edge on disk; qdrant-client's in-memory Qdrant): fusion
against rankings computed by hand, each hit's place in each leg, the dense fallbacks (stop-word questions,
collections from before the lexical leg), idempotent re-ingestion, and a Chinese question that only the
lexical leg finds."""

from __future__ import annotations

import itertools
import json
import math
import re
import shutil
import statistics
import time
from pathlib import Path

import pytest

from retrieval import Retriever, ingest_path
from retrieval.edge_index import EdgeIndex
from retrieval.errors import LegacyCollectionError
from retrieval.fusion import DEFAULT_WEIGHTS, RRF_K
from retrieval.index import Fusion, IndexPoint, SearchRequest, point_id
from retrieval.lexical import LEXICAL_MODEL, SparseVector
from retrieval.server_index import QdrantServerIndex

# -- a hand-made collection: 4-d dense vectors and one-term sparse vectors ----------------------------------

N_POINTS = 6
TERM, OTHER_TERM = 7, 9
# Dense: point i is at angle 0.1*i from the query [1, 0, 0, 0], so the dense ranking is p0, p1, ..., p5.
DENSE_ORDER = list(range(N_POINTS))
# Lexical: the query term's stored weight; p0 and p4 do not have the term (they hold OTHER_TERM instead).
TERM_WEIGHTS = {2: 4.0, 3: 3.0, 1: 2.0, 5: 1.0}
LEXICAL_ORDER = [2, 3, 1, 5]
QUERY_DENSE = [1.0, 0.0, 0.0, 0.0]
QUERY_LEXICAL = SparseVector((TERM,), (1.0,))
# Qdrant's IDF of the term: 4 of the 6 points have it.
TERM_IDF = math.log(1 + (N_POINTS - 4 + 0.5) / (4 + 0.5))
IN_FILE_A = {0, 2, 4}


def hand_points() -> list[IndexPoint]:
    points = []
    for i in range(N_POINTS):
        angle = 0.1 * i
        sparse = SparseVector((TERM,), (TERM_WEIGHTS[i],)) if i in TERM_WEIGHTS else SparseVector((OTHER_TERM,), (1.0,))
        path = "a.md" if i in IN_FILE_A else "b.md"
        payload = {"path": path, "name": f"p{i}", "text": f"point {i}"}
        points.append(IndexPoint(point_id("hand", i), [math.cos(angle), math.sin(angle), 0.0, 0.0], payload, sparse))
    return points


def fill(index, collection: str = "hand") -> None:
    index.create_collection(collection, 4, "hand-made", LEXICAL_MODEL)
    index.upsert(collection, hand_points())
    index.finish_writes(collection)


@pytest.fixture
def hand(index):
    fill(index)
    return index


def hybrid(fusion: Fusion, limit: int = N_POINTS, **kwargs) -> SearchRequest:
    return SearchRequest("hybrid", limit, dense=QUERY_DENSE, lexical=QUERY_LEXICAL, fusion=fusion, **kwargs)


def names(hits) -> list[int]:
    return [int(hit.payload["name"][1:]) for hit in hits]


def rrf_by_hand(k: int, weights: tuple[float, float] = (1.0, 1.0)) -> dict[int, float]:
    """Qdrant's reciprocal rank fusion, rank 1-based: a point gets 1 / (rank / weight + k - 1) from each leg
    it is in, i.e. 1 / (k + rank - 1) without weights. (Not `weight / (k + rank)`, as `Fusion`'s docstring says:
    a weight below 1 does not shrink a leg's votes, it stretches its ranks.)"""
    scores = dict.fromkeys(range(N_POINTS), 0.0)
    for ranking, weight in ((DENSE_ORDER, weights[0]), (LEXICAL_ORDER, weights[1])):
        for rank, point in enumerate(ranking, start=1):
            scores[point] += 1 / (rank / weight + k - 1)
    return scores


def order(scores: dict[int, float]) -> list[int]:
    ranked = sorted(scores, key=lambda p: -scores[p])
    assert all(scores[a] - scores[b] > 1e-5 for a, b in itertools.pairwise(ranked)), "no near-ties in the design"
    return ranked


def dense_score(point: int) -> float:
    return math.cos(0.1 * point)  # cosine against [1, 0, 0, 0]


def lexical_score(point: int) -> float:
    return TERM_WEIGHTS[point] * TERM_IDF


# -- fusion -------------------------------------------------------------------------------------------------


def test_rrf_fuses_the_two_leg_rankings(hand) -> None:
    expected = rrf_by_hand(60)
    assert order(expected) == [2, 1, 3, 5, 0, 4]
    hits = hand.query("hand", hybrid(Fusion("rrf", k=60)))
    assert names(hits) == [2, 1, 3, 5, 0, 4]
    assert [hit.score for hit in hits] == pytest.approx([expected[p] for p in names(hits)], rel=1e-5)
    assert hits[4].score == pytest.approx(1 / 60, rel=1e-5)  # p0: dense #1 only

    # a small k lets first places count more: p0 (dense #1 only) overtakes p5 (dense #6, lexical #4)
    small_k = rrf_by_hand(2)
    hits = hand.query("hand", hybrid(Fusion("rrf", k=2)))
    assert names(hits) == order(small_k) == [2, 1, 3, 0, 5, 4]
    assert [hit.score for hit in hits] == pytest.approx([small_k[p] for p in names(hits)], rel=1e-5)


def test_weighted_rrf_changes_the_order_as_qdrant_computes_it(hand) -> None:
    weighted = rrf_by_hand(60, (0.2, 1.0))
    hits = hand.query("hand", hybrid(Fusion("rrf", k=60, weights=(0.2, 1.0))))
    assert names(hits) == order(weighted) == [1, 2, 3, 5, 0, 4]
    assert names(hits) != order(rrf_by_hand(60))  # the weights changed the order...
    assert [hit.score for hit in hits] == pytest.approx([weighted[p] for p in names(hits)], rel=1e-5)
    assert hits[4].score == pytest.approx(1 / (1 / 0.2 + 59), rel=1e-5)  # p0: dense #1 only, weight 0.2
    # ...and not the way `sum of weight / (k + rank)` predicts (that would put p3, lexical #2, above p1)
    documented = {p: 0.0 for p in range(N_POINTS)}
    for ranking, weight in ((DENSE_ORDER, 0.2), (LEXICAL_ORDER, 1.0)):
        for rank, point in enumerate(ranking, start=1):
            documented[point] += weight / (60 + rank)
    assert order(documented) == [2, 3, 1, 5, 0, 4] != names(hits)
    # equal weights are plain RRF
    plain = hand.query("hand", hybrid(Fusion("rrf", k=60, weights=(1.0, 1.0))))
    assert names(plain) == order(rrf_by_hand(60))


DENSE_LEADS = (1.0, 0.2)  # (dense, lexical): one leg leads, the other refines
LEXICAL_LEADS = (0.2, 1.0)


def test_the_default_fusions_let_the_leading_leg_decide(hand) -> None:
    """The policy's two fusions (k=2; the leading leg at 1, the other at 0.2) on the fixed set: the leader's
    order holds except where the other leg lifts a point the leader ranks close."""
    dense_leads = hand.query("hand", hybrid(Fusion("rrf", RRF_K, DENSE_LEADS)))
    # p2 (dense #3, lexical #1) overtakes p1 (dense #2, no better in lexical); p5 overtakes p4 likewise
    assert names(dense_leads) == order(rrf_by_hand(RRF_K, DENSE_LEADS)) == [0, 2, 1, 3, 5, 4]
    lexical_leads = hand.query("hand", hybrid(Fusion("rrf", RRF_K, LEXICAL_LEADS)))
    assert names(lexical_leads) == order(rrf_by_hand(RRF_K, LEXICAL_LEADS)) == [2, 3, 1, 5, 0, 4]


def test_dbsf_sums_scores_normalised_by_mean_and_three_sample_deviations(hand) -> None:
    def normalised(scores: dict[int, float]) -> dict[int, float]:
        mean, spread = statistics.mean(scores.values()), statistics.stdev(scores.values())
        low, high = mean - 3 * spread, mean + 3 * spread
        return {p: min(1.0, max(0.0, (s - low) / (high - low))) for p, s in scores.items()}

    dense = normalised({p: dense_score(p) for p in DENSE_ORDER})
    lexical = normalised({p: lexical_score(p) for p in LEXICAL_ORDER})
    expected = {p: dense[p] + lexical.get(p, 0.0) for p in range(N_POINTS)}
    hits = hand.query("hand", hybrid(Fusion("dbsf")))
    assert names(hits) == order(expected) == [2, 1, 3, 0, 5, 4]  # DBSF keeps p0 (dense #1) above p5
    assert [hit.score for hit in hits] == pytest.approx([expected[p] for p in names(hits)], rel=1e-4)


def test_explain_gives_each_hit_its_rank_and_score_in_each_leg(hand) -> None:
    hits = {int(hit.payload["name"][1:]): hit for hit in hand.query("hand", hybrid(Fusion("rrf")))}
    for point, hit in hits.items():
        dense = hit.legs["dense"]  # every point has a dense vector
        assert dense.rank == DENSE_ORDER.index(point) + 1
        assert dense.score == pytest.approx(dense_score(point), abs=1e-5)
        if point in TERM_WEIGHTS:
            assert hit.legs["lexical"].rank == LEXICAL_ORDER.index(point) + 1
            assert hit.legs["lexical"].score == pytest.approx(lexical_score(point), rel=1e-5)
        else:
            assert "lexical" not in hit.legs  # not in that leg's results: absent, not rank 0
    assert set(hits[0].legs) == {"dense"} and set(hits[2].legs) == {"dense", "lexical"}
    quiet = hand.query("hand", hybrid(Fusion("rrf"), explain=False))
    assert names(quiet) == names(list(hits.values())) and all(not hit.legs for hit in quiet)


def test_single_leg_modes(hand) -> None:
    dense = hand.query("hand", SearchRequest("dense", 10, dense=QUERY_DENSE))
    assert names(dense) == DENSE_ORDER
    assert [h.score for h in dense] == pytest.approx([dense_score(p) for p in DENSE_ORDER], abs=1e-5)
    lexical = hand.query("hand", SearchRequest("lexical", 10, lexical=QUERY_LEXICAL))
    assert names(lexical) == LEXICAL_ORDER  # only the points with the term
    assert [h.score for h in lexical] == pytest.approx([lexical_score(p) for p in LEXICAL_ORDER], rel=1e-5)
    assert names(hand.query("hand", hybrid(Fusion("rrf"), limit=2))) == [2, 1]


def test_filters_apply_to_both_legs_before_fusion(hand) -> None:
    hits = hand.query("hand", hybrid(Fusion("rrf"), filters={"path": "a.md"}))
    assert names(hits) == [2, 0, 4]  # p2: dense #2 + lexical #1 of the filtered points
    assert {h.payload["path"] for h in hits} == {"a.md"}
    ranks = {int(h.payload["name"][1:]): leg_ranks(h) for h in hits}
    assert ranks == {2: {"dense": 2, "lexical": 1}, 0: {"dense": 1}, 4: {"dense": 3}}


def leg_ranks(hit) -> dict[str, int]:
    return {leg: place.rank for leg, place in hit.legs.items()}


def test_both_backends_give_the_same_fused_ranking(tmp_path: Path) -> None:
    edge, server = EdgeIndex(tmp_path / "edge"), QdrantServerIndex.connect(":memory:")
    try:
        for backend in (edge, server):
            fill(backend)
        for fusion in (Fusion("rrf"), Fusion("rrf", k=2), Fusion("rrf", weights=(0.2, 1.0)), Fusion("dbsf")):
            a, b = edge.query("hand", hybrid(fusion)), server.query("hand", hybrid(fusion))
            assert [h.id for h in a] == [h.id for h in b], fusion
            assert [h.score for h in a] == pytest.approx([h.score for h in b], rel=1e-5), fusion
            assert [leg_ranks(h) for h in a] == [leg_ranks(h) for h in b], fusion
    finally:
        edge.close()
        server.close()


# -- through the Retriever: real text, the bundled embedder ---------------------------------------------------

FAQ = """---
title: Nimbus FAQ
url: https://docs.example/faq
---
# Nimbus FAQ

## Single sign-on

Single sign-on with SAML 2.0 is available on the Business and Enterprise plans.

## Rate limits

The API answers HTTP 429 when a token sends more than 600 requests per minute.
"""

CHINESE = """# 发票说明

## 盖章要求

增值税专用发票必须加盖发票专用章。
"""


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "faq.md").write_text(FAQ, encoding="utf-8")
    (folder / "invoice.md").write_text(CHINESE, encoding="utf-8")
    (folder / "export.txt").write_text("Data export\n\nOwners can export all tickets as JSON or CSV.", encoding="utf-8")
    return folder


def test_retriever_reports_both_legs_and_picks_fusion_by_language(index, embedder, docs: Path) -> None:
    ingest_path(docs, index, embedder, "kb")
    retriever = Retriever(index, embedder)
    result = retriever.search("HTTP 429 rate limit", "kb", 5)
    assert result.mode == "hybrid" and result.note is None
    top = result.candidates[0]
    assert top.section == "Rate limits"
    assert top.lexical_rank == 1 and top.lexical_score > 0 and top.dense_rank is not None
    assert {"embed", "tokenize", "search"} <= set(result.timings_ms)
    for c in result.candidates:
        assert c.dense_rank is not None or c.lexical_rank is not None

    sent: list[SearchRequest] = []
    query = index.query
    index.query = lambda collection, request: sent.append(request) or query(collection, request)
    retriever.search("Which plans have SAML?", "kb", 5)
    retriever.search("发票需要盖什么章？", "kb", 5)
    retriever.search("发票需要盖什么章？", "kb", 5, fusion=Fusion("dbsf"))
    english, chinese = DEFAULT_WEIGHTS["english"], DEFAULT_WEIGHTS["chinese"]
    assert [r.fusion for r in sent] == [
        Fusion("rrf", english.k, (english.lead, english.lexical)),  # MiniLM knows English: dense leads
        Fusion("rrf", chinese.k, (chinese.lexical_alone,)),  # ...but not Chinese: BM25 alone (MiniLM weighs 0)
        Fusion("dbsf"),
    ]
    assert sent[1].dense is None  # a leg weighed 0 is not embedded
    assert all(r.mode == "hybrid" and r.explain for r in sent)


def test_the_explanation_can_come_after_the_fused_query(index, embedder, docs: Path) -> None:
    """The pipeline runs only the fused query before reranking and fetches the per-leg ranks meanwhile:
    the deferred explanation must give exactly what an explained search gives."""
    ingest_path(docs, index, embedder, "kb")
    retriever = Retriever(index, embedder)
    explained = retriever.search("HTTP 429 rate limit", "kb", 5)
    deferred = retriever.search("HTTP 429 rate limit", "kb", 5, explain=False)
    assert [c.point_id for c in deferred.candidates] == [c.point_id for c in explained.candidates]
    assert all(c.dense_rank is None and c.lexical_rank is None for c in deferred.candidates)
    calls = []
    places = index.leg_places
    index.leg_places = lambda *args: calls.append(args) or places(*args)
    deferred.explain()
    deferred.explain()  # once only
    assert len(calls) == 1
    assert deferred.candidates == explained.candidates
    dense_only = retriever.search("HTTP 429 rate limit", "kb", 5, mode="dense", explain=False)
    assert dense_only.pending_explanation is None and dense_only.candidates[0].dense_rank == 1


def test_a_stop_word_question_falls_back_to_dense(index, embedder, docs: Path) -> None:
    ingest_path(docs, index, embedder, "kb")
    retriever = Retriever(index, embedder)
    result = retriever.search("How is the", "kb", 3, mode="hybrid")
    assert result.mode == "dense" and result.note is None
    assert len(result.candidates) == 3
    for rank, c in enumerate(result.candidates, start=1):
        assert (c.retrieval_rank, c.dense_rank, c.lexical_rank, c.lexical_score) == (rank, rank, None, None)
        assert c.dense_score == pytest.approx(c.retrieval_score)
    lexical = retriever.search("How is the", "kb", 3, mode="lexical")
    assert lexical.mode == "lexical" and lexical.candidates == []


def _make_legacy(index, embedder, docs: Path) -> None:
    """A collection as ragbot made it before the lexical leg: a dense vector and no lexical model."""
    if isinstance(index, EdgeIndex):
        ingest_path(docs, index, embedder, "legacy")
        meta_file = index.root / "legacy" / "collection.json"
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        del meta["lexical_model"], meta["lexical_vector"]
        meta_file.write_text(json.dumps(meta), encoding="utf-8")
        return
    from qdrant_client import models

    index.client.create_collection(
        "legacy",
        vectors_config={"dense": models.VectorParams(size=embedder.dimension, distance=models.Distance.COSINE)},
        metadata={"embed_model": embedder.name},
    )
    texts = ["Single sign-on with SAML 2.0 is on the Business plan.", "Owners can export all tickets."]
    index.client.upsert(
        "legacy",
        [
            models.PointStruct(
                id=point_id("old.md", i),
                vector={"dense": vector.tolist()},
                payload={"path": "old.md", "text": text, "title": "Old", "chunk_index": i, "file_hash": "x"},
            )
            for i, (text, vector) in enumerate(zip(texts, embedder.encode(texts), strict=True))
        ],
    )


def test_a_legacy_collection_answers_dense_until_rebuilt(index, embedder, docs: Path, monkeypatch) -> None:
    _make_legacy(index, embedder, docs)
    info = index.collection_info("legacy")
    assert info.lexical_model is None and info.points > 0
    running = Retriever(index, embedder)  # a bot that keeps running through the rebuild
    for mode in ("hybrid", "lexical"):
        result = running.search("SAML single sign-on", "legacy", 2, mode=mode)
        assert result.mode == "dense" and result.candidates
        assert "--rebuild" in result.note and "legacy" in result.note
        assert all(c.dense_rank == c.retrieval_rank and c.lexical_rank is None for c in result.candidates)

    with pytest.raises(LegacyCollectionError) as error:
        ingest_path(docs, index, embedder, "legacy")
    assert re.search(r"ragbot ingest \S+ --collection legacy --rebuild", str(error.value)), str(error.value)
    assert index.collection_info("legacy").lexical_model is None  # nothing was written

    summary = ingest_path(docs, index, embedder, "legacy", rebuild=True)
    assert len(summary.added) == 3 and not summary.failed
    info = index.collection_info("legacy")
    assert info.lexical_model == LEXICAL_MODEL and info.points == summary.chunks  # the old points are gone
    result = Retriever(index, embedder).search("SAML single sign-on", "legacy", 3)
    assert result.mode == "hybrid" and result.note is None
    assert result.candidates[0].section == "Single sign-on" and result.candidates[0].lexical_rank == 1
    # the running one notices the rebuild within a minute
    later = time.monotonic() + 3600
    with monkeypatch.context() as m:
        m.setattr(time, "monotonic", lambda: later)
        assert running.search("SAML single sign-on", "legacy", 3).mode == "hybrid"


def test_reingesting_with_both_vectors_is_idempotent(index, embedder, docs: Path) -> None:
    first = ingest_path(docs, index, embedder, "kb")
    assert first.chunks > 0
    retriever = Retriever(index, embedder)

    def ranking(mode: str) -> list[tuple[str, float, int | None, int | None]]:
        found = retriever.search("SAML 429 发票 export", "kb", 10, mode=mode).candidates
        return [(c.point_id, round(c.retrieval_score, 6), c.dense_rank, c.lexical_rank) for c in found]

    before = {mode: ranking(mode) for mode in ("lexical", "hybrid")}
    assert len(before["lexical"]) == first.chunks  # each chunk has one of the terms
    again = ingest_path(docs, index, embedder, "kb")
    assert again.chunks == 0 and len(again.unchanged) == 3 and not again.added and not again.updated
    assert index.collection_info("kb").points == first.chunks
    assert {mode: ranking(mode) for mode in ("lexical", "hybrid")} == before


# -- a Chinese question the English-only embedder misses ----------------------------------------------------


@pytest.fixture(scope="module")
def sample_retriever(kb_store: Path, embedders, tmp_path_factory: pytest.TempPathFactory):
    """The sample knowledge base (ingested once per session), in this module's own copy of the store."""
    copy = tmp_path_factory.mktemp("kb-hybrid") / "qdrant"
    shutil.copytree(kb_store / "qdrant", copy)
    index = EdgeIndex(copy)
    yield Retriever(index, embedders)
    index.close()


@pytest.mark.parametrize(
    ("question", "relevant", "dense_misses"),
    [
        # dense finds this one at rank 2 since its chunks fit what the embedder reads (issue 18; before: below 5)
        ("增值税专用发票怎么开？", "billing/fapiao-zh.md", False),
        ("专票和普票有什么区别？", "billing/fapiao-zh.md", True),
        ("坐席价格是多少？", "billing/china-region-pricing-zh.md", True),
    ],
)
def test_a_chinese_question_that_dense_misses_and_hybrid_finds(
    sample_retriever, question: str, relevant: str, dense_misses: bool
) -> None:
    def places(mode: str) -> list[int]:
        result = sample_retriever.search(question, "kb", 20, mode=mode)
        assert result.mode == mode
        return [c.retrieval_rank for c in result.candidates if c.path.endswith(relevant)]

    dense = places("dense")  # the primary embedder alone: the English-only MiniLM
    assert not dense_misses or not dense or min(dense) > 5, f"dense found it at {dense}"
    hybrid = places("hybrid")  # the default fusion for a Chinese question
    assert hybrid and min(hybrid) <= 3, f"hybrid found it at {hybrid}"


def test_which_languages_the_embedder_is_trusted_in() -> None:
    from retrieval.embedders import BUNDLED_MODEL_NAME
    from retrieval.fusion import ALL_LANGUAGES, embedder_languages

    assert embedder_languages(BUNDLED_MODEL_NAME) == {"english"}
    assert embedder_languages("BAAI/bge-small-en-v1.5") == {"english"}
    assert embedder_languages("BAAI/bge-m3") == embedder_languages("Qwen/Qwen3-Embedding-0.6B") == ALL_LANGUAGES
    assert embedder_languages(BUNDLED_MODEL_NAME, "all") == ALL_LANGUAGES
    assert embedder_languages("BAAI/bge-m3", "en") == {"english"}
    assert embedder_languages("x", "english, zh") == ALL_LANGUAGES
    with pytest.raises(ValueError, match="klingon"):
        embedder_languages("x", "english,klingon")
