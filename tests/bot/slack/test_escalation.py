""" "Still need help?" (issue 14): the button is offered where the preset names people, and a press hands the question
to a user group in the thread and/or a support channel, tells the asker where it went, is logged once per ranking,
and says so when a target fails. Played through the real HTTP endpoint with signed requests; Web API calls go to
the local fake (tests/fake_slack.py)."""

from __future__ import annotations

import json
import logging
import threading
import time
from types import SimpleNamespace

from sqlalchemy import select

import store
from bot.slack.blocks import AnswerView, answer_messages
from tests.bot.slack.conftest import mention
from tests.bot.slack.test_crafted_payloads import IGNORED, no_errors, press, wait_for_log
from tests.bot.slack.test_slack_scenarios import TS, ranking_logs

ANSWER_TS = "1700000000.000001"  # the answer message's ts, as the presses below carry it
SUPPORT = "C0SUPPORT"
GROUP = "S0SUPPORT"


def escalate_to(slack, usergroup: str | None = None, channel: str | None = None) -> None:
    """Set the default preset's escalation targets, as the admin does."""
    with slack.parts.sessions.begin() as session:
        preset = store.default_preset(session)
        preset.escalation_usergroup, preset.escalation_channel = usergroup, channel


def escalations(slack) -> list[tuple[int, str | None, str, str]]:
    with slack.parts.sessions() as session:
        rows = session.scalars(select(store.Escalation).order_by(store.Escalation.id))
        return [(e.ranking_id, e.user, e.via, e.target) for e in rows]


def answered(slack, fake_slack, text: str = "How do I export all account data?", ts: str = TS, event_id: str = "Ev1"):
    slack.event(mention(text, ts=ts), event_id=event_id)
    deadline = time.time() + 60
    while time.time() < deadline:
        replies = [c for c in fake_slack.calls_to("chat.postMessage") if c.args.get("thread_ts") == ts]
        if replies:
            return replies[-1], ranking_logs(slack)[-1]
        time.sleep(0.05)
    raise AssertionError(f"no answer in thread {ts}")


def escalate_buttons(blocks: list[dict]) -> list[dict]:
    return [e for b in blocks if b.get("block_id") == "ragbot_escalate" for e in b["elements"]]


def press_escalate(slack, reply, log_id, user: str = "U0ALICE", channel: str | None = None) -> None:
    """What Slack sends when someone presses the answer's "Still need help?" button."""
    channel = channel or reply.args["channel"]
    payload = {
        "type": "block_actions",
        "user": {"id": user},
        "team": {"id": "T1"},
        "api_app_id": "A1",
        "trigger_id": "trigger-1",
        "channel": {"id": channel},
        "container": {"type": "message", "message_ts": ANSWER_TS, "channel_id": channel, "thread_ts": TS},
        "message": {"ts": ANSWER_TS, "thread_ts": TS, "text": reply.args["text"], "blocks": reply.args["blocks"]},
        "actions": [
            {"action_id": "ragbot_escalate", "block_id": "ragbot_escalate", "value": str(log_id), "type": "button"}
        ],
        "response_url": "http://127.0.0.1:9/unused",
    }
    assert slack.interaction(payload).status_code == 200


def posts_in(fake_slack, channel: str) -> list:
    return [c for c in fake_slack.calls_to("chat.postMessage") if c.args.get("channel") == channel]


def thread_posts(fake_slack, after: int = 1) -> list:
    """Messages in the question's thread after the answer(s)."""
    return [c for c in posts_in(fake_slack, "C0SALES01") if c.args.get("thread_ts") == TS][after:]


def wait_until(condition, timeout: float = 15.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_the_button_is_offered_only_where_the_preset_names_someone(slack, fake_slack) -> None:
    reply, _ = answered(slack, fake_slack)
    assert escalate_buttons(reply.args["blocks"]) == []

    escalate_to(slack, channel=SUPPORT)
    reply, log = answered(slack, fake_slack, "Is data encrypted at rest?", ts="1700000002.000100", event_id="Ev2")
    [button] = escalate_buttons(reply.args["blocks"])
    assert (button["action_id"], button["value"], button["text"]["text"]) == (
        "ragbot_escalate",
        str(log.id),
        "Still need help?",
    )
    types = [b["type"] for b in reply.args["blocks"]]
    assert types.index("actions") == types.index("context_actions") + 1  # right after the feedback buttons

    # an answer that found nothing is where help is needed most
    reply, log = answered(slack, fake_slack, "What is the capital of France?", ts="1700000003.000100", event_id="Ev3")
    assert log.status == "no_answer" and escalate_buttons(reply.args["blocks"])

    # a slash command's answer is ephemeral (only the asker sees it): it offers sharing, not escalation
    slack.command(
        command="/ask",
        text="Which payment methods do you accept?",
        user_id="U0ALICE",
        channel_id="C0SALES01",
        team_id="T1",
        trigger_id="t1",
        response_url=f"{fake_slack.base_url}/response/1",
    )
    [ephemeral] = fake_slack.wait_for("response_url")
    assert escalate_buttons(ephemeral.args["blocks"]) == []
    assert any(b.get("block_id") == "ragbot_share" for b in ephemeral.args["blocks"])


def test_a_logged_answer_offers_the_button_while_its_preset_still_names_someone() -> None:
    def logged(preset: store.Preset | None) -> SimpleNamespace:  # what AnswerView.from_log reads of a ranking
        fields = {"id": 9, "answer": "Not found.", "status": "no_answer", "candidates": [], "error": None}
        return SimpleNamespace(**fields, preset_name="default", preset_version=1, rerank_status="ok", preset=preset)

    assert AnswerView.from_log(logged(store.Preset(name="default", escalation_usergroup=GROUP))).escalates
    assert not AnswerView.from_log(logged(store.Preset(name="default", escalation_channel=""))).escalates
    assert not AnswerView.from_log(logged(None)).escalates  # the preset was deleted
    # the support channel's copy carries no buttons at all
    view = AnswerView(9, "Not found.", "no_answer", [], "default", 1, "ok", escalates=True)
    [message] = answer_messages(view, actions="none")
    assert not any(b["type"] in ("actions", "context_actions") for b in message.blocks)


def test_a_support_channel_gets_the_question_the_answer_and_its_sources(slack, fake_slack) -> None:
    escalate_to(slack, channel=SUPPORT)
    reply, log = answered(slack, fake_slack)
    press_escalate(slack, reply, log.id)

    posted = wait_until(lambda: posts_in(fake_slack, SUPPORT))
    [link] = fake_slack.calls_to("chat.getPermalink")
    assert (link.args["channel"], link.args["message_ts"]) == ("C0SALES01", ANSWER_TS)
    [support] = posted
    shown = json.dumps(support.args["blocks"], ensure_ascii=False)
    assert "<@U0ALICE> still needs help with a question I answered in <#C0SALES01>" in shown
    assert f"<https://fake.slack.example/archives/C0SALES01/p{ANSWER_TS.replace('.', '')}|open the thread>" in shown
    assert "*Question:* How do I export all account data?" in shown
    answer_block = next(b for b in reply.args["blocks"] if b["type"] == "markdown")
    assert answer_block in support.args["blocks"]  # the answer as the asker saw it
    sources = next(b for b in reply.args["blocks"] if b["type"] == "section" and "*Sources*" in b["text"]["text"])
    assert sources in support.args["blocks"]
    assert "ragbot_feedback" not in shown and "ragbot_escalate" not in shown  # no buttons there

    [told] = wait_until(lambda: thread_posts(fake_slack))
    assert "<@U0ALICE>" in told.args["text"] and f"<#{SUPPORT}>" in told.args["text"]

    [update] = fake_slack.wait_for("chat.update")
    assert (update.args["channel"], update.args["ts"]) == ("C0SALES01", ANSWER_TS)
    assert escalate_buttons(update.args["blocks"]) == []
    assert f"🙋 <@U0ALICE> asked <#{SUPPORT}> for help." in json.dumps(update.args["blocks"], ensure_ascii=False)
    assert update.args["blocks"][0] == reply.args["blocks"][0]  # the answer itself stays
    assert escalations(slack) == [(log.id, "U0ALICE", "channel", SUPPORT)]


def test_a_user_group_is_mentioned_in_the_thread(slack, fake_slack) -> None:
    escalate_to(slack, usergroup=GROUP)
    reply, log = answered(slack, fake_slack)
    press_escalate(slack, reply, log.id, user="U0BOB")  # someone else in the channel asks for help for Alice

    [told] = wait_until(lambda: thread_posts(fake_slack))
    assert told.args["text"].startswith(f"<!subteam^{GROUP}> <@U0ALICE> still needs help")
    assert "<@U0BOB>" in told.args["text"]
    fake_slack.wait_for("chat.update")
    assert [c.args["channel"] for c in fake_slack.calls_to("chat.postMessage")] == ["C0SALES01"] * 2
    assert escalations(slack) == [(log.id, "U0BOB", "usergroup", GROUP)]


def test_presses_after_the_first_escalate_once(slack, fake_slack) -> None:
    escalate_to(slack, usergroup=GROUP, channel=SUPPORT)
    reply, log = answered(slack, fake_slack)
    # a double click: two presses at once, then Slack's second delivery of one of them
    clicks = [threading.Thread(target=press_escalate, args=(slack, reply, log.id)) for _ in range(2)]
    for click in clicks:
        click.start()
    for click in clicks:
        click.join()
    press_escalate(slack, reply, log.id)
    fake_slack.wait_for("chat.update")
    press_escalate(slack, reply, log.id, user="U0CAROL")  # from a client still showing the button

    [ephemeral] = fake_slack.wait_for("chat.postEphemeral")
    assert ephemeral.args["user"] == "U0CAROL" and "<@U0ALICE> already asked" in ephemeral.args["text"]
    time.sleep(1.0)  # time enough for a second escalation to show up if there were one
    assert len(posts_in(fake_slack, SUPPORT)) == 1
    [told] = thread_posts(fake_slack)
    assert f"<!subteam^{GROUP}>" in told.args["text"] and f"<#{SUPPORT}>" in told.args["text"]
    assert len(fake_slack.calls_to("chat.update")) == 1
    assert escalations(slack) == [(log.id, "U0ALICE", "usergroup", GROUP), (log.id, "U0ALICE", "channel", SUPPORT)]


def test_crafted_presses_are_ignored_without_a_500(slack, fake_slack, caplog) -> None:
    caplog.set_level(logging.WARNING)
    escalate_to(slack, usergroup=GROUP, channel=SUPPORT)
    _, log = answered(slack, fake_slack)
    crafted = {
        "a ranking that does not exist": press("C0SALES01", "ragbot_escalate", str(log.id + 1000)),
        "a ranking answered in another channel": press("C0OTHER", "ragbot_escalate", str(log.id)),
        "a value that is not an id": press("C0SALES01", "ragbot_escalate", "abc"),
        "a null value": press("C0SALES01", "ragbot_escalate", None),
        "no user": press("C0SALES01", "ragbot_escalate", str(log.id), user=None),
        "no message": press("C0SALES01", "ragbot_escalate", str(log.id), message=None, container=None),
    }
    for name, payload in crafted.items():
        assert slack.interaction(payload).status_code == 200, name
    wait_for_log(caplog, IGNORED, len(crafted))
    time.sleep(0.5)
    assert escalations(slack) == []
    assert len(fake_slack.calls_to("chat.postMessage")) == 1  # the answer only
    assert fake_slack.calls_to("chat.postEphemeral") == [] and fake_slack.calls_to("chat.update") == []
    no_errors(caplog)


def test_a_failing_support_channel_is_told_and_can_be_retried(slack, fake_slack, caplog) -> None:
    caplog.set_level(logging.WARNING)
    escalate_to(slack, channel=SUPPORT)
    fake_slack.channel_errors[SUPPORT] = "not_in_channel"
    reply, log = answered(slack, fake_slack)
    press_escalate(slack, reply, log.id)

    [told] = wait_until(lambda: thread_posts(fake_slack))
    assert "<@U0ALICE>" in told.args["text"]
    assert f"couldn't pass it to <#{SUPPORT}>" in told.args["text"] and "not_in_channel" in told.args["text"]
    wait_for_log(caplog, f"to channel {SUPPORT} failed", 1)
    time.sleep(0.5)
    assert escalations(slack) == [] and fake_slack.calls_to("chat.update") == []  # the button stays

    del fake_slack.channel_errors[SUPPORT]  # an admin invited ragbot: the next press goes through
    press_escalate(slack, reply, log.id)
    wait_until(lambda: len(posts_in(fake_slack, SUPPORT)) == 2)
    fake_slack.wait_for("chat.update")
    assert escalations(slack) == [(log.id, "U0ALICE", "channel", SUPPORT)]


def test_without_a_permalink_the_support_channel_still_gets_the_question(slack, fake_slack) -> None:
    escalate_to(slack, channel=SUPPORT)
    fake_slack.errors["chat.getPermalink"] = "channel_not_found"
    reply, log = answered(slack, fake_slack)
    press_escalate(slack, reply, log.id)
    [support] = wait_until(lambda: posts_in(fake_slack, SUPPORT))
    shown = json.dumps(support.args["blocks"], ensure_ascii=False)
    assert "How do I export all account data?" in shown and "open the thread" not in shown
    fake_slack.wait_for("chat.update")


def test_a_preset_that_no_longer_names_anyone_says_so(slack, fake_slack) -> None:
    escalate_to(slack, usergroup=GROUP)
    reply, log = answered(slack, fake_slack)
    assert escalate_buttons(reply.args["blocks"])
    escalate_to(slack)  # the admin removed the target after the answer was posted
    press_escalate(slack, reply, log.id, user="U0BOB")

    [ephemeral] = fake_slack.wait_for("chat.postEphemeral")
    assert ephemeral.args["user"] == "U0BOB" and ephemeral.args["thread_ts"] == TS
    assert "no one to hand this question to" in ephemeral.args["text"]
    time.sleep(0.5)
    assert escalations(slack) == [] and len(fake_slack.calls_to("chat.postMessage")) == 1
