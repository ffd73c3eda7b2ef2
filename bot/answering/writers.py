"""Answer writing from the top passages: an OpenAI-compatible LLM when configured, else an extractive answer.

Both return the same `Answer`: text that cites passages as [1] [2] [3], and the citations it actually uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from retrieval.chunking import split_sentences
from retrieval.documents import Candidate

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
    text: str
    cited: list[int] = field(default_factory=list)  # passage numbers the text cites, ascending
    writer: str = "extractive"
    note: str | None = None  # e.g. why the LLM was not used


class AnswerWriter(Protocol):
    name: str

    def write(self, question: str, passages: list[Passage]) -> Answer: ...


def cited_numbers(text: str, valid: set[int]) -> list[int]:
    return sorted({int(n) for n in _CITATION.findall(text) if int(n) in valid})


def remove_dangling_citations(text: str, valid: set[int]) -> str:
    """Drop [n] markers that point at no passage (LLMs invent them)."""
    cleaned = _CITATION.sub(lambda m: m.group(0) if int(m.group(1)) in valid else "", text)
    return re.sub(r"[ \t]+([.,;:!?。，；：！？])", r"\1", re.sub(r"[ \t]{2,}", " ", cleaned)).strip()


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

    def write(self, question: str, passages: list[Passage]) -> Answer:
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


_MARKUP_LINE = re.compile(r"^\s*(\||```|~~~|#|<|\{)")  # tables, code, headings, HTML, JSON
_LIST_MARKER = re.compile(r"^\s*(?:[-*+]|\d{1,2}[.)])\s+")


def answer_sentences(text: str) -> list[str]:
    """Sentences fit to quote: no table rows, code fences or headings; list markers stripped."""
    sentences = []
    in_code = False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_code = not in_code
            continue
        if in_code or _MARKUP_LINE.match(line):
            continue
        for sentence in split_sentences(_LIST_MARKER.sub("", line)):
            if len(sentence) > 3:
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


class LLMAnswerer:
    """Any OpenAI-compatible chat endpoint (vLLM, Ollama, llama.cpp server, TGI, OpenAI)."""

    name = "llm"

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout: float = 30.0) -> None:
        from openai import OpenAI

        self.model = model
        self.name = f"llm:{model}"
        # One retry: a blip is worth one more try, a dead endpoint is not worth making the user wait.
        self._client = OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout, max_retries=1)

    def write(self, question: str, passages: list[Passage]) -> Answer:
        context = "\n\n".join(
            f"[{p.n}] {p.candidate.title}"
            + (f" > {p.candidate.section}" if p.candidate.section else "")
            + f"\n{p.candidate.text}"
            for p in passages
        )
        response = self._client.chat.completions.create(
            model=self.model,
            temperature=0.1,
            messages=[
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": f"Passages:\n\n{context}\n\nQuestion: {question}"},
            ],
        )
        raw = (response.choices[0].message.content or "").strip()
        valid = {p.n for p in passages}
        text = remove_dangling_citations(raw, valid)
        return Answer(text=text, cited=cited_numbers(text, valid), writer=self.name)
