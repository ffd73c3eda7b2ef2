"""Validly signed payloads that are not what our own messages and modals send (issue 13: "a crafted signed block
action gives a 500"), and documents that try to mention or link through an answer's text, played through the real
HTTP endpoint with signed requests; Web API calls go to the local fake."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

import store
from tests.bot.slack.conftest import mention, running_service
from tests.bot.slack.test_slack_scenarios import _answered, ranking_logs

IGNORED = "Ignored a Slack payload"


def feedback_rows(slack) -> list[store.Feedback]:
    with slack.parts.sessions() as session:
        return list(session.scalars(select(store.Feedback).order_by(store.Feedback.id)))


def press(where: str, action_id: str = "ragbot_feedback_up", value: Any = "1", **overrides: Any) -> dict[str, Any]:
    """A block_actions payload shaped like Slack's, with `overrides` replacing (or, as None, removing) fields."""
    payload = {
        "type": "block_actions",
        "user": {"id": "U0BOB"},
        "team": {"id": "T1"},
        "api_app_id": "A1",
        "trigger_id": "trigger-1",
        "channel": {"id": where},
        "container": {"type": "message", "message_ts": "1700000000.000001", "channel_id": where},
        "message": {"ts": "1700000000.000001", "text": "an answer", "blocks": []},
        "actions": [{"action_id": action_id, "block_id": "ragbot_feedback", "value": value, "type": "button"}],
        "response_url": "http://127.0.0.1:9/unused",
    }
    payload.update(overrides)
    return {k: v for k, v in payload.items() if v is not None}


def wait_for_log(caplog: pytest.LogCaptureFixture, text: str, count: int, timeout: float = 10) -> None:
    """Listeners run after their ack, on Bolt's threads: their warnings may come after the HTTP answer."""
    deadline = time.time() + timeout
    while caplog.text.count(text) < count and time.time() < deadline:
        time.sleep(0.05)
    assert caplog.text.count(text) >= count, caplog.text[-6000:]


def no_errors(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


def test_crafted_block_actions_are_acked_and_ignored_never_a_500(slack, fake_slack, caplog) -> None:
    caplog.set_level(logging.WARNING)
    reply, log = _answered(slack, fake_slack)
    channel = reply.args["channel"]
    crafted = {
        "a value that is not a number": press(channel, value="abc"),
        "an id past 2^63": press(channel, value=str(2**64)),
        "an id of 2^63 exactly": press(channel, value=str(2**63)),
        "a JSON number past 2^63": press(channel, value=2**70),
        "a negative id": press(channel, value="-1"),
        "id zero": press(channel, value="0"),
        "a float": press(channel, value="1.5"),
        "a boolean": press(channel, value=True),
        "non-ASCII digits": press(channel, value="١٢"),
        "no value": press(channel, actions=[{"action_id": "ragbot_feedback_up", "type": "button"}]),
        "a ranking that does not exist": press(channel, value=str(log.id + 1000)),
        "no user": press(channel, value=str(log.id), user=None),
        "a user without an id": press(channel, value=str(log.id), user={"name": "bob"}),
        "a user id that is a list": press(channel, value=str(log.id), user={"id": ["U0BOB"]}),
        "not helpful without a trigger": press(channel, "ragbot_feedback_down", str(log.id), trigger_id=None),
        "feedback buttons: a value without a vote": press(channel, "ragbot_feedback", str(log.id)),
        "feedback buttons: an unknown vote": press(channel, "ragbot_feedback", f"maybe:{log.id}"),
        "feedback buttons: a vote for no id": press(channel, "ragbot_feedback", "helpful:"),
        "feedback buttons: a vote past 2^63": press(channel, "ragbot_feedback", f"helpful:{2**64}"),
        "feedback buttons: a value that is a number": press(channel, "ragbot_feedback", log.id),
        "feedback buttons: 👎 without a trigger": press(
            channel, "ragbot_feedback", f"not_helpful:{log.id}", trigger_id=None
        ),
        "share past 2^63": press(channel, "ragbot_share", str(2**64)),
        "share without a channel": press(channel, "ragbot_share", str(log.id), channel=None),
        "share without a response_url": press(channel, "ragbot_share", str(log.id), response_url=None),
    }
    for case, payload in crafted.items():
        response = slack.interaction(payload)
        assert response.status_code == 200, (case, response.status_code, response.text)
    wait_for_log(caplog, IGNORED, len(crafted))
    no_errors(caplog)
    assert feedback_rows(slack) == []
    assert fake_slack.calls_to("chat.update") == [] and fake_slack.calls_to("views.open") == []
    assert len(fake_slack.calls_to("chat.postMessage")) == 1  # the answer; nothing was shared

    # Bolt's own readers need `actions[0]`: a payload without one is refused before any listener runs
    for actions in ([], ["x"], "x"):
        response = slack.interaction(press(channel, actions=actions))
        assert 400 <= response.status_code < 500, (actions, response.status_code)

    # a message without its blocks still takes the vote; only the buttons cannot be swapped
    weird_message = press(channel, value=str(log.id), message={"ts": ["x"], "blocks": "none"})
    assert slack.interaction(weird_message).status_code == 200
    deadline = time.time() + 10
    while not feedback_rows(slack) and time.time() < deadline:
        time.sleep(0.05)
    assert [(f.ranking_id, f.user, f.value) for f in feedback_rows(slack)] == [(log.id, "U0BOB", 1)]
    no_errors(caplog)


def submission(metadata: str | None, user: str = "U0BOB", comment: Any = "It cites the wrong plan") -> dict:
    view: dict[str, Any] = {
        "id": "V1",
        "type": "modal",
        "callback_id": "ragbot_feedback_comment",
        "state": {"values": {"comment": {"text": {"type": "plain_text_input", "value": comment}}}},
    }
    if metadata is not None:
        view["private_metadata"] = metadata
    return {"type": "view_submission", "user": {"id": user}, "team": {"id": "T1"}, "api_app_id": "A1", "view": view}


def test_crafted_view_submissions_are_acked_and_store_nothing(slack, fake_slack, caplog) -> None:
    caplog.set_level(logging.WARNING)
    reply, log = _answered(slack, fake_slack)
    assert slack.interaction(press(reply.args["channel"], "ragbot_feedback_down", str(log.id))).status_code == 200
    [opened] = fake_slack.wait_for("views.open")
    metadata = opened.args["view"]["private_metadata"]
    [vote] = feedback_rows(slack)
    crafted = {
        "metadata that is not JSON": submission("nope"),
        "no metadata": submission(None),
        "metadata that is a list": submission("[1]"),
        "deeply nested metadata": submission("[" * 50_000 + "]" * 50_000),
        "an id past 2^63": submission(json.dumps({"feedback_id": 2**70})),
        "an id that is a string": submission(json.dumps({"feedback_id": "1; DROP TABLE feedback"})),
        "an id that is a float": submission(json.dumps({"feedback_id": 1.0})),
        "no such feedback": submission(json.dumps({"feedback_id": vote.id + 1000})),
        "someone else's feedback": submission(metadata, user="U0EVE"),
    }
    for case, payload in crafted.items():
        response = slack.interaction(payload)
        assert response.status_code == 200, (case, response.status_code, response.text)
    wait_for_log(caplog, IGNORED, len(crafted))
    # a comment that is not text counts as no comment
    assert slack.interaction(submission(metadata, comment={"x": 1})).status_code == 200
    time.sleep(0.5)
    no_errors(caplog)
    assert [f.comment for f in feedback_rows(slack)] == [None]

    # the asker's own comment is stored, cut to the modal's own limit
    assert slack.interaction(submission(metadata, comment="x" * 5000)).status_code == 200
    deadline = time.time() + 10
    while not feedback_rows(slack)[0].comment and time.time() < deadline:
        time.sleep(0.05)
    assert feedback_rows(slack)[0].comment == "x" * 2000


def test_crafted_events_and_commands_are_acked_and_ignored(slack, fake_slack, caplog) -> None:
    caplog.set_level(logging.WARNING)
    crafted_events = {
        "no channel": {k: v for k, v in mention("What is SCIM?").items() if k != "channel"},
        "a ts that is a number": mention("What is SCIM?", ts=1700000001.5),
        "a channel that is a dict": mention("What is SCIM?", channel={"id": "C1"}),
    }
    for n, (case, event) in enumerate(crafted_events.items()):
        response = slack.event(event, event_id=f"EvCrafted{n}")
        assert response.status_code == 200, (case, response.status_code, response.text)
    wait_for_log(caplog, IGNORED, len(crafted_events))
    odd_text = {**mention("x", ts="1700000009.000100"), "text": ["not", "text"]}  # no question: says how to ask
    assert slack.event(odd_text, event_id="EvOddText").status_code == 200
    [usage] = fake_slack.wait_for("chat.postMessage")
    assert "Ask me a question" in usage.args["text"]

    # a slash command as JSON (Slack sends form fields, always strings)
    for fields in ({"text": 5}, {"text": "What is SCIM?"}, {"text": "What is SCIM?", "response_url": ["x"]}):
        body = json.dumps({"command": "/ask", "user_id": "U0ALICE", "channel_id": "C1", **fields})
        response = slack.post(body, "application/json")
        assert response.status_code == 200, (fields, response.status_code, response.text)
    time.sleep(0.5)
    no_errors(caplog)
    with slack.parts.sessions() as session:
        assert session.scalars(select(store.AnswerJob)).all() == []


@pytest.fixture
def slack_in_retrieval_order(env, monkeypatch: pytest.MonkeyPatch, fake_slack, embedder) -> Iterator[Any]:
    """The Slack service with its reranker unreachable (a closed port), so answers quote passages in retrieval
    order: the test's random-weight reranker would pick any of them."""
    monkeypatch.setenv("RERANK_URL", "http://127.0.0.1:9")
    with running_service(monkeypatch, fake_slack, embedder) as server:
        yield server


def test_a_documents_mentions_and_links_stay_text_in_the_answer(slack_in_retrieval_order, fake_slack, tmp_path) -> None:
    """A document that says `<!channel>` and hides a link behind friendly words: the extractive answer quotes it,
    and neither the blocks nor the `text` fallback (what notifications show) carry a live mention or link."""
    slack = slack_in_retrieval_order
    from retrieval import ingest_path

    docs = tmp_path / "hostile"
    docs.mkdir()
    (docs / "zorblax.md").write_text(
        "# Zorblax escalation\n\n"
        "The zorblax escalation policy: ping <!channel> and <!here> and <@U0CEO>, then sign in at "
        "<https://evil.example/login|the official zorblax escalation guide> right away.\n",
        encoding="utf-8",
    )
    parts = slack.parts
    summary = ingest_path(docs, parts.index, parts.embedders, parts.settings.ragbot_collection)
    assert summary.added and not summary.failed

    slack.event(mention("What is the zorblax escalation policy?"))
    [reply] = fake_slack.wait_for("chat.postMessage")
    text = reply.args["text"]
    assert "zorblax escalation policy" in text  # the hostile sentence was quoted
    for live in ("<!channel>", "<!here>", "<@U0CEO>", "<https://evil.example"):
        assert live not in text
        assert live not in json.dumps(reply.args["blocks"], ensure_ascii=False)
    # shown as typed (the sentence splitter cuts `<!channel>` at its "!"; the unit test in test_blocks has it whole)
    assert "&lt;@U0CEO&gt;" in text and "&lt;https://evil.example/login|" in text
    assert ranking_logs(slack)[-1].status == "ok"
