"""A preset's tag and source filters, through the answer service to a real retriever over an embedded Qdrant Edge
index of ingested Markdown: the question is answered, cited and compared from the allowed documents only, and a
citation carries its document's updated date."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

import store
from bot.answering import AnswerService, AnswerStatus, ExtractiveAnswerer, Presets, RankingRecorder, RerankerSlot
from retrieval import Retriever, ingest_path, open_index

QUESTION = "How long does a refund of an invoice take?"
DOCS = {
    # The untagged page answers the question best: a filter that only trimmed the fused list would keep it.
    "refund-policy.md": "---\ntags: [general]\n---\n# Refund policy\n\nA refund of an invoice takes five days.",
    "billing-refunds.md": (
        "---\ntags: [billing, finance]\nupdated: 2026-11-03T09:30:00Z\n---\n# Billing refunds\n\n"
        "Refunds are paid back to the card the invoice was charged to."
    ),
    "billing-invoices.md": (
        "---\ntags: [billing]\nsource_name: helpdesk\n---\n"
        "# Invoices\n\nEvery invoice lists its refunds on the next one."
    ),
    "sso.md": "---\ntags: [security]\n---\n# Single sign-on\n\nSSO needs the Business plan.",
}


class SameScores:
    """A reranker that finds every passage equally good (the order then stays retrieval's)."""

    name = "same-scores"

    def score(self, query, documents, instruction=None) -> list[float]:
        return [0.8] * len(documents)


@pytest.fixture
def retriever(tmp_path: Path, embedders) -> Iterator[Retriever]:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    with open_index(None, str(tmp_path / "qdrant")) as index:
        assert not ingest_path(docs, index, embedders, "kb").failed
        yield Retriever(index, embedders)


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = store.make_engine(f"sqlite:///{tmp_path / 'answers.db'}")
    store.upgrade_database(engine)
    yield store.session_factory(engine)
    engine.dispose()


def answer_service(sessions, retriever) -> AnswerService:
    return AnswerService(
        Presets(sessions, "kb"), retriever, RerankerSlot(SameScores), ExtractiveAnswerer(), RankingRecorder(sessions)
    )


def set_filters(sessions, source_filter=None, tag_filter=None) -> None:
    with sessions.begin() as session:
        preset = store.default_preset(session)
        preset.source_filter, preset.tag_filter = source_filter, tag_filter


def names(paths) -> set[str]:
    return {Path(path).name for path in paths}


def test_without_filters_the_best_page_is_cited(sessions, retriever) -> None:
    result = answer_service(sessions, retriever).ask(QUESTION)
    assert "refund-policy.md" in names(rc.candidate.path for rc in result.candidates)
    assert result.preset.filters() is None


def test_a_tag_filter_cites_only_tagged_documents(sessions, retriever) -> None:
    set_filters(sessions, tag_filter=["billing"])
    result = answer_service(sessions, retriever).ask(QUESTION)
    assert result.status is AnswerStatus.OK and result.citations
    assert result.preset.tag_filter == ("billing",)
    assert names(rc.candidate.path for rc in result.candidates) == {"billing-refunds.md", "billing-invoices.md"}
    cited = {c.title: c for c in result.citations}
    assert set(cited) <= {"Billing refunds", "Invoices"}
    assert cited["Billing refunds"].updated == "2026-11-03T09:30:00+00:00"  # the front matter's, read by YAML
    assert cited["Billing refunds"].updated_date == "2026-11-03"
    json_citations = {c["title"]: c for c in result.to_json()["citations"]}
    assert json_citations["Billing refunds"]["updated"] == "2026-11-03T09:30:00+00:00"


def test_source_and_tag_filters_both_hold(sessions, retriever) -> None:
    set_filters(sessions, source_filter=["helpdesk"], tag_filter=["billing", "security"])
    result = answer_service(sessions, retriever).ask(QUESTION)
    assert names(rc.candidate.path for rc in result.candidates) == {"billing-invoices.md"}
    set_filters(sessions, source_filter=[], tag_filter=[])  # empty lists: no restriction
    result = answer_service(sessions, retriever).ask(QUESTION)
    assert len(result.candidates) == len(DOCS) and result.preset.filters() is None


def test_a_preset_comparison_retrieves_with_the_saved_presets_filters(sessions, retriever) -> None:
    set_filters(sessions, tag_filter=["security"])
    comparison = answer_service(sessions, retriever).compare("default", "Judge by the plan.", QUESTION, "dense")
    for row in comparison.rows:
        assert names(side.candidate.path for side in (row.saved, row.draft) if side) == {"sso.md"}
