"""Payload filters (a preset's sources and tags) inside the Qdrant query, on both `Index` backends (Qdrant Edge on
disk; qdrant-client's in-memory Qdrant): every leg of a hybrid query is filtered before it is cut to its depth, so
a matching point ranked far down the unfiltered legs is still found; a list means any of its values."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from retrieval import Retriever, ingest_path
from retrieval.index import IndexPoint, SearchRequest, filter_terms, point_id
from retrieval.lexical import LEXICAL_MODEL, SparseVector

TERM = 7
QUERY = SearchRequest("hybrid", 5, dense=[1.0, 0.0, 0.0, 0.0], lexical=SparseVector((TERM,), (1.0,)), depth=5)
N_POINTS = 40
# Point i sits at angle 0.03*i from the query and holds the query term with weight 40 - i: both legs rank p0, p1...
# Every point is from "wiki" tagged "general", except these: the last one, p39, is 39 places down both legs.
DOCUMENTS = {
    3: ("helpdesk", ["billing"]),
    5: ("helpdesk", ["sso", "security"]),
    8: ("drive", ["security"]),
    39: ("drive", ["rare"]),
}


def points() -> list[IndexPoint]:
    made = []
    for i in range(N_POINTS):
        angle = 0.03 * i
        source_name, tags = DOCUMENTS.get(i, ("wiki", ["general"]))
        payload = {"path": f"p{i}.md", "name": f"p{i}", "source_name": source_name, "tags": tags}
        sparse = SparseVector((TERM,), (float(N_POINTS - i),))
        made.append(IndexPoint(point_id("filters", i), [math.cos(angle), math.sin(angle), 0.0, 0.0], payload, sparse))
    return made


@pytest.fixture
def filled(index):
    index.create_collection("filters", 4, "hand-made", LEXICAL_MODEL)
    index.upsert("filters", points())
    index.finish_writes("filters")
    return index


def found(hits) -> list[int]:
    return [int(hit.payload["name"][1:]) for hit in hits]


def with_filters(filters, **changes) -> SearchRequest:
    fields = {**QUERY.__dict__, "filters": filters, **changes}
    return SearchRequest(**fields)


def test_unfiltered_the_legs_stop_at_their_depth(filled) -> None:
    assert found(filled.query("filters", QUERY)) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"source_name": ["helpdesk"]}, [3, 5]),
        ({"source_name": ["helpdesk", "drive"]}, [3, 5, 8, 39]),  # any of the sources
        ({"tags": ["security"]}, [5, 8]),  # a point whose tag list holds any of them
        ({"tags": ["billing", "rare"]}, [3, 39]),
        ({"source_name": ["drive"], "tags": ["security", "billing"]}, [8]),  # both must hold
        ({"source_name": "helpdesk"}, [3, 5]),  # a scalar is equality, as before
        ({"source_name": ["helpdesk"], "tags": []}, [3, 5]),  # an empty list restricts nothing
        ({"source_name": ["nowhere"]}, []),
    ],
)
def test_a_filtered_hybrid_query_returns_only_matching_points(filled, filters, expected) -> None:
    hits = filled.query("filters", with_filters(filters))
    assert found(hits) == expected
    # each hit is placed in both (filtered) legs: they looked past the points the filter drops
    for hit in hits:
        assert set(hit.legs) == {"dense", "lexical"}


def test_depth_is_not_lost_to_the_filter(filled) -> None:
    """p39 is 39 places down both unfiltered legs, far past their depth of 5: filtered inside each leg, it is found
    and first in each; a filter applied after fusion would have had nothing left."""
    request = with_filters({"tags": ["rare"]})
    [hit] = filled.query("filters", request)
    assert found([hit]) == [39]
    assert hit.legs["dense"].rank == 1 and hit.legs["lexical"].rank == 1
    places = filled.leg_places("filters", request)
    assert [ids for ids in places] == ["dense", "lexical"]
    assert all([point for point, _ in leg] == [point_id("filters", 39)] for leg in places.values())
    without_explain = filled.query("filters", with_filters({"tags": ["rare"]}, explain=False))
    assert found(without_explain) == [39]


def test_single_leg_queries_are_filtered_too(filled) -> None:
    dense = SearchRequest("dense", 3, dense=QUERY.dense, filters={"tags": ["security", "rare"]})
    lexical = SearchRequest("lexical", 3, lexical=QUERY.lexical, filters={"source_name": ["drive"]})
    assert found(filled.query("filters", dense)) == [5, 8, 39]
    assert found(filled.query("filters", lexical)) == [8, 39]


def test_filter_terms_read_lists_as_any_of_and_drop_empty_ones() -> None:
    terms = filter_terms({"tags": ("a", "b"), "source_name": [], "path": "x.md", "names": {"n"}})
    assert terms == [("tags", ["a", "b"]), ("path", "x.md"), ("names", ["n"])]
    assert filter_terms(None) == [] and filter_terms({"tags": []}) == []


def test_the_retriever_filters_documents_by_their_front_matter_tags(tmp_path: Path, embedders) -> None:
    """Ingested Markdown with tags in its front matter, searched by a real embedder: only the tagged document
    comes back, with its updated date on the candidate."""
    from retrieval import open_index

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "refunds.md").write_text(
        "---\ntags: [billing]\nupdated: 2026-11-03\n---\n# Refunds\n\nRefunds of an invoice take five days.",
        encoding="utf-8",
    )
    (docs / "invoices.md").write_text(
        "---\ntags: [general]\n---\n# Invoices\n\nAn invoice is sent each month; refunds appear on the next one.",
        encoding="utf-8",
    )
    with open_index(None, str(tmp_path / "qdrant")) as index:
        summary = ingest_path(docs, index, embedders, "kb")
        assert not summary.failed
        retriever = Retriever(index, embedders)
        everything = retriever.search("How long do invoice refunds take?", "kb", 10)
        assert {Path(c.path).name for c in everything.candidates} == {"refunds.md", "invoices.md"}
        tagged = retriever.search("How long do invoice refunds take?", "kb", 10, filters={"tags": ["billing"]})
        assert tagged.mode == "hybrid"
        assert {Path(c.path).name for c in tagged.candidates} == {"refunds.md"}
        assert {c.updated for c in tagged.candidates} == {"2026-11-03"}
        none = retriever.search("How long do invoice refunds take?", "kb", 10, filters={"tags": ["nothing"]})
        assert none.candidates == []
