"""Streamed answers in channel threads, through the real endpoint with an OpenAI-compatible LLM that streams:
the stream ends with the sources and feedback buttons, and every way streaming can fail (Slack refusing to start
it, a failed append or stop, an update that fails too, an LLM that breaks off) still leaves exactly one visible
answer in the thread."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

import store
from bot.slack.streaming import thread_title
from tests.bot.slack.conftest import RunningServer, mention
from tests.fake_openai import FakeOpenAI

THREAD = "1700000001.000100"  # the mention's ts: the answer's thread
LONG_REPLY = (
    "Single sign-on with SAML needs the Business plan [1]. In Okta, add the app from the catalogue, paste the "
    "metadata URL from the admin console and assign the people who need it [2]. Test the login with one account "
    "before you enforce it for everyone, and keep one admin who can still sign in with a password [1]."
)


@pytest.fixture
def llm_slack(llm_slack: RunningServer, monkeypatch) -> RunningServer:
    """The conftest's LLM-backed service, its LLM answering long enough to stream in several pieces."""
    monkeypatch.setattr(FakeOpenAI, "reply", LONG_REPLY)
    return llm_slack


def ask(server: RunningServer, fake, question: str = "How do I set up SAML with Okta?") -> None:
    assert server.event(mention(question)).status_code == 200
    fake.wait_for("reactions.remove")  # the answer is out (or the asker was told)


def posted_answers(fake) -> list[dict[str, Any]]:
    return [c.args for c in fake.calls_to("chat.postMessage") if c.args.get("thread_ts") == THREAD]


def visible(fake) -> list[tuple[str, list[dict[str, Any]]]]:
    """What the thread shows from ragbot: each streamed message as it ended (or was replaced), then each posted
    message, as (text, blocks)."""
    streams = [(s.text, s.blocks or []) for s in fake.streams.values() if s.thread_ts == THREAD]
    return streams + [(a.get("text") or "", a.get("blocks") or []) for a in posted_answers(fake)]


def carries_sources_and_feedback(blocks: list[dict[str, Any]], ranking_id: int) -> bool:
    text = json.dumps(blocks)
    buttons = [b for b in blocks if b["type"] == "context_actions"]
    return (
        "*Sources*" in text
        and len(buttons) == 1
        and buttons[0]["elements"][0]["negative_button"]["value"] == f"not_helpful:{ranking_id}"
    )


def ranking(server: RunningServer) -> store.RankingLog:
    with server.parts.sessions() as session:
        [row] = session.scalars(select(store.RankingLog))
        return row


def test_a_channel_answer_streams_and_stops_with_its_sources_and_feedback(llm_slack, fake_slack) -> None:
    ask(llm_slack, fake_slack)
    [started] = fake_slack.calls_to("chat.startStream")
    assert started.args["thread_ts"] == THREAD and started.args["channel"] == "C0SALES01"
    assert (started.args["recipient_user_id"], started.args["recipient_team_id"]) == ("U0ALICE", "T1")
    assert fake_slack.calls_to("chat.appendStream")  # the text went out piece by piece
    [stopped] = fake_slack.calls_to("chat.stopStream")
    stream = fake_slack.streams[stopped.args["ts"]]
    assert not stream.streaming and not stream.updated
    assert "".join(stream.text.split()) == "".join(ranking(llm_slack).answer.split())  # the final answer
    assert carries_sources_and_feedback(stream.blocks, ranking(llm_slack).id)
    assert not any(b["type"] == "markdown" for b in stream.blocks)  # the text is not shown twice
    assert posted_answers(fake_slack) == [] and fake_slack.calls_to("chat.update") == []
    assert fake_slack.calls_to("assistant.threads.setStatus") == []  # statuses are for the pane
    assert len(fake_slack.calls_to("reactions.add")) == 1  # the 👀 sign stays in channels


def test_a_workspace_that_cannot_stream_gets_the_answer_posted_whole(llm_slack, fake_slack) -> None:
    fake_slack.errors["chat.startStream"] = "not_allowed"
    ask(llm_slack, fake_slack)
    assert len(fake_slack.calls_to("chat.startStream")) == 1  # tried once, not for every piece
    assert fake_slack.calls_to("chat.appendStream") == [] and fake_slack.calls_to("chat.stopStream") == []
    [answer] = posted_answers(fake_slack)
    assert answer["blocks"][0]["type"] == "markdown" and "Business plan" in answer["blocks"][0]["text"]
    assert carries_sources_and_feedback(answer["blocks"], ranking(llm_slack).id)


@pytest.mark.parametrize("failing", [["chat.appendStream"], ["chat.stopStream"], ["chat.stopStream", "chat.update"]])
def test_a_stream_that_fails_midway_still_ends_as_exactly_one_answer_with_sources(
    llm_slack, fake_slack, failing: list[str]
) -> None:
    for method in failing:
        fake_slack.errors[method] = "internal_error"
    ask(llm_slack, fake_slack)
    assert len(fake_slack.calls_to("chat.startStream")) == 1
    row = ranking(llm_slack)
    answers = [(text, blocks) for text, blocks in visible(fake_slack) if carries_sources_and_feedback(blocks, row.id)]
    assert len(answers) == 1  # exactly one answer carries the sources and the buttons
    [(_text, blocks)] = answers
    assert blocks[0] == {"type": "markdown", "text": row.answer}  # the whole answer, not the streamed part
    if "chat.update" in failing:
        assert len(posted_answers(fake_slack)) == 1  # posted whole as the last resort
    else:
        [update] = fake_slack.calls_to("chat.update")  # the streamed message became the answer
        assert fake_slack.streams[update.args["ts"]].updated and posted_answers(fake_slack) == []


def test_a_stream_the_llm_breaks_off_ends_with_the_extractive_answer_and_its_note(llm_slack, fake_slack) -> None:
    FakeOpenAI.break_stream_after = 6  # six pieces, then the connection ends without a finish
    ask(llm_slack, fake_slack)
    assert len(fake_slack.calls_to("chat.startStream")) == 1
    [update] = fake_slack.calls_to("chat.update")
    stream = fake_slack.streams[update.args["ts"]]  # the streamed message, replaced
    assert stream.updated and not stream.streaming
    row = ranking(llm_slack)
    assert "The LLM could not answer" in (row.error or "")
    assert stream.blocks[0] == {"type": "markdown", "text": row.answer}  # the extractive answer replaced it
    assert "Business plan [1]. In Okta" not in row.answer  # not the broken-off LLM text
    notes = [b["elements"][0]["text"] for b in stream.blocks if b["type"] == "context"]
    assert any("The LLM could not answer" in note and "extractive answer" in note for note in notes)
    assert carries_sources_and_feedback(stream.blocks, row.id)
    assert posted_answers(fake_slack) == []


def test_an_answer_too_long_for_one_message_replaces_its_stream_and_continues_below(
    llm_slack, fake_slack, monkeypatch
) -> None:
    monkeypatch.setattr(FakeOpenAI, "reply", " ".join([LONG_REPLY] * 45))  # about 16,000 characters
    ask(llm_slack, fake_slack)
    row = ranking(llm_slack)
    [update] = fake_slack.calls_to("chat.update")  # the streamed message holds the first part ...
    stream = fake_slack.streams[update.args["ts"]]
    assert stream.updated and [b["type"] for b in stream.blocks] == ["markdown"]
    assert len(stream.blocks[0]["text"]) <= 12_000 and row.answer.startswith(stream.blocks[0]["text"][:200])
    [rest] = posted_answers(fake_slack)  # ... and the rest follows with the sources and buttons
    assert rest["blocks"][0]["type"] == "markdown" and carries_sources_and_feedback(rest["blocks"], row.id)
    streamed = sum(len(c.args.get("markdown_text") or "") for c in fake_slack.calls_to("chat.appendStream"))
    assert streamed <= 12_000  # the stream stopped growing at one message's limit


def test_a_thread_title_is_one_short_line() -> None:
    assert thread_title("How do I\nset up SSO?") == "How do I set up SSO?"
    long = thread_title("word " * 40)
    assert len(long) <= 60 and long.endswith("…") and not long.endswith(" …")
