"""Streamed answers and follow-ups through the answer service (issue 14): the real pipeline over the sample
knowledge base (fixtures in tests/conftest.py) and an OpenAI-compatible server on a local port that streams
(tests/fake_openai.py). What a surface is told while an answer is written, what the LLM is sent for a follow-up,
and what the ranking log keeps."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

import store
from bot.answering import AnswerProgress, AnswerStatus, RerankRequiredError, Turn
from bot.answering.writers import REWRITE_PROMPT, SYSTEM_PROMPT
from tests.fake_openai import FakeOpenAI, stream_pieces

SSO = "Can we integrate single sign-on for this customer?"
REWRITE = "Which identity providers does single sign-on support?"
FOLLOW_UP = "Does it work with Okta?"
HISTORY = [Turn("user", SSO), Turn("assistant", "SSO needs the Business plan [1].")]
# Cites its second passage first: the stream must show it as [1], as the final answer does.
REPLY = "Okta is supported [2]; SSO needs the Business plan [1] [2]. Azure AD [9] works too [3]."


class Heard(AnswerProgress):
    """Everything a surface is told, in order, with when."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        self.times: list[float] = []

    def _hear(self, stage: str, value: object = None) -> None:
        self.events.append((stage, value))
        self.times.append(time.monotonic())

    def searching(self, question: str) -> None:
        self._hear("searching", question)

    def reading(self, passages: int) -> None:
        self._hear("reading", passages)

    def writing(self) -> None:
        self._hear("writing")

    def text(self, delta: str) -> None:
        self._hear("text", delta)

    def stages(self) -> list[str]:
        return [stage for stage, _ in self.events if stage != "text"]

    def pieces(self) -> list[str]:
        return [str(value) for stage, value in self.events if stage == "text"]


def no_space(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.fixture
def pipeline(components, tmp_path: Path):
    """The pipeline without a reranker (answers in retrieval order, as test_not_found does): quick, and what is
    searched decides what is answered."""
    components.settings.rerank_model = str(tmp_path / "no-such-model")
    return components


@pytest.fixture
def with_llm(pipeline, llm_server: str):
    """The pipeline writing with the local OpenAI-compatible server (set before the answer service is built)."""
    pipeline.settings.llm_base_url, pipeline.settings.llm_timeout = llm_server, 5
    FakeOpenAI.replies = {REWRITE_PROMPT[:40]: REWRITE}
    return pipeline


def logged(components, ranking_id: int | None) -> store.RankingLog:
    assert ranking_id is not None
    with components.sessions() as session:
        row = session.get(store.RankingLog, ranking_id)
        session.expunge(row)
        return row


def answer_requests() -> list[dict]:
    return [r["body"] for r in FakeOpenAI.requests if r["body"]["messages"][0]["content"] == SYSTEM_PROMPT]


def rewrite_requests() -> list[dict]:
    return [r["body"] for r in FakeOpenAI.requests if r["body"]["messages"][0]["content"] == REWRITE_PROMPT]


# -- streaming -------------------------------------------------------------------------------------------------------


def test_progress_hears_the_stages_then_the_answer_piece_by_piece(with_llm, monkeypatch) -> None:
    monkeypatch.setattr(FakeOpenAI, "reply", REPLY)
    FakeOpenAI.piece_delay = 0.05
    heard = Heard()
    result = with_llm.answers.ask(SSO, progress=heard)
    assert result.status is AnswerStatus.OK and result.answer_writer.startswith("llm:")
    assert result.answer == "Okta is supported [1]; SSO needs the Business plan [2] [1]. Azure AD works too [3]."
    assert heard.stages() == ["searching", "reading", "writing"]
    assert heard.events[0] == ("searching", SSO) and heard.events[1] == ("reading", len(result.candidates))
    assert [stage for stage, _ in heard.events[3:]] == ["text"] * (len(heard.events) - 3)
    pieces = heard.pieces()
    assert len(pieces) >= len(stream_pieces(REPLY)) - 3  # the markers' pieces may be held and shown together
    assert no_space("".join(pieces)) == no_space(result.answer)
    assert "".join(pieces).index("[1]") < "".join(pieces).index("[2]")  # numbered as the final answer, as it came
    # Shown as it came, not all at the end: the pieces arrived over the server's delays.
    text_times = [t for (stage, _), t in zip(heard.events, heard.times, strict=True) if stage == "text"]
    assert text_times[-1] - text_times[0] >= 0.05 * (len(stream_pieces(REPLY)) - 1) * 0.5
    [request] = answer_requests()
    assert request["stream"] is True and rewrite_requests() == []


def test_a_stream_broken_off_gives_the_extractive_answer_with_a_note(with_llm) -> None:
    FakeOpenAI.break_stream_after = 3
    heard = Heard()
    result = with_llm.answers.ask(SSO, progress=heard)
    assert result.status is AnswerStatus.OK and result.answer_writer == "extractive"
    assert "LLM could not answer" in (result.note or "") and "LLMStreamBroken" in result.note
    assert re.search(r"\[\d\]", result.answer) and result.citations
    assert len(heard.pieces()) >= 1  # what came before the break was shown; the answer replaces it
    row = logged(with_llm, result.ranking_id)
    assert row.status == "ok" and "LLMStreamBroken" in (row.error or "") and row.answer == result.answer


def test_the_answer_is_streamed_only_for_a_caller_that_shows_the_text(with_llm) -> None:
    """The CLI and the evaluation do not listen: their answer is one completion, which cannot break off midway."""
    FakeOpenAI.break_stream_after = 3  # would cost a streamed answer its LLM text
    for progress in (None, AnswerProgress()):
        result = with_llm.answers.ask(SSO, progress=progress)
        assert result.answer_writer.startswith("llm:") and result.note is None
        assert result.answer == "SSO needs the Business plan [1]; Okta is supported [2]."
    assert [bool(body.get("stream")) for body in answer_requests()] == [False, False]


def test_without_an_llm_progress_hears_the_stages_and_no_text(pipeline) -> None:
    heard = Heard()
    result = pipeline.answers.ask(SSO, progress=heard)
    assert result.status is AnswerStatus.OK and result.answer_writer == "extractive"
    assert heard.stages() == ["searching", "reading", "writing"] and heard.pieces() == []


def test_a_question_not_found_is_not_written(pipeline) -> None:
    heard = Heard()
    result = pipeline.answers.ask("What is the capital of France?", progress=heard)
    assert result.status is AnswerStatus.NO_ANSWER
    assert heard.stages() == ["searching", "reading"]


@pytest.mark.parametrize("failing", ["searching", "reading", "writing", "text"])
def test_a_progress_method_that_raises_does_not_cost_the_answer(with_llm, failing: str) -> None:
    class Broken(Heard):
        def _hear(self, stage: str, value: object = None) -> None:
            super()._hear(stage, value)
            if stage == failing:
                raise RuntimeError(f"the surface could not show {stage}")

    heard = Broken()
    result = with_llm.answers.ask(SSO, progress=heard)
    assert result.status is AnswerStatus.OK and result.answer_writer.startswith("llm:") and result.note is None
    assert result.answer == "SSO needs the Business plan [1]; Okta is supported [2]."
    assert heard.stages() == ["searching", "reading", "writing"]  # each stage still reported after one failed
    assert no_space("".join(heard.pieces())) == no_space(result.answer)  # every piece still offered
    assert logged(with_llm, result.ranking_id).status == "ok"


# -- follow-ups ------------------------------------------------------------------------------------------------------


def test_a_follow_up_is_rewritten_searched_and_answered_with_the_conversation(with_llm) -> None:
    heard = Heard()
    result = with_llm.answers.ask(FOLLOW_UP, history=HISTORY, progress=heard)
    assert result.status is AnswerStatus.OK and result.answer_writer.startswith("llm:")
    assert (result.question, result.asked) == (REWRITE, FOLLOW_UP)
    assert heard.events[0] == ("searching", REWRITE)
    [rewrite] = rewrite_requests()
    conversation = rewrite["messages"][-1]["content"]
    assert all(turn.text in conversation for turn in HISTORY) and FOLLOW_UP in conversation
    assert "stream" not in rewrite or not rewrite["stream"]
    [answer] = answer_requests()
    assert [(m["role"], m["content"]) for m in answer["messages"][1:3]] == [(t.role, t.text) for t in HISTORY]
    assert answer["messages"][-1]["role"] == "user" and answer["messages"][-1]["content"].endswith(REWRITE)
    assert len(answer["messages"]) == 4
    row = logged(with_llm, result.ranking_id)
    assert (row.asked, row.question, row.status) == (FOLLOW_UP, REWRITE, "ok")


@pytest.mark.parametrize(
    "rewrite",
    [503, 400, "", "x" * 5000],
    ids=["server-error", "bad-request", "empty", "too-long"],
)
def test_a_failed_rewrite_searches_the_joined_question_and_still_answers(with_llm, rewrite: str | int) -> None:
    FakeOpenAI.replies = {REWRITE_PROMPT[:40]: rewrite}
    result = with_llm.answers.ask(FOLLOW_UP, history=HISTORY)
    joined = f"{SSO}\n{FOLLOW_UP}"
    assert result.status is AnswerStatus.OK and result.answer_writer.startswith("llm:") and result.note is None
    assert (result.question, result.asked) == (joined, FOLLOW_UP)
    assert len(rewrite_requests()) == 1  # asked once: the search waits for it, and the joined question will do
    [answer] = answer_requests()
    assert answer["messages"][-1]["content"].endswith(joined) and len(answer["messages"]) == 4
    row = logged(with_llm, result.ranking_id)
    assert (row.asked, row.question) == (FOLLOW_UP, joined)


def test_without_an_llm_a_follow_up_is_searched_with_the_threads_questions(pipeline) -> None:
    result = pipeline.answers.ask(FOLLOW_UP, history=[*HISTORY, Turn("user", "And on the Starter plan?")])
    joined = f"{SSO}\nAnd on the Starter plan?\n{FOLLOW_UP}"  # the assistant's turn is not searched
    assert result.status is AnswerStatus.OK and (result.question, result.asked) == (joined, FOLLOW_UP)
    row = logged(pipeline, result.ranking_id)
    assert (row.asked, row.question) == (FOLLOW_UP, joined)


def test_a_question_without_history_logs_no_asked_and_is_not_rewritten(with_llm) -> None:
    result = with_llm.answers.ask(f"  {SSO}  ")
    assert result.question == SSO and result.asked is None
    row = logged(with_llm, result.ranking_id)
    assert row.question == SSO and row.asked is None
    assert rewrite_requests() == [] and len(answer_requests()) == 1


def test_history_of_ragbots_answers_only_is_searched_as_asked(pipeline) -> None:
    """Nothing the user said before: the joined question is the follow-up itself, and `asked` stays empty."""
    result = pipeline.answers.ask(SSO, history=[Turn("assistant", "Hi! Ask me about the product.")])
    assert result.question == SSO and result.asked is None
    assert logged(pipeline, result.ranking_id).asked is None


def test_a_failed_follow_up_logs_both_forms(pipeline) -> None:
    with pytest.raises(RerankRequiredError) as raised:
        pipeline.answers.ask(FOLLOW_UP, history=HISTORY, require_rerank=True)
    row = logged(pipeline, raised.value.ranking_id)
    assert row.status == "error" and (row.asked, row.question) == (FOLLOW_UP, f"{SSO}\n{FOLLOW_UP}")
