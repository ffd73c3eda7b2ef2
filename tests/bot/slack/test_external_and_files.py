"""Slack Connect and files, through the real endpoint: a user of another organisation gets a polite refusal
(logged once, even when Slack retries) unless SLACK_ALLOW_EXTERNAL or the channel's preset lets them in; a
question with files is answered from its text and says the files were not read; files alone get a reply."""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import select

import store
from bot.slack.inbound import EXTERNAL_REFUSAL
from tests.bot.slack.conftest import RunningServer, mention, running_service
from tests.fake_slack import FakeSlack

TS = "1700000001.000100"


def shared_channel_event(server: RunningServer, event: dict[str, Any], event_id: str = "Ev1", **kwargs: Any) -> None:
    """An event from a Slack Connect channel: the envelope says the channel is shared with another org."""
    response = server.event(event, event_id, envelope={"is_ext_shared_channel": True}, **kwargs)
    assert response.status_code == 200


def external_mention(text: str = "how do I configure SAML with Okta?", **extra: Any) -> dict[str, Any]:
    return mention(text, user="U0EXTERN", user_team="T2PARTNER", source_team="T2PARTNER", **extra)


def refusals(server: RunningServer) -> list[store.SlackRefusal]:
    with server.parts.sessions() as session:
        return list(session.scalars(select(store.SlackRefusal)))


def jobs(server: RunningServer) -> list[store.AnswerJob]:
    with server.parts.sessions() as session:
        return list(session.scalars(select(store.AnswerJob).order_by(store.AnswerJob.id)))


def answered(fake: FakeSlack, count: int = 1) -> list[Any]:
    deadline = time.time() + 60
    while len(posted := [c for c in fake.calls_to("chat.postMessage") if c.args.get("blocks")]) < count:
        assert time.time() < deadline, "no answer"
        time.sleep(0.05)
    return posted


def contexts(blocks: list[dict[str, Any]]) -> list[str]:
    return [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]


def test_an_external_users_mention_is_refused_once_and_logged(slack, fake_slack, caplog) -> None:
    caplog.set_level(logging.INFO, logger="bot.slack.listeners")
    event = external_mention()
    shared_channel_event(slack, event, "EvX")
    shared_channel_event(slack, event, "EvX", retry_num=1)  # Slack's retry
    shared_channel_event(slack, {**event, "type": "message", "channel_type": "channel"}, "EvY")  # as a message
    [refusal] = fake_slack.wait_for("chat.postMessage")
    time.sleep(1.5)  # time enough for a second reply or an answer to show up if there were one
    assert [c.args["text"] for c in fake_slack.calls_to("chat.postMessage")] == [EXTERNAL_REFUSAL]
    assert (refusal.args["channel"], refusal.args["thread_ts"]) == ("C0SALES01", TS)
    [logged] = refusals(slack)
    assert (logged.reason, logged.channel, logged.user, logged.user_team) == (
        "external",
        "C0SALES01",
        "U0EXTERN",
        "T2PARTNER",
    )
    assert logged.question == "how do I configure SAML with Okta?"
    assert jobs(slack) == [] and fake_slack.calls_to("reactions.add") == []
    assert any("T2PARTNER" in r.getMessage() and "Refused" in r.getMessage() for r in caplog.records)


def test_members_of_this_workspace_in_a_shared_channel_are_answered(slack, fake_slack) -> None:
    shared_channel_event(slack, mention("how do I configure SAML with Okta?", user_team="T1"), "EvHome")
    [answer] = answered(fake_slack)
    assert answer.args["thread_ts"] == TS and refusals(slack) == []


def test_slack_allow_external_lets_other_organisations_in(env, monkeypatch, fake_slack, embedder) -> None:
    monkeypatch.setenv("SLACK_ALLOW_EXTERNAL", "true")
    with running_service(monkeypatch, fake_slack, embedder) as server:
        shared_channel_event(server, external_mention(), "EvX")
        [answer] = answered(fake_slack)
        assert answer.args["thread_ts"] == TS
        assert refusals(server) == [] and [j.user for j in jobs(server)] == ["U0EXTERN"]


def test_a_preset_that_allows_external_users_lets_them_in(slack, fake_slack) -> None:
    with slack.parts.sessions.begin() as session:
        store.preset_for(session, "C0SALES01").allow_external = True
    shared_channel_event(slack, external_mention(), "EvX")
    answered(fake_slack)
    assert refusals(slack) == []


def test_a_question_with_files_is_answered_from_its_text_and_names_the_unread_files(slack, fake_slack) -> None:
    files = [{"id": "F1", "name": "okta-error.png"}, {"id": "F2", "title": "saml-trace.har"}]
    slack.event(mention("why does SAML with Okta fail with this error?", files=files, subtype="file_share"))
    [answer] = answered(fake_slack)
    [note] = [c for c in contexts(answer.args["blocks"]) if "Attachments are not read" in c]
    assert "okta-error.png" in note and "saml-trace.har" in note
    [job] = jobs(slack)
    assert job.attachments == ["okta-error.png", "saml-trace.har"]
    assert job.question == "why does SAML with Okta fail with this error?"


def test_a_question_without_files_has_no_attachment_note(slack, fake_slack) -> None:
    slack.event(mention("why does SAML with Okta fail?"))
    [answer] = answered(fake_slack)
    assert not any("Attachments" in c for c in contexts(answer.args["blocks"]))
    assert jobs(slack)[0].attachments is None


def test_files_without_words_get_a_reply_asking_for_words(slack, fake_slack) -> None:
    dm = {"type": "message", "channel_type": "im", "channel": "D0ALICE", "user": "U0ALICE", "ts": TS}
    slack.event({**dm, "subtype": "file_share", "text": "", "files": [{"id": "F1", "name": "screenshot.png"}]})
    [reply] = fake_slack.wait_for("chat.postMessage")
    assert reply.args["channel"] == "D0ALICE" and reply.args["thread_ts"] == TS
    assert "can't read attachments" in reply.args["text"] and "screenshot.png" in reply.args["text"]
    assert "in words" in reply.args["text"]
    assert jobs(slack) == []


def test_an_external_users_reply_in_a_thread_ragbot_answered_is_not_refused_at_every_message(slack, fake_slack) -> None:
    shared_channel_event(slack, mention("how do I configure SAML with Okta?", user="U0ALICE", user_team="T1"), "EvQ")
    [answer] = answered(fake_slack)
    reply = {
        "type": "message",
        "channel_type": "channel",
        "channel": "C0SALES01",
        "user": "U0EXTERN",
        "user_team": "T2PARTNER",
        "text": "thanks, and what about SCIM?",
        "ts": "1700000001.000300",
        "thread_ts": TS,
    }
    shared_channel_event(slack, reply, "EvR")  # a reply in the thread, no mention: not addressed to ragbot
    time.sleep(1.5)  # time enough for a refusal or an answer to show up if there were one
    assert [c.args.get("blocks") is not None for c in fake_slack.calls_to("chat.postMessage")] == [True]
    assert refusals(slack) == [] and len(jobs(slack)) == 1
    assert answer.args["thread_ts"] == TS
