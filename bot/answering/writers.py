"""Answer writing from the top passages: an OpenAI-compatible LLM when configured, else an extractive answer.

Both return the same `Answer`: text that cites passages as [1] [2] [3], and the citations it actually uses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.answering.conversation import Turn
from retrieval.documents import Candidate
from retrieval.text import glue

_CITATION = re.compile(r"\[(\d{1,2})\]")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_WORD = re.compile(r"[a-z0-9][a-z0-9_\-.]*[a-z0-9]|[a-z0-9]")
_STOPWORDS = frozenset(
    "a an and are as at be by can do does for from how i if in is it its of on or our the this to we what when "
    "where which who why will with you your customer customers".split()
)


@dataclass(frozen=True)
class Passage:
    """A passage handed to the answer writer: `n` is the number it is cited by."""

    n: int
    candidate: Candidate
    score: float | None  # the rerank score; None when reranking was skipped


@dataclass
class Answer:
    """What a writer wrote: `text` cites passages by their `Passage.n`; the service numbers the sources for readers
    (`number_by_first_citation`)."""

    text: str
    cited: list[int] = field(default_factory=list)  # passage numbers the text cites, ascending
    writer: str = "extractive"
    note: str | None = None  # e.g. why the LLM was not used


class AnswerWriter(Protocol):
    """Writes an answer from numbered passages. `history` is the conversation before a follow-up (oldest first);
    a writer that streams calls `on_text` with each piece of its raw text as it comes."""

    name: str

    def write(
        self,
        question: str,
        passages: list[Passage],
        history: Sequence[Turn] = (),
        on_text: Callable[[str], None] | None = None,
    ) -> Answer: ...

    def standalone_question(self, history: Sequence[Turn], question: str) -> str | None:
        """A follow-up rewritten to stand on its own for retrieval; None when this writer cannot rewrite."""
        ...


def cited_numbers(text: str, valid: set[int]) -> list[int]:
    return sorted({int(n) for n in _CITATION.findall(text) if int(n) in valid})


def remove_dangling_citations(text: str, valid: set[int]) -> str:
    """Drop [n] markers that point at no passage (LLMs invent them)."""
    return _tidy_spaces(_CITATION.sub(lambda m: m.group(0) if int(m.group(1)) in valid else "", text))


def _tidy_spaces(text: str) -> str:
    """The spaces a dropped marker leaves: doubled ones, and one before punctuation."""
    return re.sub(r"[ \t]+([.,;:!?。，；：！？])", r"\1", re.sub(r"[ \t]{2,}", " ", text)).strip()


class CitationStream:
    """Renumbers a streamed answer's [n] markers as `number_by_first_citation` numbers the whole text, piece by
    piece: a marker is held back until it is complete, one that points at no passage is dropped."""

    _PARTIAL = re.compile(r"\[\d{0,2}$")

    def __init__(self, valid: set[int]) -> None:
        self.valid = valid
        self.order: list[int] = []
        self._held = ""

    def feed(self, piece: str) -> str:
        """The text that can be shown now (possibly empty)."""
        text = self._held + piece
        partial = self._PARTIAL.search(text)
        self._held = partial.group(0) if partial else ""
        return self._renumber(text[: partial.start()] if partial else text)

    def finish(self) -> str:
        """What was held back at the end."""
        text, self._held = self._held, ""
        return self._renumber(text)

    def _renumber(self, text: str) -> str:
        def number(match: re.Match[str]) -> str:
            n = int(match.group(1))
            if n not in self.valid:
                return ""
            if n not in self.order:
                self.order.append(n)
            return f"[{self.order.index(n) + 1}]"

        return _CITATION.sub(number, text)


def number_by_first_citation(text: str, valid: set[int]) -> tuple[str, list[int]]:
    """The text with its [n] markers renumbered 1..k in the order it first cites them (markers that point at no
    passage dropped), and the passage numbers in that order: sources read [1] [2] [3], never [2] [3].

    One pass, as `CitationStream` numbers a streamed answer: dropping a marker first and numbering the text left
    after it raised KeyError where the drop joined a new marker ("[[9]1]" -> "[1]", which the order never saw)."""
    order: list[int] = []

    def number(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if n not in valid:
            return ""
        if n not in order:
            order.append(n)
        return f"[{order.index(n) + 1}]"

    return _tidy_spaces(_CITATION.sub(number, text)), order


def _terms(text: str) -> set[str]:
    """Words (lower-cased, no stop words) plus CJK character bigrams: enough to match a sentence to a query."""
    lowered = text.lower()
    words = {w for w in _WORD.findall(lowered) if w not in _STOPWORDS}
    cjk = "".join(_CJK.findall(lowered))
    return words | {cjk[i : i + 2] for i in range(len(cjk) - 1)}


class ExtractiveAnswerer:
    """The most relevant sentences of the top passages, each followed by its citation. No model needed."""

    name = "extractive"

    def __init__(self, max_sentences: int = 4, max_per_passage: int = 2) -> None:
        self.max_sentences = max_sentences
        self.max_per_passage = max_per_passage

    def write(
        self,
        question: str,
        passages: list[Passage],
        history: Sequence[Turn] = (),
        on_text: Callable[[str], None] | None = None,
    ) -> Answer:
        """The answer at once (it is not streamed: `on_text` is not called); `history` is not used."""
        query = _terms(question)
        picked: list[tuple[float, int, int, str]] = []  # (overlap, passage n, sentence position, sentence)
        for passage in passages:
            scored = [(_overlap(query, s), i, s) for i, s in enumerate(answer_sentences(passage.candidate.text))]
            best = sorted(scored, key=lambda t: (-t[0], t[1]))[: self.max_per_passage]
            picked.extend((score, passage.n, i, s) for score, i, s in best if score > 0)
        if not picked:  # nothing shares a word with the question (another language?): lead with the top passage
            first = next((s for p in passages for s in answer_sentences(p.candidate.text)), "")
            picked = [(0.0, passages[0].n, 0, first)] if first else []
        best_score = max(t[0] for t in picked)
        # Weak matches next to a strong one are noise: keep what is at least a third as relevant as the best.
        picked = [t for t in picked if t[0] >= best_score / 3]
        top = sorted(picked, key=lambda t: (-t[0], t[1], t[2]))[: self.max_sentences]
        top.sort(key=lambda t: (t[1], t[2]))
        text = " ".join(f"{sentence.rstrip()} [{n}]" for _, n, _, sentence in top)
        return Answer(text=text, cited=sorted({n for _, n, _, _ in top}), writer=self.name)

    def standalone_question(self, history: Sequence[Turn], question: str) -> str | None:
        return None


_MARKUP_LINE = re.compile(r"^\s*(\||<|\{)")  # tables, HTML, JSON
_FENCE = ("```", "~~~")
_HEADING = re.compile(r"^\s{0,3}#{1,6}(\s|$)")
_LIST_MARKER = re.compile(r"^\s*(?:[-*+•]|\d{1,2}[.)])\s+")
_TERMINAL = ".!?。！？"
_CLOSERS = "\"'”’)」』）"
# An answer sentence ends at . ! ? followed by space and a word that does not start in lower case ("e.g. the" goes
# on), or at 。！？ (Chinese puts no space after them). Unlike the chunker's splitter, not at ; or line ends.
_SENTENCE_END = re.compile(f"([。！？][{_CLOSERS}]*)\\s*|([.!?][{_CLOSERS}]*)\\s+(?=[^\\sa-z])")
_INLINE_CODE = re.compile(r"(`+)(.+?)\1")
_LINK = re.compile(r"!?\[([^\]\n]*)\]\((?:[^()\s]|\([^()\s]*\))*(?:\s+\"[^\"\n]*\")?\)")
_REF_LINK = re.compile(r"!?\[([^\]\n]+)\]\[[^\]\n]*\]")
_AUTOLINK = re.compile(r"<((?:https?|mailto):[^>\s]+)>")
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>\n]*)?/?>")
_EMPHASIS = re.compile(
    r"(\*\*|__|~~)(?=\S)(.+?)(?<=\S)\1"
    r"|(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])"
    r"|(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])"
)
_FOOTNOTE = re.compile(r"\s?\[\d{1,3}\]")  # the source's own [12]: it would read as one of our citations


def clean_markup(text: str) -> str:
    """Text as a reader should see it: Markdown emphasis, links, heading hashes, inline HTML tags and footnote
    markers removed (link text kept). Inline `code` is kept as written."""
    parts = _INLINE_CODE.split(text)  # [text, ticks, code, ticks, code, ..., text]
    out = []
    for i in range(0, len(parts), 3):
        piece = _HEADING.sub("", parts[i]) if i == 0 else parts[i]
        piece = _AUTOLINK.sub(r"\1", piece)
        piece = _REF_LINK.sub(r"\1", _LINK.sub(r"\1", piece))
        piece = _HTML_TAG.sub("", piece)
        for _ in range(2):  # ***both*** is emphasis inside emphasis
            piece = _EMPHASIS.sub(lambda m: next(g for g in m.groups()[1:] if g is not None), piece)
        out.append(_FOOTNOTE.sub("", piece))
        if i + 2 < len(parts):
            out.append(f"{parts[i + 1]}{parts[i + 2]}{parts[i + 1]}")
    return re.sub(r"[ \t]{2,}", " ", "".join(out)).strip()


def split_answer_sentences(text: str) -> list[str]:
    """Sentences of one paragraph (English or Chinese), each with its end punctuation."""
    marked = _SENTENCE_END.sub(lambda m: (m.group(1) or m.group(2)) + "\0", text)
    return [s.strip() for s in marked.split("\0") if s.strip()]


def _joins(previous: str, line: str) -> bool:
    """Whether `line` continues the paragraph `previous` ends (the source wrapped it) rather than starting a new one:
    it goes on in lower case, or the previous line stops mid-sentence and is long enough to have been wrapped."""
    if line[:1].islower():
        return True
    end = previous.rstrip()[-1:]
    wrapped_width = 15 if _CJK.match(end) else 40  # a Chinese character is two columns wide
    return bool(end) and end not in _TERMINAL and len(previous) >= wrapped_width


def prose_units(text: str) -> list[tuple[str, bool]]:
    """The paragraphs and list items of a passage, hard-wrapped lines joined: (text, is a list item). A Markdown
    table's rows read as items ("Plan: Scale; Seats: 250"), each cell under its column's header, since a price
    list or a limits table is often the answer. Code blocks, HTML and headings are left out; they do not read as
    sentences."""
    units: list[tuple[str, bool]] = []
    current: str | None = None
    is_item = False
    in_code = False
    header: list[str] | None = None  # the current table's first row

    def close() -> None:
        nonlocal current
        if current is not None and current.strip():
            units.append((current.strip(), is_item))
        current = None

    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(_FENCE):
            close()
            in_code = not in_code
            continue
        row = None if in_code else _TABLE_ROW.match(line)
        if row:
            close()
            cells = [cell.strip() for cell in row.group(1).split("|")]
            if header is None:
                header = cells
            elif not _TABLE_RULE.match(line) and any(cells):
                units.append((_table_row(header, cells), True))
            continue
        header = None
        if in_code or not stripped or _MARKUP_LINE.match(line) or _HEADING.match(line):
            close()
            continue
        if _LIST_MARKER.match(line):
            close()
            current, is_item = _LIST_MARKER.sub("", line).strip(), True
        elif current is not None and ((is_item and line[:1].isspace()) or _joins(current, stripped)):
            current = glue(current, stripped)
        else:
            close()
            current, is_item = stripped, False
    close()
    return units


_TABLE_ROW = re.compile(r"^\s*\|(.*)\|\s*$")
_TABLE_RULE = re.compile(r"^\s*\|(\s*:?-{3,}:?\s*\|)+\s*$")


def _table_row(header: list[str], cells: list[str]) -> str:
    """One table row as text: "Column: value; ..." where the header names the column, else the values alone."""
    named = [f"{name}: {cell}" if name else cell for name, cell in zip(header, cells, strict=False) if cell]
    return "; ".join(named or cells)


def answer_sentences(text: str) -> list[str]:
    """Whole sentences fit to quote, cleaned of markup: hard-wrapped lines joined first, so a line end is never
    taken for a sentence end. A short paragraph with no end punctuation (a caption, a label, navigation) is left
    out; list items need none."""
    sentences: list[str] = []
    for unit, is_item in prose_units(text):
        unit = clean_markup(unit)
        if not is_item and unit[-1:] not in _TERMINAL + _CLOSERS and len(unit.split()) <= 6 and len(unit) < 40:
            continue
        for sentence in split_answer_sentences(unit):
            if len(sentence) > 3 and sentence not in sentences:  # merged chunks may repeat a sentence
                sentences.append(sentence)
    return sentences


def _overlap(query: set[str], sentence: str) -> float:
    """Shared terms, normalised for length; a sentence in another script than the question counts half."""
    terms = _terms(sentence)
    score = len(query & terms) / (1 + len(terms) ** 0.5)
    query_cjk = any(_CJK.match(t) for t in query)
    sentence_cjk = len(_CJK.findall(sentence)) > len(sentence) / 3
    return score if query_cjk == sentence_cjk else score / 2


SYSTEM_PROMPT = (
    "You answer a colleague's product question using ONLY the numbered passages from the documentation. "
    "Cite every claim with the passage number in square brackets, like [1] or [2][3]. If the passages do not "
    "answer the question, say so plainly instead of guessing. Answer in the language of the question, briefly."
)
REWRITE_PROMPT = (
    "Rewrite the user's last message as one standalone question that can be understood without the conversation "
    "before it: resolve what 'it', 'that' or 'they' refer to and keep the product names. Keep the language of the "
    "last message. Reply with the question only."
)


class LLMStreamBroken(RuntimeError):
    """A streamed completion ended before the model said it had finished."""


class LLMAnswerer:
    """Any OpenAI-compatible chat endpoint (vLLM, Ollama, llama.cpp server, TGI, OpenAI). Streams when asked to
    (`on_text`); sees the conversation before a follow-up, and rewrites the follow-up for retrieval."""

    name = "llm"

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout: float = 30.0) -> None:
        from openai import OpenAI

        self.model = model
        self.name = f"llm:{model}"
        # One retry: a blip is worth one more try, a dead endpoint is not worth making the user wait.
        self._client = OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout, max_retries=1)

    def write(
        self,
        question: str,
        passages: list[Passage],
        history: Sequence[Turn] = (),
        on_text: Callable[[str], None] | None = None,
    ) -> Answer:
        context = "\n\n".join(
            f"[{p.n}] {p.candidate.title}"
            + (f" > {p.candidate.section}" if p.candidate.section else "")
            + f"\n{p.candidate.text}"
            for p in passages
        )
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": SYSTEM_PROMPT},
            *({"role": t.role, "content": t.text} for t in history),
            {"role": "user", "content": f"Passages:\n\n{context}\n\nQuestion: {question}"},
        ]
        if on_text is None:
            response = self._client.chat.completions.create(model=self.model, temperature=0.1, messages=messages)
            raw = response.choices[0].message.content or ""
        else:
            raw = self._stream(messages, on_text)
        valid = {p.n for p in passages}
        text = remove_dangling_citations(raw.strip(), valid)
        return Answer(text=text, cited=cited_numbers(text, valid), writer=self.name)

    def _stream(self, messages: list[dict[str, Any]], on_text: Callable[[str], None]) -> str:
        """The completion streamed: each piece goes to `on_text` as it comes; a stream that breaks off raises."""
        pieces: list[str] = []
        finished = False
        stream = self._client.chat.completions.create(model=self.model, temperature=0.1, messages=messages, stream=True)
        with stream:
            for chunk in stream:
                if not chunk.choices:
                    continue  # a usage chunk
                finished = finished or chunk.choices[0].finish_reason is not None
                delta = chunk.choices[0].delta.content
                if delta:
                    pieces.append(delta)
                    on_text(delta)
        if not finished:  # the connection closed mid-answer: what came is not the whole answer
            raise LLMStreamBroken(f"the LLM's stream ended after {len(pieces)} pieces without finishing")
        return "".join(pieces)

    def standalone_question(self, history: Sequence[Turn], question: str) -> str | None:
        """Asked once, without the client's retry: the follow-up waits for this before it is even searched, and
        the joined question is a fair stand-in when it fails."""
        conversation = "\n".join(f"{t.role}: {t.text}" for t in history)
        response = self._client.with_options(max_retries=0).chat.completions.create(
            model=self.model,
            temperature=0,
            messages=[
                {"role": "system", "content": REWRITE_PROMPT},
                {"role": "user", "content": f"Conversation:\n{conversation}\n\nLast message: {question}"},
            ],
        )
        rewritten = (response.choices[0].message.content or "").strip().strip('"“”')
        return rewritten or None
