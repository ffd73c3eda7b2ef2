"""Is any retrieved passage about the question at all? The retrieval-side relevance signal behind "not found".

Retrieval always returns its k best candidates, however unrelated, and fused (RRF) scores are rank-based: they say
nothing about relevance. So the question is judged on two signals that do carry meaning:

- dense similarity: the best cosine similarity between the question's and a candidate's embedding (the dense
  leg's own score). Used for questions in a language the embedder is trusted in (EMBED_LANGUAGES; the bundled
  English-only model: English).
- term match: the largest share of the question's lexical terms (the BM25 leg's tokens: stop words dropped,
  English stemmed, Chinese segmented into words) that one of the first candidates contains. Used for questions
  in other languages (Chinese with the bundled embedder), and whenever the dense score is missing (a lexical-only
  preset, or per-leg scores that could not be fetched).

Each signal has its own floor (`RelevanceFloors`), calibrated by `bench/not_found_calibration.py` on the sample
knowledge base, the Debian FAQ sets and off-topic questions (figures in the README's "Presets" section). A floor of
0 turns that signal's gate off. With a reranker, the preset's `min_score` (on the reranker's 0-1 scale) decides
instead when it is above 0; see `AnswerService._answer`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from retrieval import Candidate
from retrieval.lexical import LexicalEncoder, script_language

# How many of the first candidates term match looks at: the best match is nearly always among them.
TERM_MATCH_DEPTH = 5


@dataclass(frozen=True)
class RelevanceFloors:
    """The least relevance that counts as "the knowledge base addresses this question", per signal (0 = off).

    Args:
        dense: least cosine similarity of the question to its closest passage (the embedder's scale).
        terms: least share (0..1) of the question's terms found together in one of the first passages.
    """

    dense: float = 0.35
    terms: float = 0.50


@dataclass(frozen=True)
class Relevance:
    """What was measured for one question, and whether it clears its floor."""

    signal: str  # "dense" or "terms"
    score: float
    floor: float

    @property
    def enough(self) -> bool:
        return self.floor <= 0 or self.score >= self.floor

    def describe(self) -> str:
        """What was measured, in words, for the "not found" message."""
        if self.signal == "dense":
            what = f"the closest passage's embedding similarity to the question is {self.score:.2f}"
        else:
            what = f"the best passage contains {self.score:.0%} of the question's terms"
        return f"{what}, below the minimum of {self.floor:g}"


def dense_similarity(candidates: Sequence[Candidate]) -> float | None:
    """The best dense (cosine) score among the candidates; None when no candidate has one."""
    scores = [c.dense_score for c in candidates if c.dense_score is not None]
    return max(scores) if scores else None


def term_match(
    question: str, candidates: Sequence[Candidate], lexical: LexicalEncoder, depth: int = TERM_MATCH_DEPTH
) -> float:
    """The largest share of the question's lexical terms that one of the first `depth` candidates contains
    (1.0 for a question without terms: nothing to judge it by)."""
    wanted = set(lexical.encode_query(question).indices)
    if not wanted:
        return 1.0
    firsts = list(candidates[:depth])
    if not firsts:
        return 0.0
    found = lexical.encode_documents(c.passage() for c in firsts)
    return max(len(wanted & set(vector.indices)) / len(wanted) for vector in found)


class RelevanceGate:
    """Measures a question against its candidates with the signal its language allows.

    Args:
        floors: the floor of each signal.
        dense_languages: languages the embedder is trusted in (`Retriever.dense_languages`).
        lexical: the lexical encoder the collection was indexed with (`Retriever.lexical`), so "terms" means the
            same tokens the BM25 leg matched.
    """

    def __init__(self, floors: RelevanceFloors, dense_languages: frozenset[str], lexical: LexicalEncoder) -> None:
        self.floors = floors
        self.dense_languages = dense_languages
        self.lexical = lexical

    def measure(self, question: str, candidates: Sequence[Candidate]) -> Relevance:
        if script_language(question) in self.dense_languages:
            dense = dense_similarity(candidates)
            if dense is not None:
                return Relevance("dense", dense, self.floors.dense)
        return Relevance("terms", term_match(question, candidates, self.lexical), self.floors.terms)
