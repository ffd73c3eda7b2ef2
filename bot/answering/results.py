"""What the answer service returns: the preset a question ran with, its ranked candidates, citations, statuses,
and the `ragbot ask --json` contract."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from redact import mask_secrets
from retrieval import Candidate


class AnswerStatus(str, Enum):
    """How a question ended: answered, no passage good enough (`min_score`), or failed."""

    OK = "ok"
    NO_ANSWER = "no_answer"
    ERROR = "error"


class RerankStatus(str):
    """`"ok"`, or `"skipped: <reason>"` when the candidates stayed in retrieval order. A string (it is logged and
    printed as is) that says which through `.ok` instead of callers comparing text."""

    @classmethod
    def done(cls) -> RerankStatus:
        return cls("ok")

    @classmethod
    def skipped(cls, reason: str) -> RerankStatus:
        """The reason is often an error's text: masked, as it is shown in Slack and logged with the ranking."""
        return cls(f"skipped: {mask_secrets(reason)}")

    @property
    def ok(self) -> bool:
        return self == "ok"


@dataclass(frozen=True)
class PresetSnapshot:
    """The preset values one question ran with (rows may change while it runs), fallbacks applied."""

    id: int | None
    name: str
    version: int
    instruction: str
    candidates_k: int
    top_n: int
    min_score: float
    collection: str
    retrieval_mode: str = "hybrid"
    # How the preset's channels behave in Slack (they change no ranking).
    suggested_prompts: tuple[tuple[str, str], ...] = ()  # (title, message); empty: the stock prompts
    follow_ups: bool = True
    escalation_usergroup: str | None = None
    escalation_channel: str | None = None
    allow_external: bool = False
    reply_visibility: str = "thread"  # "thread": answers in a channel are public; "ephemeral": the asker's only
    # Only documents from these sources / with any of these tags are searched; empty: no restriction.
    source_filter: tuple[str, ...] = ()
    tag_filter: tuple[str, ...] = ()

    def filters(self) -> dict[str, list[str]] | None:
        """The retrieval filters this preset asks for (payload fields `source_name` and `tags`), None when none."""
        filters = {"source_name": list(self.source_filter), "tags": list(self.tag_filter)}
        return {key: values for key, values in filters.items() if values} or None


@dataclass
class RankedCandidate:
    """A retrieved passage and its place after reranking: the one type every ranking in ragbot is made of (the
    answer's candidates, the playground's rows, both sides of a preset comparison). `citation` is the [n] it is
    cited by when the answer used it."""

    candidate: Candidate
    rerank_rank: int | None = None
    rerank_score: float | None = None
    used: bool = False
    citation: int | None = None


@dataclass(frozen=True)
class Citation:
    """A numbered source of an answer, as every surface shows it (terminal, Slack, admin)."""

    n: int
    title: str
    section: str
    source: str
    score: float | None
    updated: str = ""  # the document's last change as its source states it (ISO); "" when unknown

    @classmethod
    def of(cls, n: int, ranked: RankedCandidate) -> Citation:
        c = ranked.candidate
        return cls(n=n, title=c.title, section=c.section, source=c.source, score=ranked.rerank_score, updated=c.updated)

    @property
    def updated_date(self) -> str:
        """The day the document was last changed, YYYY-MM-DD, for a source line; "" when unknown or not a date."""
        try:
            return datetime.datetime.fromisoformat(self.updated.strip()).date().isoformat()
        except ValueError:
            return ""


def leg_fields(candidate: Candidate) -> dict[str, Any]:
    """A candidate's rank and score in the dense and lexical legs (None where it was not among them)."""
    return {
        "dense_rank": candidate.dense_rank,
        "dense_score": candidate.dense_score,
        "lexical_rank": candidate.lexical_rank,
        "lexical_score": candidate.lexical_score,
    }


@dataclass
class AskResult:
    question: str
    answer: str
    status: AnswerStatus
    citations: list[Citation]
    candidates: list[RankedCandidate]
    preset: PresetSnapshot
    rerank: RerankStatus
    reranker: str | None
    answer_writer: str
    note: str | None
    ranking_id: int | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    retrieval_mode: str = "hybrid"  # the mode that ran (see `retrieval_note` when it is not the preset's)
    retrieval_note: str | None = None
    asked: str | None = None  # the message as asked, when `question` (what was searched) is its standalone form

    @property
    def answered(self) -> bool:
        """An answer from the passages (not "no passage was good enough")."""
        return self.status is AnswerStatus.OK

    @property
    def uncited(self) -> bool:
        """An answer whose text cites none of its sources: they are the passages it was written from (the
        service lists them all), not sources it cites."""
        return self.answered and bool(self.citations) and not any(f"[{c.n}]" in self.answer for c in self.citations)

    def to_json(self) -> dict[str, Any]:
        """The `ragbot ask --json` contract."""
        return {
            "answer": self.answer,
            "status": self.status.value,
            "citations": [
                {
                    "n": c.n,
                    "title": c.title,
                    "section": c.section,
                    "source": c.source,
                    "score": c.score,
                    "updated": c.updated or None,
                }
                for c in self.citations
            ],
            "candidates": [
                {
                    "title": rc.candidate.title,
                    "section": rc.candidate.section,
                    "source": rc.candidate.source,
                    "retrieval_rank": rc.candidate.retrieval_rank,
                    "retrieval_score": rc.candidate.retrieval_score,
                    **leg_fields(rc.candidate),
                    "rerank_rank": rc.rerank_rank,
                    "rerank_score": rc.rerank_score,
                    "used": rc.used,
                }
                for rc in self.candidates
            ],
            "preset": {
                "name": self.preset.name,
                "version": self.preset.version,
                "instruction": self.preset.instruction,
                "candidates_k": self.preset.candidates_k,
                "top_n": self.preset.top_n,
                "min_score": self.preset.min_score,
                "collection": self.preset.collection,
                "retrieval_mode": self.preset.retrieval_mode,
            },
            "retrieval": {"mode": self.retrieval_mode, "note": self.retrieval_note},
            "rerank": str(self.rerank),
            "reranker": self.reranker,
            "answer_writer": self.answer_writer,
            "note": self.note,
            "ranking_id": self.ranking_id,
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }


@dataclass(frozen=True)
class RerankerStatus:
    """Whether the reranker loaded: its name, or why not."""

    name: str | None
    error: str | None

    @property
    def available(self) -> bool:
        return self.error is None and self.name is not None


@dataclass
class CompareRow:
    """Row i: the i-th passage of each ranking; None where one ranking is shorter (another retrieval mode).
    `moved`: places the draft's passage gained (+) or lost (-) against the saved ranking; None when the saved
    preset did not retrieve it."""

    saved: RankedCandidate | None
    draft: RankedCandidate | None
    moved: int | None = 0


@dataclass
class Comparison:
    rows: list[CompareRow]
    saved_mode: str  # the retrieval modes that ran (they fall back to dense on a collection without keywords)
    draft_mode: str
    notes: list[str]  # why a mode fell back
