"""Chunking that respects headings and paragraphs, handles Chinese (no spaces between words), and never hands a
model more tokens than it reads.

Chunks never cross a heading. Inside a section, paragraphs are packed up to the budget; a paragraph that is too
long is split at sentence ends (. ! ? and 。！？；), a block of lines (code, a table, a list) at line ends, and a
sentence or line that is still too long at the budget. Consecutive chunks of one section share up to
`overlap_tokens` of trailing sentences (never code or table lines).

The budget counts in the tokens of the models that read the chunks (`TokenReader`s: the embedders, the first one
primary): `max_tokens` (CHUNK_TOKENS) in the primary's tokens, and for every reader with a limit, that limit less
what the title and heading path put in front of the chunk take (`passage_text`, what gets embedded). So
`reader.count_tokens(chunk.embedding_text()) <= reader.max_tokens` holds for every chunk and reader. Without
readers, chunks are sized by `estimate_tokens`.

Counting stays linear: each unit (paragraph, sentence, line) is counted once and the packer adds the counts up;
only each finished chunk is counted whole, as the reader gets it (a chunk the sum misjudged gives its last units
back to the next one).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from retrieval.documents import Block, Chunk, LoadedDocument, passage_text

# Bumped whenever chunking changes its output, so re-ingestion re-chunks unchanged files.
CHUNKER_VERSION = "3"

_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_CJK_CHAR = re.compile(f"[{_CJK}]")
_WORD = re.compile(f"[^\\s{_CJK}]+")
# The pieces a sentence with no usable boundary is cut between: a CJK character, a word with its trailing space.
_ATOM = re.compile(f"[{_CJK}]|[^\\s{_CJK}]+\\s*|\\s+")
# A sentence ends after 。！？； (and their ASCII cousins followed by a space: not inside "count?status=open").
_SENTENCE_END = re.compile(r"(?<=[。！？；])|(?<=[.!?;])(?=\s)|(?<=\n)")
_FENCES = ("```", "~~~")


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: one token per CJK character, about 1.3 per other word."""
    cjk = len(_CJK_CHAR.findall(text))
    words = len(_WORD.findall(text))
    return cjk + (words * 13 + 9) // 10


def split_sentences(text: str) -> list[str]:
    parts = [p.strip() for p in _SENTENCE_END.split(text)]
    return [p for p in parts if p]


class TokenReader(Protocol):
    """A model that reads chunks (every `Embedder` is one): how many tokens it reads for a text, special tokens
    included, and the most it reads (None: any length)."""

    max_tokens: int | None

    def count_tokens(self, text: str) -> int: ...


class _Meter:
    """One count a chunk's text must stay within: `limit` tokens of `count` (a reader's tokenizer, or the estimate),
    not counting the special tokens, nor the `header` (title and heading path) the reader gets in front of it."""

    def __init__(self, count: Callable[[str], int], limit: int, header: str | None) -> None:
        self.count, self.limit, self.header = count, limit, header
        self._empty = count("")  # the special tokens every input carries
        self._base = count(header) if header is not None else 0

    def cost(self, text: str) -> int:
        """The text's tokens on its own (what the packer adds up)."""
        return self.count(text) - self._empty

    def exact(self, text: str) -> int:
        """The text's tokens as the reader gets it: after the header."""
        return self.count(text) if self.header is None else self.count(self.header + text) - self._base


class _Budget:
    """What the chunks of one section may hold, by every meter: CHUNK_TOKENS in the primary reader's tokens (the
    estimate without readers), and each limited reader's limit less the header it reads first."""

    def __init__(self, chunk_tokens: int, readers: Sequence[TokenReader], header: str) -> None:
        self.meters = [] if readers else [_Meter(estimate_tokens, chunk_tokens, None)]
        for position, reader in enumerate(readers):
            limit = chunk_tokens if position == 0 else None
            if reader.max_tokens is not None:
                room = reader.max_tokens - reader.count_tokens(header)
                limit = room if limit is None else min(limit, room)
            if limit is not None:
                self.meters.append(_Meter(reader.count_tokens, limit, header))

    def costs(self, text: str) -> tuple[int, ...]:
        return tuple(meter.cost(text) for meter in self.meters)

    def total(self, units: Iterable[_Unit]) -> tuple[int, ...]:
        """The units' costs added up: the joined text's, near enough (whitespace joins add no tokens)."""
        sums = tuple(0 for _ in self.meters)
        for unit in units:
            sums = _plus(sums, unit.cost)
        return sums

    def unit(self, text: str, new_block: bool = True, line: bool = False) -> _Unit | None:
        """`text` as a unit with its costs, or None where it does not fit."""
        cost = self.costs(text)
        return _Unit(text, cost, new_block, line) if self.within(cost) else None

    def within(self, costs: Iterable[int]) -> bool:
        return all(cost <= meter.limit for cost, meter in zip(costs, self.meters, strict=True))

    def fits(self, text: str) -> bool:
        return self.within(self.costs(text))

    def fits_exactly(self, text: str) -> bool:
        return all(meter.exact(text) <= meter.limit for meter in self.meters)


def _plus(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(x + y for x, y in zip(a, b, strict=True))


def _longest_fit(atoms: list[str], start: int, fits: Callable[[str], bool]) -> int:
    """How many atoms from `start` on fit together (0: not even one): doubling, then halving, so a long run costs
    a logarithmic number of counts."""

    def fit(count: int) -> bool:
        return fits("".join(atoms[start : start + count]).strip())

    if not fit(1):
        return 0
    good, left = 1, len(atoms) - start
    while good < left:
        bad = min(good * 2, left)
        if not fit(bad):
            break
        good = bad
    else:
        return good
    while bad - good > 1:
        middle = (good + bad) // 2
        good, bad = (middle, bad) if fit(middle) else (good, middle)
    return good


def _hard_split(sentence: str, fits: Callable[[str], bool]) -> list[str]:
    """Split a sentence with no usable boundary into the fewest pieces that fit, between words or CJK characters
    (between characters inside a word that is too long alone)."""
    pieces: list[str] = []
    atoms = _ATOM.findall(sentence)
    start = 0
    while start < len(atoms):
        taken = _longest_fit(atoms, start, fits)
        if taken:
            pieces.append("".join(atoms[start : start + taken]).strip())
        else:  # one word over the budget: cut it between characters (at least one a piece)
            characters = list(atoms[start].strip())
            begin = 0
            while begin < len(characters):
                size = max(1, _longest_fit(characters, begin, fits))
                pieces.append("".join(characters[begin : begin + size]))
                begin += size
            taken = 1
        start += taken
    return [piece for piece in pieces if piece]


@dataclass(frozen=True)
class _Unit:
    """A piece the packer places whole: a paragraph, or a sentence or line of a long one."""

    text: str
    cost: tuple[int, ...]  # by meter of the section's `_Budget`
    new_block: bool = True  # starts a paragraph or a line: joined with a line break
    line: bool = False  # part of a block split at line ends (code, a table, a list): never carried as overlap


def _join(units: list[_Unit]) -> str:
    text = ""
    for unit in units:
        if not text:
            text = unit.text
        elif unit.new_block:
            text += "\n" + unit.text
        elif (_CJK_CHAR.match(unit.text[0]) and _CJK_CHAR.match(text[-1])) or text[-1] in "。！？；":
            text += unit.text
        else:
            text += " " + unit.text
    return text


def _section_units(blocks: Iterable[Block], budget: _Budget) -> Iterator[_Unit]:
    """Paragraphs of one section, split only where they exceed the budget: a block of several lines (code, a
    table, a list) at line ends, a paragraph or a line of prose at sentence ends, and what is still too long
    between words. Code is never split at punctuation."""
    for block in blocks:
        whole = budget.unit(block.text)
        if whole:
            yield whole
            continue
        code = block.text.lstrip().startswith(_FENCES)
        lines = [line for line in block.text.splitlines() if line.strip()]
        if not code and len(lines) == 1:
            yield from _pieces(lines[0], budget, line=False, sentences=True)
            continue
        for line in lines:
            yield from _pieces(line, budget, line=True, sentences=not code)


def _pieces(text: str, budget: _Budget, line: bool, sentences: bool) -> Iterator[_Unit]:
    """A line or paragraph that does not fit whole (nor, where it is prose, sentence by sentence) as units that
    do; its first unit starts a line."""
    first = True
    for part in split_sentences(text) if sentences else [text]:
        whole = budget.unit(part, new_block=first, line=line)
        if whole:
            yield whole
            first = False
            continue
        for piece in _hard_split(part, budget.fits):
            yield _Unit(piece, budget.costs(piece), new_block=first, line=line)
            first = False


def _pack(units: Iterable[_Unit], budget: _Budget, overlap_tokens: int) -> Iterator[str]:
    """Units packed into chunks by their added-up counts; each chunk is then counted whole, and gives back the
    units that took it over (its overlap first) to the next chunk."""
    source = iter(units)
    pending: list[_Unit] = []  # units given back, next one last
    current: list[_Unit] = []
    cost = budget.total(())
    fresh = 0  # units in `current` that are not overlap carried from the previous chunk
    while True:
        unit = pending.pop() if pending else next(source, None)
        if unit is not None:
            if current and not fresh and not budget.within(_plus(cost, unit.cost)):
                current, cost = [], budget.total(())  # the overlap does not fit beside this unit: drop it
            if not current or budget.within(_plus(cost, unit.cost)):
                current.append(unit)
                cost = _plus(cost, unit.cost)
                fresh += 1
                continue
            pending.append(unit)
        elif not fresh:
            return
        kept, back = _settle(current, fresh, budget)
        yield _join(kept)
        pending.extend(reversed(back))
        current = _overlap_tail(kept, overlap_tokens, budget, pending[-1].cost) if pending else []
        cost, fresh = budget.total(current), 0


def _settle(current: list[_Unit], fresh: int, budget: _Budget) -> tuple[list[_Unit], list[_Unit]]:
    """The units of a chunk that fit counted whole, and those it gives back: the overlap goes first, then units
    from the end; a last unit that still does not fit is split between words."""
    if budget.fits_exactly(_join(current)):
        return current, []
    kept, back = current[len(current) - fresh :], []
    while len(kept) > 1 and not budget.fits_exactly(_join(kept)):
        back.insert(0, kept.pop())
    if not budget.fits_exactly(_join(kept)):
        unit = kept[0]
        first, *rest = _hard_split(unit.text, budget.fits_exactly)
        kept = [_Unit(first, budget.costs(first), unit.new_block, unit.line)]
        back[:0] = [_Unit(piece, budget.costs(piece), False, unit.line) for piece in rest]
    return kept, back


def _overlap_tail(units: list[_Unit], overlap_tokens: int, budget: _Budget, following: tuple[int, ...]) -> list[_Unit]:
    """The last sentences of the previous chunk, up to the overlap (counted in the primary's tokens) and what fits
    beside the next unit. Code and table lines are not carried over: half a code block helps nobody."""
    last = units[-1]
    if overlap_tokens <= 0 or last.line:
        return []
    tail: list[_Unit] = []
    for sentence in reversed(split_sentences(last.text)):
        candidate = [_Unit(sentence, budget.costs(sentence), new_block=False), *tail]
        total = budget.total(candidate)
        if total[0] > overlap_tokens or not budget.within(_plus(total, following)):
            break
        tail = candidate
    return tail


def _clip(text: str, fits: Callable[[str], bool]) -> str:
    """The longest start of `text` (marked cut with …) that fits, else ""."""
    good, bad = 0, len(text)
    while bad - good > 1:
        middle = (good + bad) // 2
        good, bad = (middle, bad) if fits(text[:middle].rstrip() + "…") else (good, middle)
    return text[:good].rstrip() + "…" if good else ""


def _fit_header(title: str, section: str, readers: Sequence[TokenReader]) -> tuple[str, str]:
    """Title and heading path as chunks carry them: cut (heading path first) where they would take more than half
    of what a reader reads, so every chunk keeps room for its text."""
    limited = [reader for reader in readers if reader.max_tokens is not None]

    def fits(title: str, section: str) -> bool:
        header = passage_text(title, section, "")
        return all(reader.count_tokens(header) <= (reader.max_tokens or 0) // 2 for reader in limited)

    if fits(title, section):
        return title, section
    section = _clip(section, lambda clipped: fits(title, clipped))
    if not fits(title, section):
        title = _clip(title, lambda clipped: fits(clipped, section))
    return title, section


def chunk_document(
    doc: LoadedDocument, max_tokens: int = 300, overlap_tokens: int = 40, readers: Sequence[TokenReader] = ()
) -> list[Chunk]:
    """Split a loaded document into chunks that keep its title, source and heading path."""
    return list(iter_chunks(doc, max_tokens, overlap_tokens, readers))


def iter_chunks(
    doc: LoadedDocument, max_tokens: int = 300, overlap_tokens: int = 40, readers: Sequence[TokenReader] = ()
) -> Iterator[Chunk]:
    """`chunk_document`, one chunk at a time: a caller that writes chunks in batches holds only the batch.

    `max_tokens` and `overlap_tokens` count in the tokens of `readers[0]` (estimated without readers); every
    reader with a limit gets chunks it reads whole, title and heading path included."""
    doc_id = hashlib.sha1(doc.path.encode("utf-8")).hexdigest()[:16]
    sections: dict[tuple[str, ...], list[Block]] = {}
    for block in doc.blocks:  # dicts keep first-seen order: sections stay in document order
        sections.setdefault(block.section, []).append(block)
    position = 0
    for section, blocks in sections.items():
        title, heading = _fit_header(doc.title, " > ".join(section), readers)
        budget = _Budget(max_tokens, readers, passage_text(title, heading, ""))
        for text in _pack(_section_units(blocks, budget), budget, overlap_tokens):
            yield Chunk(
                doc_id=doc_id,
                path=doc.path,
                title=title,
                source=doc.source,
                section=heading,
                text=text,
                chunk_index=position,
                content_hash=hashlib.sha256(text.encode("utf-8")).hexdigest(),
            )
            position += 1
