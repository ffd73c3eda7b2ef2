"""The data that flows through retrieval: a loaded document, its chunks, and search candidates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Block:
    """A paragraph-level piece of a document under its heading path."""

    section: tuple[str, ...]
    text: str


@dataclass
class LoadedDocument:
    """A file turned into text blocks; `source` is the document's own URL when it declares one, else its path."""

    path: str
    title: str
    source: str
    blocks: list[Block] = field(default_factory=list)
    # Characters of visible text in the file (0: not measured), so a file that yields almost nothing is flagged.
    source_chars: int = 0
    # Warnings the parsing libraries raised while loading, reported in the ingest summary instead of printed.
    warnings: list[str] = field(default_factory=list)
    encoding: str = ""  # set when a text file was not UTF-8 and was decoded with a detected encoding
    # An Office file is a zip of templates, styles and images besides its text: its size says nothing about how
    # much text it should yield, so only the share of its own text is checked.
    size_says_nothing: bool = False
    # What the document says about itself (front matter: tags, updated, author, other keys), kept on its chunks.
    meta: dict[str, Any] = field(default_factory=dict)

    def text_chars(self) -> int:
        """How much text the file yielded (what gets chunked)."""
        return sum(len(block.text) for block in self.blocks)


@dataclass(frozen=True)
class Chunk:
    """A passage stored as one Qdrant point."""

    doc_id: str
    path: str
    title: str
    source: str
    section: str
    text: str
    chunk_index: int
    content_hash: str

    def embedding_text(self) -> str:
        """What gets embedded: title and heading path give a short passage its context."""
        return passage_text(self.title, self.section, self.text)


@dataclass
class Candidate:
    """A passage returned by search, with its place in the retrieval ranking."""

    point_id: str
    doc_id: str
    title: str
    source: str
    section: str
    text: str
    retrieval_rank: int  # place in the retrieval ranking (the fused one in hybrid mode)
    retrieval_score: float
    path: str = ""  # the ingested file, for matching evaluation labels that name files
    # Place in each leg's own ranking (None: not among that leg's top results, or leg not used).
    dense_rank: int | None = None
    dense_score: float | None = None
    lexical_rank: int | None = None
    lexical_score: float | None = None
    updated: str = ""  # when the document was last changed, as its source says (ISO date or datetime); "" unknown

    def passage(self) -> str:
        """The text a reranker judges: title and section first, as in the embedding."""
        return passage_text(self.title, self.section, self.text)


def passage_text(title: str, section: str, text: str) -> str:
    header = " > ".join(part for part in (title, section) if part)
    return f"{header}\n{text}" if header else text
