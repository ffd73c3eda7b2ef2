"""Chunking that respects headings and paragraphs and handles Chinese (no spaces between words).

Chunks never cross a heading. Inside a section, paragraphs are packed up to `max_tokens`; a paragraph that is
too long is split at sentence ends (. ! ? and 。！？；), and a sentence that is still too long at the budget.
Consecutive chunks of one section share up to `overlap_tokens` of trailing sentences.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from retrieval.documents import Block, Chunk, LoadedDocument

# Bumped whenever chunking changes its output, so re-ingestion re-chunks unchanged files.
CHUNKER_VERSION = "2"

_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_CJK_CHAR = re.compile(f"[{_CJK}]")
_WORD = re.compile(f"[^\\s{_CJK}]+")
# A sentence ends after 。！？； (and their ASCII cousins followed by a space or the end).
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;])|(?<=[.!?;])(?=\s)|(?<=\n)")


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: one token per CJK character, about 1.3 per other word."""
    cjk = len(_CJK_CHAR.findall(text))
    words = len(_WORD.findall(text))
    return cjk + (words * 13 + 9) // 10


def split_sentences(text: str) -> list[str]:
    parts = [p.strip() for p in _SENTENCE_END.split(text)]
    return [p for p in parts if p]


def _hard_split(sentence: str, max_tokens: int) -> list[str]:
    """Split a sentence with no usable boundary into pieces under the budget (words or CJK characters)."""
    pieces: list[str] = []
    current = ""
    for token in re.findall(f"[{_CJK}]|[^\\s{_CJK}]+\\s*|\\s+", sentence):
        if current and estimate_tokens(current + token) > max_tokens:
            pieces.append(current.strip())
            current = ""
        current += token
    if current.strip():
        pieces.append(current.strip())
    return pieces


@dataclass(frozen=True)
class _Unit:
    """A piece the packer places whole: a paragraph, or one sentence (or line of code) of a long paragraph."""

    text: str
    new_block: bool = True  # starts a paragraph: joined with a line break
    code: bool = False


def _join(units: list[_Unit]) -> str:
    text = ""
    for unit in units:
        if not text:
            text = unit.text
        elif unit.new_block or unit.code:
            text += "\n" + unit.text
        elif (_CJK_CHAR.match(unit.text[0]) and _CJK_CHAR.match(text[-1])) or text[-1] in "。！？；":
            text += unit.text
        else:
            text += " " + unit.text
    return text


def _section_units(blocks: Iterable[Block], max_tokens: int) -> Iterator[_Unit]:
    """Paragraphs of one section, split into sentences (or smaller) only where they exceed the budget.
    Code blocks split at line ends, never at punctuation."""
    for block in blocks:
        if estimate_tokens(block.text) <= max_tokens:
            yield _Unit(block.text)
            continue
        code = block.text.lstrip().startswith(("```", "~~~"))
        pieces = block.text.splitlines() if code else split_sentences(block.text)
        first = True
        for piece in pieces:
            for part in [piece] if estimate_tokens(piece) <= max_tokens else _hard_split(piece, max_tokens):
                if part.strip():
                    yield _Unit(part, new_block=first, code=code)
                    first = False


def _pack(units: Iterable[_Unit], max_tokens: int, overlap_tokens: int) -> Iterator[str]:
    current: list[_Unit] = []
    fresh = 0  # units in `current` that are not overlap carried from the previous chunk
    for unit in units:
        if current and estimate_tokens(_join([*current, unit])) > max_tokens:
            yield _join(current)
            current = _overlap_tail(current, overlap_tokens, max_tokens - estimate_tokens(unit.text))
            fresh = 0
        current.append(unit)
        fresh += 1
    if current and fresh:
        yield _join(current)


def _overlap_tail(units: list[_Unit], overlap_tokens: int, room: int) -> list[_Unit]:
    """The last sentences of the previous chunk, up to the overlap (and what fits beside the next unit).
    Code is not carried over: half a code block helps nobody."""
    last = units[-1]
    if overlap_tokens <= 0 or last.code:
        return []
    tail: list[_Unit] = []
    for sentence in reversed(split_sentences(last.text)):
        candidate = [_Unit(sentence, new_block=False), *tail]
        if estimate_tokens(_join(candidate)) > min(overlap_tokens, room):
            break
        tail = candidate
    return tail


def chunk_document(doc: LoadedDocument, max_tokens: int = 300, overlap_tokens: int = 40) -> list[Chunk]:
    """Split a loaded document into chunks that keep its title, source and heading path."""
    return list(iter_chunks(doc, max_tokens, overlap_tokens))


def iter_chunks(doc: LoadedDocument, max_tokens: int = 300, overlap_tokens: int = 40) -> Iterator[Chunk]:
    """`chunk_document`, one chunk at a time: a caller that writes chunks in batches holds only the batch."""
    doc_id = hashlib.sha1(doc.path.encode("utf-8")).hexdigest()[:16]
    sections: dict[tuple[str, ...], list[Block]] = {}
    for block in doc.blocks:  # dicts keep first-seen order: sections stay in document order
        sections.setdefault(block.section, []).append(block)
    position = 0
    for section, blocks in sections.items():
        for text in _pack(_section_units(blocks, max_tokens), max_tokens, overlap_tokens):
            yield Chunk(
                doc_id=doc_id,
                path=doc.path,
                title=doc.title,
                source=doc.source,
                section=" > ".join(section),
                text=text,
                chunk_index=position,
                content_hash=hashlib.sha256(text.encode("utf-8")).hexdigest(),
            )
            position += 1
