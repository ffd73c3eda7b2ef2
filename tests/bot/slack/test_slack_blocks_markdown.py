"""Slack's own Markdown and feedback: the answer in `markdown` blocks, 👍/👎 as `feedback_buttons` in a
`context_actions` block (shapes checked against slack_sdk's Block Kit models), and an answer that cites nothing
says so above the passages it was written from."""

from __future__ import annotations

import json

import pytest
from slack_sdk.models.blocks import Block, ContextActionsBlock, FeedbackButtonsElement, MarkdownBlock

import store
from bot.answering import AnswerStatus, AskResult, Citation, PresetSnapshot, RerankStatus
from bot.slack.blocks import UNCITED_HEADING, AnswerView, answer_messages
from tests.bot.slack.conftest import RunningServer, logged_candidate, mention, start_service
from tests.fake_openai import FakeOpenAI

SOURCES = [
    Citation(1, "SSO", "Okta", "https://docs.example/sso", 0.91),
    Citation(2, "Plans", "", "https://docs.example/plans", 0.52),
]


def view(answer: str, **overrides) -> AnswerView:
    fields = {
        "ranking_id": 7,
        "answer": answer,
        "status": "ok",
        "sources": SOURCES,
        "preset": "sales",
        "preset_version": 3,
        "rerank": "ok",
    }
    return AnswerView(**(fields | overrides))


def test_the_answer_and_the_feedback_are_block_kit_that_slack_sdk_reads_back_unchanged() -> None:
    [message] = answer_messages(view("**Yes**: SSO needs the [Business plan](https://docs.example/plans) [1]."))
    markdown, feedback = message.blocks[0], message.blocks[-1]
    assert markdown == {
        "type": "markdown",
        "text": "**Yes**: SSO needs the [Business plan](https://docs.example/plans) [1].",
    }
    parsed = Block.parse(feedback)
    assert isinstance(parsed, ContextActionsBlock) and isinstance(parsed.elements[0], FeedbackButtonsElement)
    for block, kind in ((markdown, MarkdownBlock), (feedback, ContextActionsBlock)):
        model = Block.parse(block)
        assert isinstance(model, kind)
        model.validate_json()  # Slack's limits as slack_sdk knows them
        assert model.to_dict() == block  # no field slack_sdk does not know, none missing
    [buttons] = feedback["elements"]
    assert buttons["positive_button"]["text"] == {"type": "plain_text", "text": "👍"}
    assert buttons["negative_button"]["text"] == {"type": "plain_text", "text": "👎"}
    assert (buttons["positive_button"]["value"], buttons["negative_button"]["value"]) == ("helpful:7", "not_helpful:7")
    # the notification text is the same answer in mrkdwn
    assert message.text == "*Yes*: SSO needs the <https://docs.example/plans|Business plan> [1]."


def test_an_answer_that_cites_nothing_says_so_above_the_passages() -> None:
    def sources_section(v: AnswerView) -> str:
        [message] = answer_messages(v)
        return next(b["text"]["text"] for b in message.blocks if b["type"] == "section")

    uncited = sources_section(view("Configure it in the admin console.", uncited=True))
    assert uncited.splitlines() == [UNCITED_HEADING, *sources_section(view("x [1] [2]")).splitlines()[1:]]
    assert sources_section(view("x [1] [2]")).startswith("*Sources*\n[1] <https://docs.example/sso|SSO › Okta>")


@pytest.mark.parametrize(
    ("answer", "status", "uncited"),
    [
        ("Configure it in the admin console.", AnswerStatus.OK, True),
        ("Configure it in the admin console [2].", AnswerStatus.OK, False),
        ("I could not find a passage that answers this.", AnswerStatus.NO_ANSWER, False),
    ],
)
def test_the_result_says_whether_its_answer_cites_its_sources(answer: str, status: AnswerStatus, uncited: bool) -> None:
    preset = PresetSnapshot(None, "default", 1, "", 20, 3, 0.0, "kb")
    result = AskResult("q", answer, status, SOURCES, [], preset, RerankStatus.done(), None, "llm", None)
    assert result.uncited is uncited
    assert AnswerView.from_result(result).uncited is uncited


def test_a_view_rebuilt_from_the_log_of_an_uncited_answer_lists_what_it_was_written_from() -> None:
    logged = logged_candidate

    candidates = [logged(1, "Okta", 2), logged(2, "Testing", 1), logged(3, "Other", None)]
    log = store.RankingLog(
        id=9,
        answer="Set it up in Okta.",
        status="ok",
        preset_name="default",
        preset_version=1,
        rerank_status="ok",
        candidates=candidates,
    )
    rebuilt = AnswerView.from_log(log)
    assert rebuilt.uncited and [(s.n, s.section) for s in rebuilt.sources] == [(1, "Testing"), (2, "Okta")]
    log.answer = "Set it up in Okta [2]."
    rebuilt = AnswerView.from_log(log)
    assert not rebuilt.uncited and [(s.n, s.section) for s in rebuilt.sources] == [(2, "Okta")]


def test_an_llm_answer_without_citations_says_so_in_slack(
    env, monkeypatch, fake_slack, embedder, llm_server: str
) -> None:
    """Through the real endpoint, with an OpenAI-compatible LLM that cites nothing."""
    monkeypatch.setenv("LLM_BASE_URL", llm_server)
    monkeypatch.setattr(FakeOpenAI, "reply", "Use the admin console to configure single sign-on.")
    parts, service = start_service(monkeypatch, fake_slack, embedder)
    server = RunningServer(service)
    try:
        server.event(mention("how do I configure SAML with Okta?"))
        [stopped] = fake_slack.wait_for("chat.stopStream")  # the LLM's answer streams, then gets its blocks
    finally:
        server.stop()
        parts.close()
    assert FakeOpenAI.requests  # the LLM wrote it
    stream = fake_slack.streams[stopped.args["ts"]]
    assert stream.text == "Use the admin console to configure single sign-on."
    blocks = stream.blocks
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert sections[0].startswith(UNCITED_HEADING + "\n[1] <https://")
    assert "*Sources*" not in json.dumps(blocks)
    assert any(b["type"] == "context_actions" for b in blocks)
