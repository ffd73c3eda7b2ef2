"""The sync engine (retrieval.sources.sync) against a real website on 127.0.0.1 and a real Qdrant Edge index: after
every sync the collection holds exactly what the source holds; a page that fails is kept, a source that fails
prunes nothing, Ctrl-C keeps what was done, orphaned chunks go, and a re-sync of an unchanged site embeds nothing."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from retrieval import open_index
from retrieval.index import Index
from retrieval.ingest import BATCH_CHUNKS, DocumentWriter
from retrieval.lexical import LexicalEncoder
from retrieval.loaders import load_content
from retrieval.sources import DocumentMeta, KnownDocument
from retrieval.sources.folder import FolderConnector
from retrieval.sources.sync import SyncInterrupted, SyncReport, document_path, sync_source
from retrieval.sources.web import WebConnector
from tests.e2e.test_cli import closed_port
from tests.retrieval.sources.web_site import WebSite, html

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)
T1 = T0 + timedelta(days=3)
COLLECTION = "kb"
NAME = "site"


class MemoryLedger:
    """The ledger the engine is given, kept in a dict (ragbot keeps it in the database)."""

    def __init__(self) -> None:
        self.docs: dict[str, KnownDocument] = {}

    def known(self) -> Mapping[str, KnownDocument]:
        return dict(self.docs)

    def keep(self, state: KnownDocument, meta: DocumentMeta | None) -> None:
        self.docs[state.key] = state

    def forget(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.docs.pop(key, None)


def site_pages() -> dict[str, tuple[str | bytes, datetime | None]]:
    """/docs/ links four pages; each says something the others do not."""
    return {
        "/docs/": (html("Docs home", ["a", "b", "c", "d"], body="Welcome to the Quarzel documentation."), T0),
        "/docs/a": (html("Install", body="Install Quarzel with the installer on every workstation."), T0),
        "/docs/b": (html("Billing", body="Invoices for Quarzel are sent on the first of the month."), T0),
        "/docs/c": (html("Single sign-on", body="Quarzel supports SAML single sign-on through Okta."), T0),
        "/docs/d": (html("Exports", body="Export every Quarzel record as CSV from the admin page."), T0),
    }


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Index]:
    with open_index(None, str(tmp_path / "qdrant")) as opened:
        yield opened


@pytest.fixture
def writer(index: Index, embedders) -> DocumentWriter:
    return DocumentWriter(index, embedders, LexicalEncoder(), COLLECTION, 200, 40, BATCH_CHUNKS)


def sync(site: WebSite, ledger: MemoryLedger, writer: DocumentWriter, **options: Any) -> SyncReport:
    with WebConnector(site.url("/docs/"), min_interval=0) as connector:
        return sync_source(NAME, connector, ledger, writer, tags=("docs",), **options)


def paths(index: Index) -> dict[str, str]:
    """The collection's documents (path -> hash); a path with an empty hash is a document cut off mid-write."""
    return index.file_hashes(COLLECTION)


def expected(site: WebSite, keys: Iterable[str]) -> set[str]:
    return {document_path(NAME, site.url(key)) for key in keys}


def payloads(index: Index, fields: list[str]) -> list[Mapping[str, Any]]:
    found: list[Mapping[str, Any]] = []
    offset = None
    while True:
        page, offset = index.scroll_payloads(COLLECTION, fields, offset)
        found += page
        if offset is None:
            return found


def test_the_collection_follows_the_site_through_edits_additions_deletions_and_failures(index, writer) -> None:
    ledger = MemoryLedger()
    with WebSite(site_pages()) as site:
        first = sync(site, ledger, writer)
        five = ["/docs/", "/docs/a", "/docs/b", "/docs/c", "/docs/d"]
        assert first.status == "ok" and sorted(first.added) == sorted(site.url(p) for p in five)
        assert set(paths(index)) == expected(site, five) and all(paths(index).values())
        assert set(ledger.docs) == {site.url(p) for p in five}
        chunks = payloads(index, ["path", "source", "source_name", "tags", "updated"])
        assert chunks and {chunk["source_name"] for chunk in chunks} == {NAME}
        for chunk in chunks:
            assert chunk["path"] == document_path(NAME, chunk["source"])  # the citation is the page's URL
            assert chunk["tags"] == ["docs"] and chunk["updated"] == T0.isoformat()
        b_hash = paths(index)[document_path(NAME, site.url("/docs/b"))]

        # the site moves on: a edited, e added (linked from the home page), c deleted (unlinked), b broken
        site.pages["/docs/"] = (html("Docs home", ["a", "b", "d", "e"], body="Welcome, now with e."), T1)
        site.pages["/docs/a"] = (html("Install", body="Install Quarzel with the new package manager."), T1)
        site.pages["/docs/e"] = (html("Webhooks", body="Quarzel sends webhooks for every invoice."), T1)
        del site.pages["/docs/c"]
        site.fail["/docs/b"] = 500
        second = sync(site, ledger, writer)
        now = ["/docs/", "/docs/a", "/docs/b", "/docs/d", "/docs/e"]
        assert second.status == "ok"
        assert sorted(second.changed) == sorted([site.url("/docs/"), site.url("/docs/a")])
        assert second.added == [site.url("/docs/e")] and second.removed == [site.url("/docs/c")]
        assert list(second.failed) == [site.url("/docs/b")] and "500" in second.failed[site.url("/docs/b")]
        assert second.unchanged == [site.url("/docs/d")]
        assert set(paths(index)) == expected(site, now)
        assert paths(index)[document_path(NAME, site.url("/docs/b"))] == b_hash  # kept with its old chunks
        assert set(ledger.docs) == {site.url(p) for p in now}
        texts = " ".join(chunk["text"] for chunk in payloads(index, ["text"]))
        assert "new package manager" in texts and "every workstation" not in texts and "SAML" not in texts

        # nothing changed: every page answers 304 and nothing is embedded
        site.fail.clear()
        site.reset_counts()
        third = sync(site, ledger, writer)
        assert third.status == "ok" and third.chunks == 0
        assert not (third.added or third.changed or third.removed or third.failed)
        assert sorted(third.unchanged) == sorted(site.url(p) for p in now)
        assert sum(site.not_modified.values()) == site.page_requests() == 5
        assert set(paths(index)) == expected(site, now)


def test_a_source_that_fails_prunes_nothing(index, writer) -> None:
    ledger = MemoryLedger()
    with WebSite(site_pages()) as site:
        assert sync(site, ledger, writer).status == "ok"
        before = paths(index)
        del site.pages["/docs/c"]  # gone, but the sync cannot tell: the start page fails
        site.fail["/docs/"] = 500
        report = sync(site, ledger, writer)
        assert report.status == "failed" and "500" in (report.error or "")
        assert not report.removed and paths(index) == before and len(ledger.docs) == 5
    port = closed_port()  # the server is gone altogether
    with WebConnector(f"http://127.0.0.1:{port}/docs/", min_interval=0) as connector:
        report = sync_source(NAME, connector, ledger, writer)
    assert report.status == "failed" and report.error and not report.removed
    assert paths(index) == before and len(ledger.docs) == 5


def test_ctrl_c_keeps_what_was_done_and_the_next_sync_finishes(index, writer) -> None:
    ledger = MemoryLedger()
    done: list[str] = []

    def stop_after_two(key: str, outcome: str) -> None:
        done.append(key)
        if len(done) == 2:
            raise KeyboardInterrupt

    with WebSite(site_pages()) as site:
        with pytest.raises(SyncInterrupted) as stopped:
            sync(site, ledger, writer, progress=stop_after_two)
        assert stopped.value.report.status == "interrupted" and len(stopped.value.report.added) == 2
        assert (
            set(paths(index))
            == {document_path(NAME, key) for key in done}
            == {document_path(NAME, key) for key in ledger.docs}
        )
        report = sync(site, ledger, writer)
        assert report.status == "ok" and sorted(report.unchanged) == sorted(done) and len(report.added) == 3
        assert set(paths(index)) == expected(site, site.pages)


def test_chunks_the_ledger_does_not_know_are_pruned(index, writer, tmp_path: Path) -> None:
    """A crash between writing a document and recording it leaves chunks nobody knows: the next sync removes them,
    and leaves another source's documents (and ingested files) alone."""
    ledger = MemoryLedger()
    with WebSite(site_pages()) as site:
        assert sync(site, ledger, writer).status == "ok"
        ghost = tmp_path / "ghost.md"
        ghost.write_text("# Ghost\n\nA page the ledger never recorded.\n")
        for path in (document_path(NAME, site.url("/docs/ghost")), document_path("other", "x"), "handbook.md"):
            document = load_content(ghost.read_bytes(), "ghost.md")
            document.path = path
            writer.write(path, "hash-" + path, document, 10, None)
        index.finish_writes(COLLECTION)
        assert document_path(NAME, site.url("/docs/ghost")) in paths(index)
        report = sync(site, ledger, writer)
        assert report.status == "ok" and not report.removed
        assert set(paths(index)) == expected(site, site.pages) | {document_path("other", "x"), "handbook.md"}


def test_a_document_that_does_not_load_is_failed_not_a_crash(index, writer) -> None:
    pages = site_pages()
    pages["/docs/"] = (html("Docs home", ["a", "guide.pdf"]), T0)
    pages["/docs/guide.pdf"] = (b"%PDF-1.4 this is not really a PDF\x00\xff", T0)
    ledger = MemoryLedger()
    with WebSite(pages) as site:
        report = sync(site, ledger, writer)
        assert report.status == "ok" and sorted(report.added) == sorted([site.url("/docs/"), site.url("/docs/a")])
        assert list(report.failed) == [site.url("/docs/guide.pdf")]
        assert set(paths(index)) == expected(site, ["/docs/", "/docs/a"])


def test_front_matter_and_the_source_tags_reach_the_payload(index, writer, tmp_path: Path) -> None:
    folder = tmp_path / "handbook"
    folder.mkdir()
    (folder / "pricing.md").write_text(
        "---\ntitle: Pricing\ntags: [pricing, sales]\nupdated: 2026-01-15\nproduct:\n  tier: pro\n---\n"
        "# Pricing\n\nThe Quarzel Pro plan costs 40 euros a month.\n"
    )
    with FolderConnector(folder) as connector:
        report = sync_source("handbook", connector, MemoryLedger(), writer, tags=("internal",))
    assert report.status == "ok" and report.added == ["pricing.md"]
    chunks = payloads(index, ["path", "source_name", "tags", "updated", "meta"])
    assert chunks and all(chunk["path"] == "handbook:pricing.md" for chunk in chunks)
    for chunk in chunks:
        assert chunk["source_name"] == "handbook"
        assert set(chunk["tags"]) == {"internal", "pricing", "sales"}
        assert chunk["updated"] == "2026-01-15"  # what the document says, not when the file was copied
        assert chunk["meta"]["product.tier"] == "pro"  # nested front matter keys, dotted
