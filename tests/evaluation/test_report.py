"""The HTML report's rank chart: its heading names what it shows, and every question has a readable label."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from html.parser import HTMLParser

from evaluation.dataset import EvalItem
from evaluation.plan import conclude
from evaluation.report import question_label, render_html
from evaluation.runner import EvalConfig, rank_candidates
from retrieval import Candidate

QUESTIONS = (
    "How do I configure SAML single sign-on with Okta for the whole workspace and every guest account?",
    "发票要盖什么章？如果是增值税专用发票，公司的财务专用章和发票专用章有什么区别，分别在什么时候使用？",
    "Refund policy",
)


class _Reranker:
    """Scores the last candidate highest, so reranking moves the relevant document (listed last) to the top."""

    def score(self, query: str, documents: Sequence[str], instruction: str | None = None) -> list[float]:
        return [i / len(documents) for i in range(1, len(documents) + 1)]


def _candidate(i: int) -> Candidate:
    return Candidate(f"p{i}", f"doc{i}", f"Doc {i}", f"https://docs.example/{i}", "", "text", i, 1 / i)


def _report(configs: Sequence[EvalConfig]) -> str:
    runs = [
        rank_candidates(EvalItem(q, {"doc5": 1.0}), [_candidate(i) for i in range(1, 6)], _Reranker(), configs)
        for q in QUESTIONS
    ]
    result = conclude(runs)
    return render_html(result.summaries, result.comparisons, result.runs, "Evaluation")


class _Svg(HTMLParser):
    """The headings, and for the last SVG: its question labels (text, tooltip) and circle count."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[str] = []
        self.labels: list[tuple[str, str]] = []
        self.circles = 0
        self._in: str | None = None
        self._title = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "svg":
            self.labels, self.circles = [], 0
        elif tag == "h2":
            self._in = "h2"
            self.headings.append("")
        elif tag == "text" and ("class", "question") in attrs:
            self._in, self._title = "label", ""
            self.labels.append(("", ""))
        elif tag == "title" and self._in == "label":
            self._in = "label-title"
        elif tag == "circle":
            self.circles += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self._in == "label-title":
            self._in = "label"
        elif tag in ("h2", "text"):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "h2":
            self.headings[-1] += data
        elif self._in == "label-title":
            self.labels[-1] = (self.labels[-1][0], self.labels[-1][1] + data)
        elif self._in == "label":
            self.labels[-1] = (self.labels[-1][0] + data, self.labels[-1][1])


def _parse(report: str) -> _Svg:
    parsed = _Svg()
    parsed.feed(report)
    return parsed


def _rank_heading(parsed: _Svg) -> str:
    [heading] = [h for h in parsed.headings if h.startswith("Rank of the first relevant document")]
    return heading


def test_one_configuration_is_named_once_not_compared_with_itself() -> None:
    parsed = _parse(_report([]))  # the retrieval-only baseline alone (eval --no-rerank)
    assert _rank_heading(parsed) == "Rank of the first relevant document: retrieval only"
    assert parsed.circles == len(QUESTIONS)  # one dot per question, not two on top of each other


def test_two_configurations_read_before_and_after() -> None:
    report = _report([EvalConfig("instruction: prefer setup guides", "Prefer setup guides")])
    parsed = _parse(report)
    assert _rank_heading(parsed) == (
        "Rank of the first relevant document: retrieval only (grey) → instruction: prefer setup guides (blue)"
    )
    assert parsed.circles == 2 * len(QUESTIONS)
    # The relevant document is last in retrieval (rank 5) and first after reranking.
    assert re.search(r"<title>Refund policy — retrieval only: 5</title>", report)
    assert re.search(r"<title>Refund policy — instruction: prefer setup guides: 1</title>", report)


def test_every_question_is_labelled_in_the_rank_chart_and_long_ones_are_cut() -> None:
    parsed = _parse(_report([EvalConfig("instruction: x", "x")]))
    assert [title for _, title in parsed.labels] == list(QUESTIONS)  # the full question on hover
    shown = [text for text, _ in parsed.labels]
    assert shown[2] == "Refund policy"
    for text, question in zip(shown[:2], QUESTIONS[:2], strict=True):
        assert text.endswith("…") and question.startswith(text[:-1])
        assert _width(text) <= 40


def test_question_labels_count_wide_characters_twice() -> None:
    assert question_label("短" * 20) == "短" * 20  # exactly 40 places
    assert question_label("短" * 21) == "短" * 19 + "…"
    assert question_label("a" * 41) == "a" * 39 + "…"
    assert question_label("  two\nlines  ") == "two lines"


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)
