"""Answers that read well without an LLM (issue 17): whole sentences from hard-wrapped sources, no markup, sources
numbered 1..n in the order the answer cites them, and one citation per place (a section's overlapping chunks
merged), through the real answer service over a SQLite ranking log."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import store
from bot.answering import AnswerService, ExtractiveAnswerer, Presets, RankingRecorder, RerankerSlot
from bot.answering.passages import join_overlapping
from bot.answering.writers import LLMAnswerer, Passage, answer_sentences, clean_markup
from retrieval import Candidate
from tests.fake_openai import FakeOpenAI

# As the git manual's credentials page came out of the chunker: the source's line breaks kept inside paragraphs.
GIT_CREDENTIALS = """Without any credential helpers defined, Git will try the following strategies to ask the user
for usernames and passwords: if the GIT_ASKPASS environment variable is set, the program specified by the
variable is invoked. Git will prompt you for a password. Git currently has **two** helpers
built in, `cache` and `store`; see [gitcredentials](https://git-scm.com/docs/gitcredentials) for details.
## Avoiding repetition
It can be cumbersome to input the same credentials over and over. Git provides two methods to reduce this
annoyance: static configuration of usernames for a given authentication context, and credential helpers."""

SENTENCE_END = re.compile(r"[.!?。！？`)]$")


def passage(n: int, text: str, title: str = "Doc", section: str = "") -> Passage:
    return Passage(n, Candidate(f"p{n}", f"d{n}", title, f"https://docs.example/{n}", section, text, n, 0.5), 0.9)


def segments(answer: str) -> list[str]:
    """The text between citation markers: each must be whole sentences."""
    return [s.strip() for s in re.split(r"(?:\s*\[\d+\])+", answer) if s.strip()]


def test_a_hard_wrapped_passage_gives_whole_sentences_with_no_marker_inside_one() -> None:
    answer = ExtractiveAnswerer().write("How does Git ask for a password?", [passage(1, GIT_CREDENTIALS)])
    assert "Git will prompt you for a password. [1]" in answer.text
    assert "for usernames and passwords" in answer.text  # the wrapped line was joined, not cut off
    for segment in segments(answer.text):
        assert segment[0].isupper() and SENTENCE_END.search(segment), segment
    assert not re.search(r"\[\d+\]\s+[a-z]", answer.text)  # no sentence resumes after a marker
    assert all("\n" not in s for s in answer_sentences(GIT_CREDENTIALS))


def test_markup_is_cleaned_from_quoted_sentences() -> None:
    sentences = answer_sentences(GIT_CREDENTIALS)
    assert "Git currently has two helpers built in, `cache` and `store`; see gitcredentials for details." in sentences
    joined = " ".join(sentences)
    assert "**" not in joined and "](" not in joined and "#" not in joined and "Avoiding repetition" not in joined
    assert clean_markup("## Setup: *really* __easy__ with <b>Okta</b> and <https://okta.com>[3]") == (
        "Setup: really easy with Okta and https://okta.com"
    )
    assert (
        clean_markup("Keep `a_b *c*` and snake_case and 2 * 3 * 4.") == "Keep `a_b *c*` and snake_case and 2 * 3 * 4."
    )


def test_code_blocks_list_items_and_chinese_sentence_ends() -> None:
    text = (
        "Install the package with apt.\n```\napt install git. Then run it.\n```\n"
        "- The first item wraps\n  onto a second line\n- The second item\n"
        "上一页 / 上一级\nDebian 使用 APT 管理软件包，它可以自动地为用户\n解决依赖关系！你可以试试吗？"
    )
    assert answer_sentences(text) == [
        "Install the package with apt.",
        "The first item wraps onto a second line",
        "The second item",
        "Debian 使用 APT 管理软件包，它可以自动地为用户解决依赖关系！",
        "你可以试试吗？",
    ]


def test_overlapping_chunks_join_once_in_either_order() -> None:
    first = "Git stores credentials in memory. The cache helper keeps them for fifteen minutes."
    second = "The cache helper keeps them for fifteen minutes. The store helper writes them to disk."
    whole = "Git stores credentials in memory. The cache helper keeps them for fifteen minutes. The store helper"
    assert join_overlapping([first, second]).startswith(whole)
    assert join_overlapping([second, first]) == join_overlapping([first, second])
    assert join_overlapping([first, first[:40]]) == first
    assert join_overlapping(["Alpha one.", "Beta two."]) == "Alpha one.\n\nBeta two."


# -- through the answer service ---------------------------------------------------------------------------------


class ScoreByWord:
    """A reranker that scores a passage by the first key of its table that the passage contains."""

    name = "score-by-word"

    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores

    def score(self, query, documents, instruction=None) -> list[float]:
        return [next((s for w, s in self.scores.items() if w in d), 0.0) for d in documents]


class FixedRetriever:
    def __init__(self, candidates: list[Candidate]) -> None:
        self.candidates = candidates

    def search(self, question, collection, limit, filters=None, mode="hybrid", explain=True):
        from retrieval import RetrievalResult

        return RetrievalResult(list(self.candidates[:limit]), {"embed": 1.0, "search": 1.0}, mode=mode)


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = store.make_engine(f"sqlite:///{tmp_path / 'answers.db'}")
    store.upgrade_database(engine)
    with store.session_factory(engine).begin() as session:  # every passage is eligible, whatever the default
        store.default_preset(session).min_score = 0.0
        store.default_preset(session).top_n = 3
    yield store.session_factory(engine)
    engine.dispose()


def answers(sessions, candidates: list[Candidate], scores: dict[str, float], writer=None) -> AnswerService:
    reranker = ScoreByWord(scores)
    return AnswerService(
        Presets(sessions, "kb"),
        FixedRetriever(candidates),
        RerankerSlot(lambda: reranker),
        writer or ExtractiveAnswerer(),
        RankingRecorder(sessions),
    )


def chunk(point_id: str, doc: str, section: str, text: str, rank: int) -> Candidate:
    return Candidate(point_id, doc, doc.title(), f"https://docs.example/{doc}", section, text, rank, 1 / rank)


def logged_citations(sessions, ranking_id: int) -> dict[str, tuple[bool, int | None]]:
    with sessions() as session:
        log = session.get(store.RankingLog, ranking_id)
        return {c.point_id: (c.used, c.citation) for c in log.candidates}


def test_extractive_sources_are_numbered_from_one_in_the_order_cited(sessions) -> None:
    candidates = [
        chunk("pricing", "pricing", "", "Prices are listed monthly in euros.", 1),
        chunk("sso", "sso", "", "SSO with Okta needs the Business plan.", 2),
        chunk("scim", "scim", "", "SCIM provisioning works with Okta too.", 3),
    ]
    scores = {"Prices": 0.9, "SSO": 0.8, "SCIM": 0.7}
    result = answers(sessions, candidates, scores).ask("Does Okta SSO work?")
    # Passage 1 (pricing) shares no word with the question: the answer cites passages 2 and 3 as [1] and [2].
    assert result.answer == "SSO with Okta needs the Business plan. [1] SCIM provisioning works with Okta too. [2]"
    assert [(c.n, c.title) for c in result.citations] == [(1, "Sso"), (2, "Scim")]
    assert logged_citations(sessions, result.ranking_id) == {
        "sso": (True, 1),
        "scim": (True, 2),
        "pricing": (True, 3),  # handed to the writer, not cited: numbered after the cited ones
    }


def test_an_llm_answer_citing_3_then_1_reads_1_then_2(sessions, llm_server: str, monkeypatch) -> None:
    monkeypatch.setattr(FakeOpenAI, "reply", "Okta is supported [3]; SSO needs the Business plan [1][7]. See also [3].")
    candidates = [
        chunk("sso", "sso", "", "SSO needs the Business plan.", 1),
        chunk("billing", "billing", "", "Invoices are sent monthly.", 2),
        chunk("okta", "okta", "", "Okta is supported.", 3),
    ]
    writer = LLMAnswerer(llm_server, "m", timeout=5)
    result = answers(sessions, candidates, {"SSO": 0.9, "Invoices": 0.8, "Okta": 0.7}, writer).ask("SSO?")
    assert result.answer == "Okta is supported [1]; SSO needs the Business plan [2]. See also [1]."
    assert [(c.n, c.title) for c in result.citations] == [(1, "Okta"), (2, "Sso")]
    assert result.answer_writer == "llm:m"
    assert logged_citations(sessions, result.ranking_id) == {
        "okta": (True, 1),
        "sso": (True, 2),
        "billing": (True, 3),
    }


def test_three_overlapping_chunks_of_one_section_are_one_citation(sessions) -> None:
    a = "Git stores credentials with a helper. The cache helper keeps passwords in memory for fifteen minutes."
    b = "The cache helper keeps passwords in memory for fifteen minutes. The store helper writes passwords to disk."
    c = "The store helper writes passwords to disk. The osxkeychain helper keeps passwords in the keychain."
    candidates = [
        chunk("git-1", "git", "Credentials", a, 1),
        chunk("git-2", "git", "Credentials", b, 2),
        chunk("git-3", "git", "Credentials", c, 3),
        chunk("git-other", "git", "Configuration", "Passwords can also come from the askpass program.", 4),
        chunk("pg", "postgres", "Passwords", "PostgreSQL reads passwords from the pgpass file.", 5),
    ]
    scores = {"osxkeychain": 0.9, "cache helper": 0.85, "store helper": 0.8, "askpass": 0.6, "pgpass": 0.5}
    result = answers(sessions, candidates, scores).ask("Where are passwords kept?")
    places = [(c.title, c.section) for c in result.citations]
    assert len(places) == len(set(places)) and ("Git", "Credentials") in places
    assert sorted(c.n for c in result.citations) == list(range(1, len(result.citations) + 1))
    # every chunk of the section was handed over once, as one passage, and all three share its number
    logged = logged_citations(sessions, result.ranking_id)
    git = {logged[p] for p in ("git-1", "git-2", "git-3")}
    assert len(git) == 1 and next(iter(git))[0] is True
    numbers = [n for used, n in logged.values() if used]
    assert len(set(numbers)) == 3  # three places: Credentials, Configuration, PostgreSQL
    assert result.answer.count("keeps passwords in memory for fifteen minutes") <= 1
    with sessions() as session:
        [log] = session.scalars(select(store.RankingLog)).all()
        assert sum(c.used for c in log.candidates) == 5


def test_no_answer_lists_distinct_places_as_the_closest(sessions) -> None:
    with sessions.begin() as session:
        store.default_preset(session).min_score = 0.95
    candidates = [
        chunk("git-1", "git", "Credentials", "The cache helper keeps passwords.", 1),
        chunk("git-2", "git", "Credentials", "The store helper writes passwords.", 2),
        chunk("pg", "postgres", "Passwords", "PostgreSQL reads the pgpass file.", 3),
    ]
    result = answers(sessions, candidates, {"cache": 0.5, "store": 0.4, "pgpass": 0.3}).ask("Passwords?")
    assert not result.answered
    assert [(c.n, c.title) for c in result.citations] == [(1, "Git"), (2, "Postgres")]


@pytest.mark.parametrize("terminal", [True, False])
def test_ragbot_ask_renders_markdown_on_a_terminal_and_prints_it_as_written_otherwise(monkeypatch, terminal) -> None:
    import io

    from rich.console import Console

    import bot.cli.ask as ask_command

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=terminal, color_system="standard" if terminal else None, width=100)
    monkeypatch.setattr(ask_command, "out", console)
    ask_command.print_answer("Git has **two** helpers [1]:\n\n- `cache` [1]\n- `store` [2]")
    printed = buffer.getvalue()
    if terminal:
        plain = re.sub(r"\x1b\[[0-9;]*m", "", printed)
        assert "**" not in plain and "two helpers [1]:" in plain and "• cache [1]" in plain
        assert "\x1b[1m" in printed  # bold
    else:
        assert printed == "Git has **two** helpers [1]:\n\n- `cache` [1]\n- `store` [2]\n"
