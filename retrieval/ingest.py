"""Idempotent, incremental ingestion of a folder (or one file) into a collection.

Each file is stored with a hash of its bytes and the chunking settings: unchanged files are skipped,
changed files are re-chunked and overwritten in place (point ids come from path + chunk position),
and files that disappeared from the folder have their chunks removed.

A big file is chunked, embedded and written a batch at a time, so memory follows the batch, not the file; small
files are gathered until their chunks fill a batch, embedded together, then written one by one. A file's
chunk 0 is the commit mark: written first with an empty file hash and stamped with the real one after the
rest of the file, so a file cut off half-way (Ctrl-C, a crash) never reads as unchanged on the next run.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.chunking import CHUNKER_VERSION, iter_chunks
from retrieval.documents import Chunk, LoadedDocument
from retrieval.embedders import Embedder
from retrieval.errors import DocumentLoadError, RetrievalError
from retrieval.index import Index, IndexPoint, dense_vector_name, dense_vectors, point_id
from retrieval.lexical import LexicalEncoder
from retrieval.loaders import LOADER_VERSION, SUPPORTED_SUFFIXES, load_document

# A file that yields less than this share of its visible text, or under LOW_YIELD_CHARS from a file over
# LOW_YIELD_MIN_BYTES, is flagged: its text was probably lost in extraction (navigation kept, prose dropped).
LOW_YIELD_SHARE = 0.05
LOW_YIELD_CHARS = 200
LOW_YIELD_MIN_BYTES = 5_000

# Chunks embedded and written together: memory per file is bounded by this, not by the file's size.
BATCH_CHUNKS = 256
BYTES_PER_MB = 1_000_000


@dataclass
class FileYield:
    """What one indexed file gave: characters of text against its size, and what the parsers warned about."""

    chars: int
    source_chars: int
    file_bytes: int
    chunks: int
    warnings: list[str] = field(default_factory=list)
    encoding: str = ""  # the legacy encoding a non-UTF-8 text file was read with
    size_says_nothing: bool = False  # an Office file: only the share of its own text is checked

    @property
    def low(self) -> bool:
        """Almost nothing came out of the file compared with its size."""
        if self.source_chars and self.chars < LOW_YIELD_SHARE * self.source_chars:
            return True
        if self.size_says_nothing:
            return False
        return self.file_bytes > LOW_YIELD_MIN_BYTES and self.chars < LOW_YIELD_CHARS


@dataclass
class IngestSummary:
    collection: str
    files: int = 0
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # path -> reason
    chunks: int = 0
    seconds: float = 0.0
    yields: dict[str, FileYield] = field(default_factory=dict)  # path -> yield, for each file (re)indexed
    too_large: dict[str, int] = field(default_factory=dict)  # path -> bytes, files over `max_file_mb`, not read
    max_file_mb: float | None = None
    interrupted: str | None = None  # the file being written when ingestion was interrupted (left to redo)

    def low_yield(self) -> list[str]:
        """Indexed files that yielded almost no text: reported as warnings, not failures."""
        return [path for path, result in self.yields.items() if result.low]

    @property
    def done(self) -> int:
        """Files this run finished with, whatever the outcome."""
        return len(self.added) + len(self.updated) + len(self.unchanged) + len(self.failed) + len(self.too_large)

    @property
    def kept(self) -> int:
        """Files whose chunks are in the collection as of now: indexed this run or unchanged."""
        return len(self.added) + len(self.updated) + len(self.unchanged)


class IngestInterrupted(KeyboardInterrupt):
    """Ctrl-C during ingestion, raised after the finished files were written out; `summary` says what was kept.
    A KeyboardInterrupt, so a caller that does not look for it still stops as for any Ctrl-C."""

    def __init__(self, summary: IngestSummary) -> None:
        super().__init__()
        self.summary = summary


# Called after each file with (path, outcome) where outcome is added/updated/unchanged/failed/too large.
Progress = Callable[[str, str], None]
# Called after each batch written with (path, chunks written so far, chunks in the file).
ChunkProgress = Callable[[str, int, int], None]


def discover_files(root: Path) -> list[Path]:
    """Supported files under `root` (or `root` itself), skipping hidden files and folders."""
    if root.is_file():
        return [root]
    return sorted(path for path in _visible_files(root) if path.suffix.lower() in SUPPORTED_SUFFIXES)


def unsupported_files(root: Path) -> list[Path]:
    """The files under `root` that ingest passes over because of their type (hidden ones aside): said in the
    summary, so a folder of .csv or .png files is not silently "0 files"."""
    if root.is_file():
        return []
    return sorted(path for path in _visible_files(root) if path.suffix.lower() not in SUPPORTED_SUFFIXES)


def _visible_files(root: Path) -> list[Path]:
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts)
    ]


def file_hash(path: Path, chunk_tokens: int, overlap_tokens: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return _stamp(digest, chunk_tokens, overlap_tokens)


def content_hash(content: bytes, chunk_tokens: int, overlap_tokens: int, *context: str) -> str:
    """What `file_hash` is for a file, for fetched content (and whatever else its chunks carry, in `context`)."""
    digest = hashlib.sha256(content)
    for part in context:
        digest.update(f"|{part}".encode())
    return _stamp(digest, chunk_tokens, overlap_tokens)


def _stamp(digest: Any, chunk_tokens: int, overlap_tokens: int) -> str:
    """The bytes' digest with the loader and chunker versions and the chunk settings: a change to any re-reads."""
    digest.update(f"|loader={LOADER_VERSION}|chunker={CHUNKER_VERSION}|{chunk_tokens}|{overlap_tokens}".encode())
    return digest.hexdigest()


def ingest_path(
    root: Path,
    index: Index,
    embedder: Embedder | Sequence[Embedder],
    collection: str,
    chunk_tokens: int = 300,
    overlap_tokens: int = 40,
    progress: Progress | None = None,
    lexical: LexicalEncoder | None = None,
    rebuild: bool = False,
    chunk_progress: ChunkProgress | None = None,
    max_file_mb: float | None = None,
    batch_chunks: int = BATCH_CHUNKS,
) -> IngestSummary:
    """`rebuild` drops the collection first (after a model change, or for a collection made before the lexical
    leg); without it such a collection is refused with a message that says so. Files over `max_file_mb`
    (None: no limit) are not read and are listed in `too_large`; chunks of an earlier version stay.
    `chunk_progress` hears about each batch of a file's chunks written (a small file's all at once). Ctrl-C
    raises `IngestInterrupted` once the files already done are written out; the files not done (the one cut
    off, those gathered but not written yet) are redone by the next run. Several embedders
    (the first is the primary one) give each chunk one dense vector each."""
    started = time.perf_counter()
    root = root.resolve()
    if not root.exists():
        raise RetrievalError(f"No such file or folder: {root}")
    lexical = lexical or LexicalEncoder()
    embedders = [embedder] if isinstance(embedder, Embedder) else list(embedder)
    files = discover_files(root)
    summary = IngestSummary(collection=collection, files=len(files), max_file_mb=max_file_mb)
    if rebuild:
        index.drop_collection(collection)
    primary = embedders[0]
    index.ensure_collection(
        collection, primary.dimension, primary.name, lexical.name, extra_vectors=dense_vectors(embedders)
    )
    known = index.file_hashes(collection)
    writer = DocumentWriter(index, embedders, lexical, collection, chunk_tokens, overlap_tokens, batch_chunks)
    line = _Line(writer, known, summary, max_file_mb, progress, chunk_progress)

    try:
        for path in files:
            line.take(path)
        line.flush()
        line.current = None

        present = {path.as_posix() for path in files}
        scope = root.as_posix() if root.is_dir() else None
        for gone in sorted(known):
            if scope and gone.startswith(scope.rstrip("/") + "/") and gone not in present:
                index.delete_file(collection, gone)
                summary.removed.append(gone)
    except KeyboardInterrupt:
        summary.interrupted = key = line.current
        if summary.chunks or summary.removed or key:
            index.finish_writes(collection)
        summary.seconds = time.perf_counter() - started
        raise IngestInterrupted(summary) from None

    if summary.chunks or summary.removed:
        index.finish_writes(collection)
    summary.seconds = time.perf_counter() - started
    return summary


@dataclass
class _Turn:
    """One file in discovery order, waiting to be reported until the files gathered before it are written. A file
    gathered into the batch holds its chunks (and its outcome, added or updated, comes when it is written)."""

    path: Path
    key: str
    outcome: str = ""  # unchanged/failed/too large, known when the file is looked at
    reason: str = ""  # why it failed
    size: int = 0
    digest: str = ""
    chunks: list[Chunk] | None = None  # gathered: the file's chunks, all of them
    result: FileYield | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # the document's metadata, kept on each chunk


@dataclass
class _Line:
    """Files in discovery order. Small changed files are loaded and chunked until their chunks fill a batch of
    `batch_chunks`, then embedded together (one encode call per embedder: sentence-transformers sorts by length
    only inside one call, so a batch of many files pads far less than a handful of chunks at a time) and written
    file by file, each with `DocumentWriter`'s commit protocol. A file with more chunks than the room left streams on
    its own, after the gathered ones. Outcomes are reported in discovery order, so an unchanged or failed file
    waits behind the gathered files before it; a gathered file not written when Ctrl-C comes is simply not done."""

    writer: DocumentWriter
    known: dict[str, str]
    summary: IngestSummary
    max_file_mb: float | None
    progress: Progress | None
    chunk_progress: ChunkProgress | None
    waiting: list[_Turn] = field(default_factory=list)
    room: int = 0
    current: str | None = None  # the file being read or written, named if Ctrl-C comes

    def __post_init__(self) -> None:
        self.room = self.writer.batch_chunks

    def take(self, path: Path) -> None:
        turn = _Turn(path, path.as_posix())
        self.current = turn.key
        document, head = None, []
        try:
            turn.size = path.stat().st_size
            if self.max_file_mb is not None and turn.size > self.max_file_mb * BYTES_PER_MB:
                turn.outcome = "too large"
            else:
                turn.digest = file_hash(path, self.writer.chunk_tokens, self.writer.overlap_tokens)
                if self.known.get(turn.key) == turn.digest:
                    turn.outcome = "unchanged"
                else:
                    document = self.writer.read(path, turn.key)
                    # Enough chunks to tell whether the file fits a batch, not all of a big file's chunks.
                    head = list(itertools.islice(self.writer.chunks(document), self.writer.batch_chunks + 1))
        except (DocumentLoadError, OSError) as exc:
            document, turn.outcome, turn.reason = None, "failed", _reason(exc)
        if document is not None:
            if len(head) > self.room:
                self.flush()
                self.current = turn.key
            if len(head) > self.writer.batch_chunks:
                del head
                self._stream(turn, document)
                return
            turn.chunks = head
            turn.meta = document.meta
            turn.result = _yield(document, turn.size, len(head))
            self.room -= len(head)
        self.waiting.append(turn)
        if not self.room or not any(waiting.chunks is not None for waiting in self.waiting):
            self.flush()

    def flush(self) -> None:
        """Embed the gathered files in one go, then write and report the waiting files in order."""
        gathered = [turn for turn in self.waiting if turn.chunks is not None]
        if gathered:
            self.current = gathered[0].key  # the embedding is the first step of writing each of them
        vectors = self.writer.embed([chunk for turn in gathered for chunk in turn.chunks or []])
        start = 0
        while self.waiting:
            turn = self.waiting[0]
            if turn.chunks is not None:
                self.current = turn.key
                count = len(turn.chunks)
                rows = [embedded[start : start + count] for embedded in vectors]
                start += count
                try:
                    points = self.writer.points(turn.chunks, turn.key, turn.digest, rows, turn.meta) if count else []
                    self.writer.commit(turn.key, [points], count, self.chunk_progress)
                except OSError as exc:
                    turn.outcome, turn.reason = "failed", _reason(exc)
            self.waiting.pop(0)
            self._report(turn)
        self.room = self.writer.batch_chunks

    def _stream(self, turn: _Turn, document: LoadedDocument) -> None:
        """A file too big for a batch: chunked, embedded and written a batch at a time, as it comes."""
        try:
            turn.result = self.writer.write(turn.key, turn.digest, document, turn.size, self.chunk_progress)
        except (DocumentLoadError, OSError) as exc:
            turn.outcome, turn.reason = "failed", _reason(exc)
        self._report(turn)

    def _report(self, turn: _Turn) -> None:
        summary, key = self.summary, turn.key
        if turn.outcome == "failed":
            summary.failed[key] = turn.reason
        elif turn.outcome == "too large":
            summary.too_large[key] = turn.size
        elif turn.outcome == "unchanged":
            summary.unchanged.append(key)
        else:
            assert turn.result is not None
            summary.yields[key] = turn.result
            summary.chunks += turn.result.chunks
            # "" is a file cut off mid-write: no whole version was there
            turn.outcome = "updated" if self.known.get(key) else "added"
            (summary.updated if turn.outcome == "updated" else summary.added).append(key)
        if self.progress:
            self.progress(key, turn.outcome)


# Document metadata kept as payload fields of their own, for filters (presets) and citations; the rest of what a
# document says about itself goes under "meta".
PAYLOAD_FIELDS = ("source_name", "tags", "updated", "author")


def document_payload(meta: Mapping[str, Any]) -> dict[str, Any]:
    """A document's metadata as payload fields: tags (a list, deduplicated), updated (ISO), author, source_name."""
    payload: dict[str, Any] = {}
    for name in PAYLOAD_FIELDS:
        value = meta.get(name)
        if value in (None, "", [], ()):
            continue
        payload[name] = list(dict.fromkeys(str(tag) for tag in value)) if name == "tags" else str(value)
    rest = {key: value for key, value in meta.items() if key not in PAYLOAD_FIELDS}
    if rest:
        payload["meta"] = rest
    return payload


def _reason(exc: Exception) -> str:
    return str(exc) if isinstance(exc, DocumentLoadError) else f"cannot read: {exc}"


def _yield(document: LoadedDocument, file_bytes: int, chunks: int) -> FileYield:
    return FileYield(
        chars=document.text_chars(),
        source_chars=document.source_chars,
        file_bytes=file_bytes,
        chunks=chunks,
        warnings=document.warnings,
        encoding=document.encoding,
        size_says_nothing=document.size_says_nothing,
    )


def _batches(chunks: Iterable[Chunk], size: int) -> Iterator[list[Chunk]]:
    iterator = iter(chunks)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


@dataclass
class DocumentWriter:
    """Writes files' chunks into the collection: one file a batch at a time, or a batch of several files' chunks
    embedded together and then written file by file."""

    index: Index
    embedders: Sequence[Embedder]  # the first is the primary one
    lexical: LexicalEncoder
    collection: str
    chunk_tokens: int
    overlap_tokens: int
    batch_chunks: int

    def read(self, path: Path, key: str) -> LoadedDocument:
        document = load_document(path)
        document.path = key
        if document.source == str(path):
            document.source = key
        return document

    def chunks(self, document: LoadedDocument) -> Iterator[Chunk]:
        # every embedder that reads the chunks (the first one primary) bounds them
        return iter_chunks(document, self.chunk_tokens, self.overlap_tokens, self.embedders)

    def write(
        self, key: str, digest: str, document: LoadedDocument, file_bytes: int, chunk_progress: ChunkProgress | None
    ) -> FileYield:
        """One file, chunked, embedded and written a batch at a time, so memory follows the batch, not the file."""
        # A counting pass first: chunking costs about 1% of embedding, and the total lets progress say how far
        # a big file has come.
        total = sum(1 for _ in self.chunks(document))
        batches = _batches(self.chunks(document), self.batch_chunks)
        points = (self.points(batch, key, digest, self.embed(batch), document.meta) for batch in batches)
        written = self.commit(key, points, total, chunk_progress)
        return _yield(document, file_bytes, written)

    def commit(
        self, key: str, batches: Iterable[list[IndexPoint]], total: int, chunk_progress: ChunkProgress | None
    ) -> int:
        """Writes one file's points, batch by batch, and says how many. Chunk 0 goes in with the first batch
        carrying an empty file hash, and is stamped with the file's hash only after the last batch and the removal
        of chunks past the new end. `Index.file_hashes` reads chunk 0, so until then the file reads as changed
        (even if its bytes go back to an earlier version meanwhile), and a run cut off anywhere in between redoes
        the whole file. Chunks keep being overwritten in place, so the file's earlier chunks stay searchable while
        it is rewritten."""
        head: IndexPoint | None = None
        written = 0
        for points in batches:
            if not points:
                continue
            if points[0].payload["chunk_index"] == 0:
                head = points[0]
                points[0] = replace(head, payload={**head.payload, "file_hash": ""})
            self.index.upsert(self.collection, points)
            written += len(points)
            if chunk_progress:
                chunk_progress(key, written, total)
        # Overwrite in place first, then drop the chunks past the new end: the file is never missing.
        self.index.delete_file(self.collection, key, from_chunk=written)
        if head is not None:
            self.index.upsert(self.collection, [head])
        return written

    def embed(self, chunks: Sequence[Chunk]) -> list[np.ndarray]:
        """One encode call per embedder (the primary one first) over all of `chunks`: rows in their order."""
        if not chunks:
            return []
        texts = [chunk.embedding_text() for chunk in chunks]  # title and heading path count in every leg
        return [np.asarray(embedder.encode(texts)) for embedder in self.embedders]

    def points(
        self,
        chunks: list[Chunk],
        key: str,
        digest: str,
        vectors: list[np.ndarray],
        meta: Mapping[str, Any] | None = None,
    ) -> list[IndexPoint]:
        """The points of `chunks` of one file, given each embedder's vectors for them (the primary one first), with
        the document's metadata (`document_payload`) on each."""
        primary, *others = vectors
        extra = document_payload(meta or {})
        sparse = self.lexical.encode_documents(chunk.embedding_text() for chunk in chunks)
        return [
            IndexPoint(
                id=point_id(key, chunk.chunk_index),
                vector=primary[row],
                extra_vectors={dense_vector_name(n): vectors[row] for n, vectors in enumerate(others, start=1)},
                sparse=terms,
                payload={
                    "doc_id": chunk.doc_id,
                    "path": key,
                    "title": chunk.title,
                    "source": chunk.source,
                    "section": chunk.section,
                    "text": chunk.text,
                    "chunk_index": chunk.chunk_index,
                    "content_hash": chunk.content_hash,
                    "file_hash": digest,
                    **extra,
                },
            )
            for row, (chunk, terms) in enumerate(zip(chunks, sparse, strict=True))
        ]
