"""A question's whole path through real components: Qdrant Edge, the bundled embedder, a Qwen3 checkpoint
on disk, SQLite with the real migrations."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

import store
from bot.answering import RerankRequiredError
from tests.conftest import SAMPLE_KB


def _known_sources() -> set[str]:
    """Every source a sample document can have: its declared URL, or its path."""
    sources = set()
    for path in SAMPLE_KB.rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            text = path.read_text(encoding="utf-8", errors="ignore") if path.suffix != ".pdf" else ""
            match = re.search(r"^url:\s*(\S+)|rel=\"canonical\" href=\"([^\"]+)\"", text, re.M)
            sources.add(next(g for g in match.groups() if g) if match else path.name)
    return sources


def _source_exists(source: str, known: set[str]) -> bool:
    return source in known or Path(source).name in known


@pytest.mark.parametrize(
    ("question", "expected_title"),
    [
        ("Can we integrate single sign-on for this customer?", "sso"),
        ("发票需要盖什么章？", "发票"),
    ],
)
def test_ask_answers_with_citations_and_logs_the_whole_ranking(components, question: str, expected_title: str) -> None:
    result = components.answers.ask(question, channel="C0123ABCD", user="U1")

    assert result.status == "ok" and result.rerank == "ok"
    assert result.answer.strip()
    assert 1 <= len(result.citations) <= 3
    known = _known_sources()
    for citation in result.citations:
        assert _source_exists(citation.source, known), citation.source
        assert 0.0 <= citation.score <= 1.0
        assert f"[{citation.n}]" in result.answer
    # retrieval found the right topic (the tiny reranker has random weights, so only retrieval is judged)
    retrieved = [rc.candidate for rc in sorted(result.candidates, key=lambda rc: rc.candidate.retrieval_rank)]
    top3 = [f"{c.title} {c.source}" for c in retrieved[:3]]
    assert any(expected_title.lower() in t.lower() for t in top3), top3
    # every candidate was reranked, in rank order, scores in [0, 1]
    assert len(result.candidates) == result.preset.candidates_k == 20
    assert [rc.rerank_rank for rc in result.candidates] == list(range(1, 21))
    scores = [rc.rerank_score for rc in result.candidates]
    assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)
    assert sum(rc.used for rc in result.candidates) == result.preset.top_n == 3
    assert set(result.timings_ms) == {"embed", "tokenize", "search", "rerank", "answer", "total"}

    with components.sessions() as session:
        log = session.get(store.RankingLog, result.ranking_id)
        assert log.question == question and log.channel == "C0123ABCD" and log.user == "U1"
        assert (log.status, log.rerank_status, log.preset_name) == ("ok", "ok", "default")
        assert log.instruction == result.preset.instruction
        assert log.answer == result.answer
        assert len(log.candidates) == 20
        by_rank = {c.retrieval_rank: c for c in log.candidates}
        for rc in result.candidates:
            row = by_rank[rc.candidate.retrieval_rank]
            assert (row.rerank_rank, row.used, row.source) == (rc.rerank_rank, rc.used, rc.candidate.source)
            assert row.rerank_score == pytest.approx(rc.rerank_score)
        assert set(log.timings_ms) == {"embed", "tokenize", "search", "rerank", "answer", "total"}


def test_json_contract(components) -> None:
    data = components.answers.ask("What is the API rate limit?").to_json()
    assert {"answer", "citations", "candidates", "preset", "rerank", "ranking_id", "timings_ms"} <= set(data)
    assert set(data["citations"][0]) >= {"n", "title", "source", "score"}
    assert set(data["candidates"][0]) >= {
        "title",
        "source",
        "retrieval_rank",
        "retrieval_score",
        "rerank_rank",
        "rerank_score",
        "used",
    }
    assert set(data["timings_ms"]) == {"embed", "tokenize", "search", "rerank", "answer", "total"}
    assert data["rerank"] == "ok" and isinstance(data["ranking_id"], int)


def test_channel_preset_steers_instruction_and_limits(components) -> None:
    with components.sessions.begin() as session:
        session.add(
            store.Preset(
                team="legal",
                name="legal",
                instruction="Given a legal question, retrieve contract and compliance passages",
                candidates_k=8,
                top_n=2,
                min_score=0.0,
            )
        )
        session.flush()
        store.bind_channel(session, "C0LEGAL01", "legal")
    question = "Is customer data encrypted at rest?"
    legal = components.answers.ask(question, channel="C0LEGAL01")
    default = components.answers.ask(question, channel="C0OTHER01")
    assert legal.preset.name == "legal" and default.preset.name == "default"
    assert len(legal.candidates) == 8 and sum(rc.used for rc in legal.candidates) == 2
    # same candidates, another instruction: the reranker sees it (scores change)
    legal_scores = {rc.candidate.point_id: rc.rerank_score for rc in legal.candidates}
    default_scores = {rc.candidate.point_id: rc.rerank_score for rc in default.candidates}
    common = legal_scores.keys() & default_scores.keys()
    assert common and any(abs(legal_scores[p] - default_scores[p]) > 1e-6 for p in common)
    with components.sessions() as session:
        log = session.get(store.RankingLog, legal.ranking_id)
        assert log.preset_name == "legal" and log.instruction.startswith("Given a legal question")


def test_nothing_above_min_score_is_said_honestly(components) -> None:
    with components.sessions.begin() as session:
        store.default_preset(session).min_score = 0.999
    result = components.answers.ask("How do I configure SAML with Okta?")
    assert result.status == "no_answer"
    assert "could not find" in result.answer and "minimum of 0.999" in result.answer
    assert result.citations and not any(rc.used for rc in result.candidates)
    with components.sessions() as session:
        assert session.get(store.RankingLog, result.ranking_id).status == "no_answer"


def test_unloadable_reranker_answers_in_retrieval_order_and_says_so(components, tmp_path: Path) -> None:
    components.settings.rerank_model = str(tmp_path / "no-such-model")
    result = components.answers.ask("How do I export all our data?")
    assert result.rerank.startswith("skipped: reranker unavailable") and "no-such-model" in result.rerank
    assert [rc.candidate.retrieval_rank for rc in result.candidates] == list(range(1, 21))
    assert all(rc.rerank_score is None for rc in result.candidates)
    assert [rc.used for rc in result.candidates[:3]] == [True, True, True]
    with components.sessions() as session:
        assert session.get(store.RankingLog, result.ranking_id).rerank_status == result.rerank
    with pytest.raises(RerankRequiredError, match="no-such-model"):
        components.answers.ask("How do I export all our data?", require_rerank=True)
    with components.sessions() as session:
        last = session.scalars(select(store.RankingLog).order_by(store.RankingLog.id.desc())).first()
        assert last.status == "error" and "RerankRequiredError" in last.error


def test_llm_writes_the_answer_from_the_top_passages(components, llm_server: str) -> None:
    from tests.fake_openai import FakeOpenAI

    components.settings.llm_base_url = llm_server  # before the answer service is built from the settings
    result = components.answers.ask("Can we integrate single sign-on for this customer?")
    assert result.answer == "SSO needs the Business plan [1]; Okta is supported [2]."
    assert [c.n for c in result.citations] == [1, 2]
    assert result.answer_writer.startswith("llm:")
    sent = FakeOpenAI.requests[-1]["body"]["messages"][-1]["content"]
    used = [rc.candidate for rc in result.candidates if rc.used]
    assert all(c.text in sent for c in used)
    unused = [
        rc.candidate for rc in result.candidates if not rc.used and rc.candidate.text not in {u.text for u in used}
    ]
    assert not any(c.text in sent for c in unused)


def test_llm_down_falls_back_to_an_extractive_answer_and_says_so(components) -> None:
    import socket

    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    components.settings.llm_base_url = f"http://127.0.0.1:{port}/v1"
    components.settings.llm_timeout = 2
    result = components.answers.ask("How do I export all our data?")
    assert result.status == "ok" and result.answer_writer == "extractive"
    assert "LLM could not answer" in result.note and re.search(r"\[\d\]", result.answer)
    with components.sessions() as session:
        assert "LLM could not answer" in session.get(store.RankingLog, result.ranking_id).error


def test_a_remote_rerank_server_serves_the_pipeline(components, tiny_reranker: Path, monkeypatch) -> None:
    """RERANK_URL: the bot reranks through `ragbot rerank-server`'s app over HTTP, same protocol, same scores."""
    from rerank import DynamicBatcher, Qwen3Reranker
    from rerank.server import create_rerank_app
    from tests.rerank.test_server import RunningRerankServer

    engine = Qwen3Reranker(str(tiny_reranker), device="cpu")
    server = RunningRerankServer(create_rerank_app(lambda: DynamicBatcher(engine), "tiny"))
    try:
        components.settings.rerank_url = server.url  # before the reranker is loaded from the settings
        remote = components.answers.ask("How do I set up SCIM provisioning?")
        assert remote.rerank == "ok" and remote.reranker.startswith(server.url)
        passages = [rc.candidate.passage() for rc in remote.candidates]
        local = engine.score("How do I set up SCIM provisioning?", passages, remote.preset.instruction)
        remote_scores = [rc.rerank_score for rc in remote.candidates]
        assert remote_scores == pytest.approx(local, abs=1e-5)
    finally:
        server.stop()


def test_a_rerank_server_that_goes_away_and_a_slow_llm_still_give_answers(
    components, tiny_reranker: Path, llm_server: str
) -> None:
    """Faults at two boundaries, caused for real: the LLM answers after LLM_TIMEOUT, then the rerank server's
    port closes. Each answer still goes out, and says what it did without."""
    from rerank import DynamicBatcher, Qwen3Reranker
    from rerank.server import create_rerank_app
    from tests.fake_openai import FakeOpenAI
    from tests.rerank.test_server import RunningRerankServer

    engine = Qwen3Reranker(str(tiny_reranker), device="cpu")
    server = RunningRerankServer(create_rerank_app(lambda: DynamicBatcher(engine), "tiny"))
    components.settings.rerank_url = server.url
    components.settings.llm_base_url, components.settings.llm_timeout = llm_server, 1
    FakeOpenAI.delay = 4.0
    try:
        slow = components.answers.ask("How do I set up SCIM provisioning?")
        assert slow.rerank == "ok" and slow.answer_writer == "extractive" and "LLM could not answer" in slow.note
    finally:
        server.stop()
    FakeOpenAI.delay = 0.0
    gone = components.answers.ask("How do I set up SCIM provisioning?")
    assert gone.status == "ok" and gone.rerank.startswith("skipped: reranker failed")
    assert [rc.candidate.retrieval_rank for rc in gone.candidates][:3] == [1, 2, 3]
    with components.sessions() as session:
        assert session.get(store.RankingLog, gone.ranking_id).rerank_status == gone.rerank
