"""Conversations in threads, through the real endpoint: once ragbot has answered in a thread, a follow-up there is
answered without a new mention, with the whole thread (users' turns and ragbot's own answers) as its conversation."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

import store
from tests.bot.slack.conftest import RunningServer, mention
from tests.fake_openai import FakeOpenAI, is_rewrite_request
from tests.fake_slack import BOT_ID, BOT_USER_ID, FakeSlack

CHANNEL = "C0SALES01"
PARENT = "1700000500.000100"
FIRST = "how do I configure SAML with Okta?"
FOLLOW_UP = "and how do we rotate the certificate?"


def ranking_logs(server: RunningServer) -> list[store.RankingLog]:
    with server.parts.sessions() as session:
        return list(session.scalars(select(store.RankingLog).order_by(store.RankingLog.id)))


def answers(fake: FakeSlack) -> list[Any]:
    """Answers given, posted or (with the LLM) streamed."""
    return fake.answers()


def wait_for_answers(fake: FakeSlack, count: int, timeout: float = 60.0) -> list[Any]:
    deadline = time.time() + timeout
    while len(answers(fake)) < count:
        assert time.time() < deadline, f"{len(answers(fake))} answers, expected {count}"
        time.sleep(0.05)
    return answers(fake)


def thread_reply(text: str, ts: str, thread_ts: str = PARENT, channel: str = CHANNEL, **extra: Any) -> dict[str, Any]:
    """A message in a thread, as the `message` event of a channel (or, with a D channel, of a DM)."""
    channel_type = "im" if channel.startswith("D") else "channel"
    return {
        "type": "message",
        "channel_type": channel_type,
        "channel": channel,
        "user": "U0ALICE",
        "text": text,
        "ts": ts,
        "thread_ts": thread_ts,
        "event_ts": ts,
        **extra,
    }


def answer_the_first_question(server: RunningServer, fake: FakeSlack) -> str:
    """A mention that starts the thread, answered; returns the answer's text as Slack keeps it."""
    server.event(mention(FIRST, ts=PARENT), event_id="EvFirst")
    [answer] = wait_for_answers(fake, 1)
    assert answer.args["thread_ts"] == PARENT
    return answer.args["text"]


def the_thread(answer_text: str, *later: dict[str, Any]) -> list[dict[str, Any]]:
    """The thread as conversations.replies gives it: the question, ragbot's answer, another bot's note, a join,
    then `later` messages."""
    return [
        {"type": "message", "user": "U0ALICE", "text": f"<@{BOT_USER_ID}> {FIRST}", "ts": PARENT},
        {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "text": answer_text, "ts": "1700000500.000200"},
        {
            "type": "message",
            "bot_id": "B0OTHER",
            "subtype": "bot_message",
            "text": "Ticket #42",
            "ts": "1700000500.000300",
        },
        {"type": "message", "subtype": "channel_join", "user": "U0BOB", "text": "joined", "ts": "1700000500.000350"},
        *later,
    ]


def test_a_follow_up_without_a_mention_is_answered_with_the_thread_as_its_conversation(llm_slack, fake_slack) -> None:
    answer_text = answer_the_first_question(llm_slack, fake_slack)
    follow_up_ts, later_ts = "1700000500.000400", "1700000500.000500"
    fake_slack.thread_messages[(CHANNEL, PARENT)] = the_thread(
        answer_text,
        {"type": "message", "user": "U0ALICE", "text": FOLLOW_UP, "ts": follow_up_ts, "thread_ts": PARENT},
        {"type": "message", "user": "U0BOB", "text": "later words", "ts": later_ts, "thread_ts": PARENT},
    )
    FakeOpenAI.rewrite_reply = "How do I rotate the Okta SAML signing certificate?"
    FakeOpenAI.requests.clear()

    assert llm_slack.event(thread_reply(FOLLOW_UP, follow_up_ts), event_id="EvFollow").status_code == 200
    _, reply = wait_for_answers(fake_slack, 2)
    assert reply.args["thread_ts"] == PARENT and reply.args["channel"] == CHANNEL

    bodies = [r["body"] for r in FakeOpenAI.requests]
    [rewrite] = [b for b in bodies if is_rewrite_request(b)]
    [answering] = [b for b in bodies if not is_rewrite_request(b)]
    conversation = answering["messages"][1:-1]  # between the system prompt and the passages with the question
    assert conversation == [{"role": "user", "content": FIRST}, {"role": "assistant", "content": answer_text}]
    assert answering["messages"][-1]["content"].endswith("Question: How do I rotate the Okta SAML signing certificate?")
    rewrite_text = rewrite["messages"][-1]["content"]
    assert f"user: {FIRST}" in rewrite_text and rewrite_text.endswith(f"Last message: {FOLLOW_UP}")
    assert "Ticket #42" not in str(bodies) and "later words" not in str(bodies) and "joined" not in str(bodies)

    _, log = ranking_logs(llm_slack)
    assert (log.question, log.asked) == ("How do I rotate the Okta SAML signing certificate?", FOLLOW_UP)
    assert (log.channel, log.user) == (CHANNEL, "U0ALICE")


def test_without_an_llm_the_earlier_questions_are_joined_and_a_long_thread_is_read_page_by_page(
    slack, fake_slack, monkeypatch
) -> None:
    import bot.slack.threads

    monkeypatch.setattr(bot.slack.threads, "PAGE_SIZE", 2)
    answer_text = answer_the_first_question(slack, fake_slack)
    second = {"type": "message", "user": "U0BOB", "text": "does it work with Azure AD too?", "ts": "1700000500.000600"}
    follow_up_ts = "1700000500.000700"
    fake_slack.thread_messages[(CHANNEL, PARENT)] = the_thread(
        answer_text,
        second,
        {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "text": "Yes [1].", "ts": "1700000500.000650"},
        {"type": "message", "user": "U0ALICE", "text": FOLLOW_UP, "ts": follow_up_ts},
    )

    slack.event(thread_reply(FOLLOW_UP, follow_up_ts), event_id="EvFollow")
    wait_for_answers(fake_slack, 2)
    _, log = ranking_logs(slack)
    assert log.question == f"{FIRST}\ndoes it work with Azure AD too?\n{FOLLOW_UP}"
    assert log.asked == FOLLOW_UP
    pages = fake_slack.calls_to("conversations.replies")
    assert len(pages) == 4 and [p.args.get("cursor") for p in pages] == [None, "2", "4", "6"]


def test_follow_ups_off_in_the_preset_leaves_a_follow_up_to_the_people(slack, fake_slack) -> None:
    answer_the_first_question(slack, fake_slack)
    with slack.parts.sessions.begin() as session:
        store.preset_for(session, CHANNEL).follow_ups = False

    slack.event(thread_reply(FOLLOW_UP, "1700000500.000400"), event_id="EvFollow")
    time.sleep(1.5)  # time enough for an answer to show up if there were one
    assert len(fake_slack.calls_to("chat.postMessage")) == 1 and len(ranking_logs(slack)) == 1
    # a mention in that thread is still answered
    slack.event(mention(FOLLOW_UP, ts="1700000500.000500", thread_ts=PARENT), event_id="EvMention")
    wait_for_answers(fake_slack, 2)


def test_threads_ragbot_never_answered_in_and_replies_to_someone_else_are_not_answered(slack, fake_slack) -> None:
    slack.event(thread_reply("how do refunds work?", "1700000600.000200", "1700000600.000100"), event_id="EvOther")
    answer_the_first_question(slack, fake_slack)
    slack.event(thread_reply("<@U0BOB> can you check?", "1700000500.000400"), event_id="EvBob")
    time.sleep(1.5)
    assert len(fake_slack.calls_to("chat.postMessage")) == 1 and len(ranking_logs(slack)) == 1
    assert fake_slack.calls_to("conversations.replies") == []  # nothing was read either


def test_a_follow_up_delivered_twice_is_answered_once(slack, fake_slack) -> None:
    answer_the_first_question(slack, fake_slack)
    event = thread_reply(FOLLOW_UP, "1700000500.000400")
    assert slack.event(event, event_id="EvFollow").status_code == 200
    assert slack.event(event, event_id="EvFollow", retry_num=1).status_code == 200
    assert slack.event(event, event_id="EvFollowAgain").status_code == 200  # a second delivery, another id
    wait_for_answers(fake_slack, 2)
    time.sleep(1.5)
    assert len(answers(fake_slack)) == 2 and len(ranking_logs(slack)) == 2
    with slack.parts.sessions() as session:
        jobs = list(session.scalars(select(store.AnswerJob).order_by(store.AnswerJob.id)))
    assert [(j.ts, j.thread_ts) for j in jobs] == [(PARENT, PARENT), ("1700000500.000400", PARENT)]


def test_a_dm_thread_carries_its_thread_as_the_conversation(slack, fake_slack) -> None:
    dm, parent = "D0ALICE", "1700000700.000100"
    slack.event(
        {"type": "message", "channel_type": "im", "channel": dm, "user": "U0ALICE", "text": FIRST, "ts": parent},
        event_id="EvDm1",
    )
    [first] = wait_for_answers(fake_slack, 1)
    fake_slack.thread_messages[(dm, parent)] = [
        {"type": "message", "user": "U0ALICE", "text": FIRST, "ts": parent},
        {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "text": first.args["text"], "ts": "1700000700.2"},
    ]
    slack.event(thread_reply(FOLLOW_UP, "1700000700.000300", parent, channel=dm), event_id="EvDm2")
    _, reply = wait_for_answers(fake_slack, 2)
    assert (reply.args["channel"], reply.args["thread_ts"]) == (dm, parent)
    _, log = ranking_logs(slack)
    assert (log.question, log.asked) == (f"{FIRST}\n{FOLLOW_UP}", FOLLOW_UP)
