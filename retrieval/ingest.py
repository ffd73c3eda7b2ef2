"""Idempotent, incremental ingestion of a folder (or one file) into a collection.

Each file is stored with a hash of its bytes and the chunking settings: unchanged files are skipped,
changed files are re-chunked and overwritten in place (point ids come from path + chunk position),
and files that disappeared from the folder have their chunks removed.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from retrieval.chunking import CHUNKER_VERSION, chunk_document
from retrieval.embedding import Embedder
from retrieval.errors import DocumentLoadError, RetrievalError
from retrieval.index import Index, IndexPoint, point_id
from retrieval.lexical import LexicalEncoder
from retrieval.loaders import LOADER_VERSION, SUPPORTED_SUFFIXES, load_document

# A file that yields less than this share of its visible text, or under LOW_YIELD_CHARS from a file over
# LOW_YIELD_MIN_BYTES, is flagged: its text was probably lost in extraction (navigation kept, prose dropped).
LOW_YIELD_SHARE = 0.05
LOW_YIELD_CHARS = 200
LOW_YIELD_MIN_BYTES = 5_000


@dataclass
class FileYield:
    """What one indexed file gave: characters of text against its size, and what the parsers warned about."""

    chars: int
    source_chars: int
    file_bytes: int
    chunks: int
    warnings: list[str] = field(default_factory=list)
    encoding: str = ""  # the legacy encoding a non-UTF-8 text file was read with

    @property
    def low(self) -> bool:
        """Almost nothing came out of the file compared with its size."""
        if self.source_chars and self.chars < LOW_YIELD_SHARE * self.source_chars:
            return True
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

    def low_yield(self) -> list[str]:
        """Indexed files that yielded almost no text: reported as warnings, not failures."""
        return [path for path, result in self.yields.items() if result.low]


# Called after each file with (path, outcome) where outcome is added/updated/unchanged/failed.
Progress = Callable[[str, str], None]


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
    digest = hashlib.sha256(path.read_bytes())
    digest.update(f"|loader={LOADER_VERSION}|chunker={CHUNKER_VERSION}|{chunk_tokens}|{overlap_tokens}".encode())
    return digest.hexdigest()


def ingest_path(
    root: Path,
    index: Index,
    embedder: Embedder,
    collection: str,
    chunk_tokens: int = 300,
    overlap_tokens: int = 40,
    progress: Progress | None = None,
    lexical: LexicalEncoder | None = None,
    rebuild: bool = False,
) -> IngestSummary:
    """`rebuild` drops the collection first (after a model change, or for a collection made before the lexical
    leg); without it such a collection is refused with a message that says so."""
    started = time.perf_counter()
    root = root.resolve()
    if not root.exists():
        raise RetrievalError(f"No such file or folder: {root}")
    lexical = lexical or LexicalEncoder()
    files = discover_files(root)
    summary = IngestSummary(collection=collection, files=len(files))
    if rebuild:
        index.drop_collection(collection)
    index.ensure_collection(collection, embedder.dimension, embedder.name, lexical.name)
    known = index.file_hashes(collection)

    for path in files:
        key = path.as_posix()
        try:
            digest = file_hash(path, chunk_tokens, overlap_tokens)
            if known.get(key) == digest:
                outcome = "unchanged"
            else:
                result = _ingest_file(
                    path, key, digest, index, embedder, lexical, collection, chunk_tokens, overlap_tokens
                )
                summary.yields[key] = result
                summary.chunks += result.chunks
                outcome = "updated" if key in known else "added"
        except (DocumentLoadError, OSError) as exc:
            summary.failed[key] = str(exc) if isinstance(exc, DocumentLoadError) else f"cannot read: {exc}"
            outcome = "failed"
        {"added": summary.added, "updated": summary.updated, "unchanged": summary.unchanged}.get(outcome, []).append(
            key
        )
        if progress:
            progress(key, outcome)

    present = {path.as_posix() for path in files}
    scope = root.as_posix() if root.is_dir() else None
    for key in sorted(known):
        if scope and key.startswith(scope.rstrip("/") + "/") and key not in present:
            index.delete_file(collection, key)
            summary.removed.append(key)

    if summary.chunks or summary.removed:
        index.finish_writes(collection)
    summary.seconds = time.perf_counter() - started
    return summary


def _ingest_file(
    path: Path,
    key: str,
    digest: str,
    index: Index,
    embedder: Embedder,
    lexical: LexicalEncoder,
    collection: str,
    chunk_tokens: int,
    overlap_tokens: int,
) -> FileYield:
    document = load_document(path)
    document.path = key
    if document.source == str(path):
        document.source = key
    chunks = chunk_document(document, chunk_tokens, overlap_tokens)
    texts = [chunk.embedding_text() for chunk in chunks]  # title and heading path count in both legs
    vectors = embedder.encode(texts)
    sparse = lexical.encode_documents(texts)
    points = [
        IndexPoint(
            id=point_id(key, chunk.chunk_index),
            vector=vector,
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
            },
        )
        for chunk, vector, terms in zip(chunks, vectors, sparse, strict=True)
    ]
    # Overwrite in place first, then drop the chunks past the new end: the file is never missing.
    index.upsert(collection, points)
    index.delete_file(collection, key, from_chunk=len(chunks))
    return FileYield(
        chars=document.text_chars(),
        source_chars=document.source_chars,
        file_bytes=path.stat().st_size,
        chunks=len(chunks),
        warnings=document.warnings,
        encoding=document.encoding,
    )
