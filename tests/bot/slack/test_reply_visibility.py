"""A preset's reply visibility, through the real endpoint: in a channel whose preset says "ephemeral" the answer
goes to the asker alone (chat.postEphemeral, in the thread when there is one, never streamed), nothing public
shows that ragbot was asked, and its feedback buttons still vote; a "thread" preset answers in public; DMs are
answered as always."""

from __future__ import annotations

import json
import time

from sqlalchemy import select

import store
from tests.bot.slack.conftest import RunningServer, mention
from tests.fake_slack import FakeSlack

CHANNEL = "C0SALES01"
QUESTION_TS = "1700000001.000100"


def make_ephemeral(server: RunningServer, channel: str = CHANNEL) -> None:
    """The preset the channel's questions run with (the default one here) keeps answers to the asker."""
    with server.parts.sessions.begin() as session:
        store.preset_for(session, channel).reply_visibility = "ephemeral"


def ephemeral_answers(fake: FakeSlack, count: int = 1, timeout: float = 60.0) -> list:
    """The ephemeral answers (they carry blocks; the "searching" notice does not), once `count` arrived."""
    deadline = time.time() + timeout
    while True:
        found = [c for c in fake.calls_to("chat.postEphemeral") if c.args.get("blocks")]
        if len(found) >= count or time.time() > deadline:
            assert len(found) == count, f"{len(found)} ephemeral answers, expected {count}"
            return found
        time.sleep(0.05)


def ranking_ids(server: RunningServer) -> list[int]:
    with server.parts.sessions() as session:
        return list(session.scalars(select(store.RankingLog.id).order_by(store.RankingLog.id)))


def test_an_ephemeral_preset_answers_the_asker_alone_in_the_thread_without_streaming(llm_slack, fake_slack) -> None:
    make_ephemeral(llm_slack)
    parent = "1700000000.000050"  # asked in a thread that exists: the answer goes in it
    llm_slack.event(mention("how do I configure SAML with Okta?", ts=QUESTION_TS, thread_ts=parent), event_id="EvEph")
    [answer] = ephemeral_answers(fake_slack)
    assert (answer.args["channel"], answer.args["user"], answer.args["thread_ts"]) == (CHANNEL, "U0ALICE", parent)
    shown = json.dumps(answer.args["blocks"], ensure_ascii=False)
    assert '"feedback_buttons"' in shown and "ragbot_escalate" not in shown
    [notice] = [c for c in fake_slack.calls_to("chat.postEphemeral") if not c.args.get("blocks")]
    assert notice.args["user"] == "U0ALICE" and "Only you will see the answer" in notice.args["text"]
    time.sleep(1.0)  # time enough for anything public to show up if there were any
    assert fake_slack.answers() == []  # nothing posted, nothing streamed in the channel
    assert fake_slack.calls_to("chat.startStream") == [] and fake_slack.calls_to("chat.postMessage") == []
    assert fake_slack.calls_to("reactions.add") == []  # no public 👀 either
    assert len(ranking_ids(llm_slack)) == 1


def test_a_question_that_starts_its_thread_gets_the_ephemeral_answer_in_the_channel(slack, fake_slack) -> None:
    """Slack shows an ephemeral message in a thread only when the thread exists: a top-level mention has none."""
    make_ephemeral(slack)
    slack.event(mention("Which payment methods do you accept?", ts=QUESTION_TS), event_id="EvTop")
    [answer] = ephemeral_answers(fake_slack)
    assert (answer.args["channel"], answer.args["user"]) == (CHANNEL, "U0ALICE") and "thread_ts" not in answer.args
    time.sleep(0.5)
    assert fake_slack.answers() == [] and fake_slack.calls_to("chat.postMessage") == []


def test_a_thread_preset_keeps_answering_in_public(slack, fake_slack) -> None:
    with slack.parts.sessions() as session:
        assert store.preset_for(session, CHANNEL).reply_visibility == "thread"  # the default
    slack.event(mention("Which payment methods do you accept?", ts=QUESTION_TS), event_id="EvPublic")
    [answer] = fake_slack.wait_for("chat.postMessage")
    assert (answer.args["channel"], answer.args["thread_ts"]) == (CHANNEL, QUESTION_TS) and answer.args["blocks"]
    assert fake_slack.calls_to("chat.postEphemeral") == []
    assert fake_slack.calls_to("reactions.add")  # the 👀 as always


def test_a_dm_is_answered_as_always_under_an_ephemeral_preset(slack, fake_slack) -> None:
    dm = "D0ALICE"
    make_ephemeral(slack, dm)  # the DM's preset (the default) says ephemeral: a DM is private already
    event = {"type": "message", "channel_type": "im", "channel": dm, "user": "U0ALICE", "text": "refunds?"}
    slack.event({**event, "ts": QUESTION_TS}, event_id="EvDm")
    [answer] = fake_slack.wait_for("chat.postMessage")
    assert answer.args["channel"] == dm and answer.args["blocks"]
    assert fake_slack.calls_to("chat.postEphemeral") == []
    assert fake_slack.calls_to("reactions.add")  # the 👀 as always


def test_feedback_on_an_ephemeral_answer_records_and_thanks_through_the_response_url(slack, fake_slack) -> None:
    make_ephemeral(slack)
    slack.event(mention("how do I configure SAML with Okta?", ts=QUESTION_TS), event_id="EvEph")
    [answer] = ephemeral_answers(fake_slack)
    [log_id] = ranking_ids(slack)
    # A press on an ephemeral message: Slack sends its container (is_ephemeral) and a response_url, no `message`.
    payload = {
        "type": "block_actions",
        "user": {"id": "U0ALICE"},
        "team": {"id": "T1"},
        "api_app_id": "A1",
        "trigger_id": "trigger-1",
        "channel": {"id": CHANNEL},
        "container": {
            "type": "message",
            "message_ts": "1700000000.000009",
            "channel_id": CHANNEL,
            "is_ephemeral": True,
            "thread_ts": QUESTION_TS,
        },
        "actions": [
            {
                "type": "feedback_buttons",
                "action_id": "ragbot_feedback",
                "block_id": "ragbot_feedback",
                "value": f"helpful:{log_id}",
                "action_ts": "1700000002.000200",
            }
        ],
        "response_url": f"{fake_slack.base_url}/response/eph",
    }
    assert slack.interaction(payload).status_code == 200
    [replaced] = fake_slack.wait_for("response_url")
    assert replaced.args["replace_original"] in (True, "true")
    shown = json.dumps(replaced.args["blocks"], ensure_ascii=False)
    assert "👍 Thanks for the feedback, <@U0ALICE>!" in shown and '"feedback_buttons"' not in shown
    assert replaced.args["blocks"][0] == answer.args["blocks"][0]  # the answer itself stays
    assert fake_slack.calls_to("chat.update") == []  # an ephemeral message cannot be updated
    with slack.parts.sessions() as session:
        votes = session.scalars(select(store.Feedback)).all()
    assert [(v.ranking_id, v.user, v.value) for v in votes] == [(log_id, "U0ALICE", 1)]
