"""Every metric against hand-computed values on small fixed rankings."""

from __future__ import annotations

import math

import pytest

from evaluation.metrics import hit_at, mrr_at, ndcg_at, percentile, question_metrics, recall

REL = {"a": 1, "b": 1}


def test_hits_and_mrr() -> None:
    ranked = ["x", "a", "y", "b"]
    assert hit_at(ranked, REL, 1) == 0.0 and hit_at(ranked, REL, 3) == 1.0
    assert mrr_at(ranked, REL, 10) == 0.5
    assert mrr_at(["x", "y", "z", "a"], REL, 3) == 0.0  # first relevant at 4, outside k


def test_ndcg_binary_hand_computed() -> None:
    # relevant at ranks 2 and 4: DCG = 1/log2(3) + 1/log2(5); ideal = 1/log2(2) + 1/log2(3)
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at(["x", "a", "y", "b"], REL, 10) == pytest.approx(expected)
    assert ndcg_at(["a", "b"], REL, 10) == pytest.approx(1.0)


def test_ndcg_graded_relevance() -> None:
    graded = {"a": 2, "b": 1}
    # b first (gain 1), a second (gain 3): DCG = 1 + 3/log2(3); ideal: 3 + 1/log2(3)
    expected = (1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3))
    assert ndcg_at(["b", "a"], graded, 10) == pytest.approx(expected)


def test_a_document_counts_once_even_with_several_chunks() -> None:
    # a, a, b: the second chunk of a adds nothing; DCG = 1 + 1/log2(4)
    expected = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert ndcg_at(["a", "a", "b"], REL, 10) == pytest.approx(expected)


def test_tied_rerank_scores_keep_retrieval_order() -> None:
    from evaluation.dataset import EvalItem
    from evaluation.runner import BASELINE, EvalConfig, rank_candidates
    from retrieval import Candidate

    class Flat:
        name = "flat"

        def score(self, query, documents, instruction=None):
            return [0.5, 0.9, 0.5, 0.5][: len(documents)]

    candidates = [Candidate(f"p{i}", d, d, f"https://d/{d}", "", "t", i + 1, 0.1) for i, d in enumerate("xayb")]
    run = rank_candidates(EvalItem("q", {"a": 1, "b": 1}), candidates, Flat(), [EvalConfig("flat", "i")])
    assert run.by_config["flat"].order == [1, 0, 2, 3]  # a first, then the 0.5 ties in retrieval order x, y, b
    assert run.by_config["flat"].metrics.hit_at_1 == 1.0
    assert run.by_config[BASELINE].order == [0, 1, 2, 3] and run.by_config[BASELINE].metrics.mrr_at_10 == 0.5


def test_no_relevant_document_scores_zero() -> None:
    metrics = question_metrics(["x", "y", None], REL)
    assert (metrics.hit_at_1, metrics.hit_at_3, metrics.hit_at_5, metrics.mrr_at_10, metrics.ndcg_at_10) == (
        0,
        0,
        0,
        0,
        0,
    )
    assert metrics.hit_at_10 == metrics.recall == 0
    assert metrics.first_relevant_rank is None
    empty = question_metrics(["a"], {})
    assert empty.ndcg_at_10 == 0.0 and empty.recall == 0.0


def test_recall_is_the_share_of_relevant_documents_found() -> None:
    assert recall(["a", "x", "a"], {"a": 1, "b": 2, "c": 1}) == pytest.approx(1 / 3)


def test_percentile_matches_numpy_linear() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([10, 20, 30, 40, 50], 95) == pytest.approx(48.0)
    assert percentile([], 50) == 0.0
    # the same percentiles the admin overview shows for its latencies (it calls numpy directly)
    assert percentile([7], 95) == 7
    assert percentile(list(range(1, 101)), 95) == pytest.approx(95.05)


def test_hit_at_5_and_10_count_a_relevant_chunk_that_retrieval_hands_the_reranker_beyond_the_top_3() -> None:
    ranked = ["x1", "x2", "x3", "x4", "a", "x6", "x7", "x8", "x9", "x10", "b"]
    metrics = question_metrics(ranked, {"a": 1, "b": 1})
    assert (metrics.hit_at_1, metrics.hit_at_3, metrics.hit_at_5, metrics.hit_at_10) == (0, 0, 1, 1)
    late = question_metrics(ranked[5:], {"b": 1})  # "b" is sixth there: beyond hit@5, within hit@10
    assert (late.hit_at_5, late.hit_at_10) == (0, 1)
