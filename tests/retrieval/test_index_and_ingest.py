"""The same retrieval tests on both `Index` backends (Qdrant Edge on disk; qdrant-client's in-memory Qdrant)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from retrieval import CollectionMismatchError, CollectionNotFoundError, Retriever, ingest_path
from retrieval.index import IndexPoint, point_id

FAQ = """---
title: Nimbus FAQ
url: https://docs.example/faq
---
# Nimbus FAQ

## Single sign-on

Single sign-on with SAML 2.0 is available on the Business and Enterprise plans.

## Invoices

Invoices are sent by email on the first day of each month.
"""

CHINESE = """# 发票说明

## 盖章要求

增值税专用发票必须加盖发票专用章。
"""


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    (folder / "zh").mkdir(parents=True)
    (folder / "faq.md").write_text(FAQ, encoding="utf-8")
    (folder / "zh" / "invoice.md").write_text(CHINESE, encoding="utf-8")
    (folder / "notes.txt").write_text("Rate limits\n\nThe API allows 600 requests per minute.", encoding="utf-8")
    (folder / ".hidden.md").write_text("# Hidden\n\nnever ingested", encoding="utf-8")
    return folder


def test_ingest_then_search_returns_ranked_candidates_with_payload(index, embedder, docs: Path) -> None:
    summary = ingest_path(docs, index, embedder, "kb", chunk_tokens=300, overlap_tokens=40)
    assert summary.files == 3 and len(summary.added) == 3 and not summary.failed
    assert summary.chunks == 4
    result = Retriever(index, embedder).search("Which plans include SAML single sign-on?", "kb", limit=3)
    top = result.candidates[0]
    assert top.title == "Nimbus FAQ" and top.section == "Single sign-on"
    assert top.source == "https://docs.example/faq"
    assert "Business and Enterprise" in top.text
    assert [c.retrieval_rank for c in result.candidates] == [1, 2, 3]
    scores = [c.retrieval_score for c in result.candidates]
    assert scores == sorted(scores, reverse=True)
    assert set(result.timings_ms) == {"embed", "tokenize", "search"}
    # a source without a URL is the file's path
    paths = {c.source for c in Retriever(index, embedder).search("API requests per minute", "kb", 4).candidates}
    assert (docs / "notes.txt").resolve().as_posix() in paths


def test_reingesting_is_idempotent_and_incremental(index, embedder, docs: Path) -> None:
    ingest_path(docs, index, embedder, "kb")
    ids_before = _ids(index, embedder)
    again = ingest_path(docs, index, embedder, "kb")
    assert len(again.unchanged) == 3 and again.chunks == 0 and not again.added and not again.updated
    assert _ids(index, embedder) == ids_before

    (docs / "faq.md").write_text(FAQ.replace("first day", "fifth day"), encoding="utf-8")
    (docs / "notes.txt").unlink()
    changed = ingest_path(docs, index, embedder, "kb")
    assert [Path(p).name for p in changed.updated] == ["faq.md"]
    assert [Path(p).name for p in changed.removed] == ["notes.txt"]
    assert index.collection_info("kb").points == 3
    texts = [c.text for c in Retriever(index, embedder).search("When are invoices sent?", "kb", 5).candidates]
    assert any("fifth day" in t for t in texts) and not any("first day" in t for t in texts)


def test_a_shrinking_file_loses_its_extra_chunks(index, embedder, tmp_path: Path) -> None:
    long_doc = tmp_path / "long.md"
    long_doc.write_text("# Long\n\n" + "\n\n".join(f"## Part {i}\n\nText of part {i}." for i in range(5)))
    ingest_path(long_doc, index, embedder, "kb")
    assert index.collection_info("kb").points == 5
    long_doc.write_text("# Long\n\n## Part 0\n\nOnly one part now.")
    ingest_path(long_doc, index, embedder, "kb")
    assert index.collection_info("kb").points == 1


def test_ingesting_one_file_does_not_remove_the_rest(index, embedder, docs: Path) -> None:
    ingest_path(docs, index, embedder, "kb")
    summary = ingest_path(docs / "faq.md", index, embedder, "kb")
    assert summary.removed == [] and index.collection_info("kb").points == 4


def test_a_corrupt_pdf_fails_alone_and_is_named(index, embedder, docs: Path) -> None:
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7 garbage")
    summary = ingest_path(docs, index, embedder, "kb")
    assert len(summary.added) == 3
    [(path, reason)] = summary.failed.items()
    assert path.endswith("broken.pdf") and "PDF" in reason


def test_search_filters_on_payload(index, embedder, docs: Path) -> None:
    ingest_path(docs, index, embedder, "kb")
    doc_id = Retriever(index, embedder).search("发票专用章", "kb", 1).candidates[0].doc_id
    hits = index.search("kb", embedder.encode_query("rate limits"), 10, filters={"doc_id": doc_id})
    assert hits and {h.payload["doc_id"] for h in hits} == {doc_id}


def test_missing_collection_and_model_mismatch_are_clear_errors(index, embedder, docs: Path) -> None:
    with pytest.raises(CollectionNotFoundError, match="ragbot ingest"):
        Retriever(index, embedder).search("anything", "nothing-here", 5)
    index.create_collection("small", 8, "some/other-model", "some-lexical-model")
    index.upsert("small", [IndexPoint(point_id("x", 0), [0.1] * 8, {"path": "x", "text": "x"})])
    with pytest.raises(CollectionMismatchError, match="some/other-model"):
        Retriever(index, embedder).search("anything", "small", 5)
    with pytest.raises(CollectionMismatchError, match="re-ingest"):
        ingest_path(docs, index, embedder, "small")


def _ids(index, embedder) -> list[str]:
    return sorted(h.id for h in index.search("kb", embedder.encode_query("x"), 100))


def test_embedded_store_persists_across_reopen(embedder, docs: Path, tmp_path: Path) -> None:
    from retrieval import open_index

    with open_index(None, str(tmp_path / "q")) as index:
        ingest_path(docs, index, embedder, "kb")
    with open_index(None, str(tmp_path / "q")) as index:
        assert index.collection_info("kb").points == 4
        assert len(ingest_path(docs, index, embedder, "kb").unchanged) == 3


def test_a_second_process_gets_a_clear_message_about_the_embedded_lock(embedder, docs: Path, tmp_path: Path) -> None:
    from retrieval import IndexLockedError, open_index

    with open_index(None, str(tmp_path / "q")) as index:
        ingest_path(docs, index, embedder, "kb")
        code = (
            "from retrieval import open_index\n"
            "from retrieval.errors import IndexLockedError\n"
            f"index = open_index(None, {str(tmp_path / 'q')!r})\n"
            "try:\n    index.collection_info('kb')\nexcept IndexLockedError as e:\n    print(e)\n"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
        message = result.stdout
        assert "in use by process" in message and "QDRANT_URL" in message
        assert str(__import__("os").getpid()) in message
    assert IndexLockedError  # the class the message comes from is exported


def test_server_backend_unreachable_is_a_clear_error(embedder) -> None:
    from retrieval import IndexUnavailableError, open_index

    with open_index("http://127.0.0.1:9", "", timeout=2) as index, pytest.raises(IndexUnavailableError) as info:
        index.collection_info("kb")
    assert "127.0.0.1:9" in str(info.value) and "QDRANT_URL" in str(info.value)


def test_sample_knowledge_base_ingests_without_failures(embedder, tmp_path: Path) -> None:
    from retrieval import open_index
    from tests.conftest import SAMPLE_KB

    copy = tmp_path / "kb"
    shutil.copytree(SAMPLE_KB, copy)
    with open_index(None, str(tmp_path / "q")) as index:
        summary = ingest_path(copy, index, embedder, "kb")
    assert summary.files >= 25 and not summary.failed, summary.failed
    suffixes = {Path(p).suffix for p in summary.added}
    assert {".md", ".html", ".txt", ".pdf"} <= suffixes
