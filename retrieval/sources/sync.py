"""One sync of one source: walk it, write what changed into the collection, prune what is gone.

The ledger (what the last sync kept of each document: versions, validators, content hashes) is stored by the
caller, in the database; the collection holds the chunks. A document is written with ingestion's commit protocol
(chunk 0 stamped last), and only then recorded in the ledger, so a sync cut off anywhere redoes the documents it
had not finished and leaves the others as they were. Pruning happens only after a complete walk: a listing cut
short by an error or Ctrl-C removes nothing, and a document that failed to fetch is kept.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from retrieval.documents import Chunk, LoadedDocument
from retrieval.errors import DocumentLoadError, first_line
from retrieval.index import Index, dense_vectors
from retrieval.ingest import DocumentWriter, content_hash
from retrieval.loaders import load_content
from retrieval.sources.base import Changed, Connector, DocumentMeta, Failed, KnownDocument, SourceError, Unchanged

# Called after each document with (key, outcome): added, changed, unchanged, failed, removed.
SyncProgress = Callable[[str, str], None]


class DocumentLedger(Protocol):
    """Where a source's document states live between syncs (the database, for ragbot)."""

    def known(self) -> Mapping[str, KnownDocument]: ...

    def keep(self, state: KnownDocument, meta: DocumentMeta | None) -> None: ...

    def forget(self, keys: Iterable[str]) -> None: ...


@dataclass
class SyncReport:
    source: str
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # document key -> reason
    chunks: int = 0
    seconds: float = 0.0
    error: str | None = None  # the source as a whole could not be read: nothing was pruned
    interrupted: bool = False

    @property
    def status(self) -> str:
        return "interrupted" if self.interrupted else "failed" if self.error else "ok"

    @property
    def documents(self) -> int:
        """Documents the source holds as of this sync (those it failed to fetch included: they are kept)."""
        return len(self.added) + len(self.changed) + len(self.unchanged) + len(self.failed)


class SyncInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sync, raised once the documents finished were recorded; `report` says what was done."""

    def __init__(self, report: SyncReport) -> None:
        super().__init__()
        self.report = report


def document_path(source: str, key: str) -> str:
    """The `path` a source's document has in the collection: unique across sources, stable across syncs."""
    return f"{source}:{key}"


def purge_documents(index: Index, collection: str, source: str, keys: Iterable[str]) -> int:
    """Delete a source's documents (`keys`, and any chunks under its name the ledger lost track of); how many keys."""
    keys = list(keys)
    prefix = document_path(source, "")
    paths = {document_path(source, key) for key in keys}
    paths.update(path for path in index.file_hashes(collection) if path.startswith(prefix))
    for path in sorted(paths):
        index.delete_file(collection, path)
    if paths:
        index.finish_writes(collection)
    return len(keys)


def sync_source(
    name: str,
    connector: Connector,
    ledger: DocumentLedger,
    writer: DocumentWriter,
    tags: Iterable[str] = (),
    progress: SyncProgress | None = None,
) -> SyncReport:
    """Bring `writer`'s collection up to date with the source `name` as `connector` walks it. `tags` are added to
    every document's own tags (a folder source's --tag)."""
    started = time.perf_counter()
    report = SyncReport(source=name)
    primary = writer.embedders[0]
    writer.index.ensure_collection(
        writer.collection,
        primary.dimension,
        primary.name,
        writer.lexical.name,
        extra_vectors=dense_vectors(writer.embedders),
    )
    prefix = document_path(name, "")
    committed = {path: digest for path, digest in writer.index.file_hashes(writer.collection).items()}
    ledger_known = dict(ledger.known())
    # Only documents whose chunks are all in the collection may be skipped: any other is fetched again.
    known = {key: state for key, state in ledger_known.items() if committed.get(document_path(name, key))}
    step = _Step(name, writer, ledger, known, committed, tuple(tags), report, progress)
    try:
        try:
            for item in connector.walk(known):
                step.take(item)
        except SourceError:
            step.flush()  # what was fetched before the listing failed is written all the same
            raise
        step.flush()
        gone = [key for key in ledger_known if key not in step.seen]
        orphans = [
            path for path in committed if path.startswith(prefix) and path[len(prefix) :] not in step.seen
        ]  # chunks of a document the ledger lost track of (a crash between writing and recording it)
        for key in gone:
            writer.index.delete_file(writer.collection, document_path(name, key))
            report.removed.append(key)
            if progress:
                progress(key, "removed")
        for path in orphans:
            if path[len(prefix) :] not in gone:
                writer.index.delete_file(writer.collection, path)
        ledger.forget(gone)
        step.wrote |= bool(gone or orphans)
    except SourceError as exc:
        report.error = first_line(exc)
    except KeyboardInterrupt:
        report.interrupted = True
        if step.wrote:
            writer.index.finish_writes(writer.collection)
        report.seconds = time.perf_counter() - started
        raise SyncInterrupted(report) from None
    if step.wrote:
        writer.index.finish_writes(writer.collection)
    report.seconds = time.perf_counter() - started
    return report


@dataclass
class _Pending:
    """A changed document loaded and chunked, waiting for its batch to be embedded."""

    state: KnownDocument
    meta: DocumentMeta
    path: str
    document: LoadedDocument
    chunks: list[Chunk]
    outcome: str  # added or changed


@dataclass
class _Step:
    """Turns walked items into index writes and ledger entries. Small changed documents are gathered until their
    chunks fill a batch and embedded together (one encode call per embedder: a page or an article is a chunk or
    two, and a call per document costs several times more), then written and recorded one by one; a document
    bigger than a batch streams on its own."""

    name: str
    writer: DocumentWriter
    ledger: DocumentLedger
    known: Mapping[str, KnownDocument]
    committed: Mapping[str, str]
    tags: tuple[str, ...]
    report: SyncReport
    progress: SyncProgress | None
    seen: set[str] = field(default_factory=set)
    pending: list[_Pending] = field(default_factory=list)
    wrote: bool = False

    def take(self, item: Unchanged | Changed | Failed) -> None:
        if isinstance(item, Failed):
            self.seen.add(item.key)
            self.report.failed[item.key] = item.reason
            self._said(item.key, "failed")
        elif isinstance(item, Unchanged):
            self.seen.add(item.key)
            self._refresh(item)
            self.report.unchanged.append(item.key)
            self._said(item.key, "unchanged")
        else:
            self.seen.add(item.meta.key)
            self._change(item)

    def flush(self) -> None:
        """Embed the gathered documents in one go, then write and record each."""
        pending, self.pending = self.pending, []
        if not pending:
            return
        vectors = self.writer.embed([chunk for entry in pending for chunk in entry.chunks])
        start = 0
        for entry in pending:
            rows = [embedded[start : start + len(entry.chunks)] for embedded in vectors]
            start += len(entry.chunks)
            points = self.writer.points(entry.chunks, entry.path, entry.state.content_hash, rows, entry.document.meta)
            self.writer.commit(entry.path, [points], len(points), None)
            self._done(entry, len(points))

    def _said(self, key: str, outcome: str) -> None:
        if self.progress:
            self.progress(key, outcome)

    def _refresh(self, item: Unchanged) -> None:
        """New validators or a newer version for the same content are recorded, so the next sync asks with them."""
        old = self.known.get(item.key)
        if old is None:
            return
        fresh = KnownDocument(
            key=old.key,
            version=item.version or old.version,
            etag=item.etag or old.etag,
            last_modified=item.last_modified or old.last_modified,
            content_hash=old.content_hash,
            extra=old.extra if item.extra is None else item.extra,
        )
        if fresh != old:
            self.ledger.keep(fresh, None)

    def _change(self, item: Changed) -> None:
        meta, writer = item.meta, self.writer
        raw = item.content.encode() if isinstance(item.content, str) else item.content
        path = document_path(self.name, meta.key)
        described = _describe(meta, self.name, self.tags)
        digest = content_hash(raw, writer.chunk_tokens, writer.overlap_tokens, repr(sorted(described.items())))
        old = self.known.get(meta.key)
        state = KnownDocument(meta.key, item.version, item.etag, item.last_modified, digest, item.extra)
        if old is not None and old.content_hash == digest and self.committed.get(path) == digest:
            self.ledger.keep(state, meta)  # same bytes (a server without validators): nothing to embed
            self.report.unchanged.append(meta.key)
            self._said(meta.key, "unchanged")
            return
        try:
            document = load_content(raw, item.name)
        except DocumentLoadError as exc:
            self.report.failed[meta.key] = first_line(exc)
            self._said(meta.key, "failed")
            return
        fallback_title = Path(item.name).stem.replace("-", " ").replace("_", " ")
        document.path = path
        document.source = meta.url or document.source
        if meta.title and document.title in ("", fallback_title):
            document.title = meta.title
        document.meta = _merge(document.meta, described)
        outcome = "changed" if old is not None or path in self.committed else "added"
        head = list(itertools.islice(writer.chunks(document), writer.batch_chunks + 1))
        entry = _Pending(state, meta, path, document, head, outcome)
        if len(head) > writer.batch_chunks:  # a big document: on its own, a batch at a time
            self.flush()
            written = writer.write(path, digest, document, len(raw), None)
            self._done(entry, written.chunks)
            return
        if len(head) > writer.batch_chunks - sum(len(p.chunks) for p in self.pending):
            self.flush()
        self.pending.append(entry)

    def _done(self, entry: _Pending, chunks: int) -> None:
        self.wrote = True
        self.report.chunks += chunks
        self.ledger.keep(entry.state, entry.meta)
        getattr(self.report, entry.outcome).append(entry.state.key)
        self._said(entry.state.key, entry.outcome)


def _describe(meta: DocumentMeta, source: str, tags: tuple[str, ...]) -> dict[str, Any]:
    """What the source says about the document, as payload metadata (its own front matter adds to it)."""
    described: dict[str, Any] = {"source_name": source, "tags": [*meta.tags, *tags]}
    if meta.updated is not None:
        described["updated"] = meta.updated.isoformat()
    if meta.author:
        described["author"] = meta.author
    if meta.section:
        described["location"] = " / ".join(meta.section)
    return described


def _merge(own: Mapping[str, Any], described: Mapping[str, Any]) -> dict[str, Any]:
    """A document's front matter with what the source says about it: the source names it and adds its tags, but
    the document's own `updated` and `author` win over the source's guess (a folder's file mtime says when the file
    was copied, not when its content changed)."""
    merged = {**own, **described, "tags": _tags(own.get("tags"), described)}
    merged.update({key: own[key] for key in ("updated", "author") if own.get(key)})
    return merged


def _tags(own: Any, described: Mapping[str, Any]) -> list[str]:
    own_tags = own if isinstance(own, list) else []
    return list(dict.fromkeys([*described["tags"], *(str(tag) for tag in own_tags)]))
