"""What a Slack user sees, played through the real HTTP endpoint with signed requests; Web API calls go to
a local fake that records them (tests/fake_slack.py)."""

from __future__ import annotations

import json
import re
import time

from sqlalchemy import func, select

import store
from tests.bot.slack.conftest import mention
from tests.fake_slack import BOT_ID, BOT_USER_ID

TS = "1700000001.000100"


def ranking_logs(slack) -> list[store.RankingLog]:
    with slack.parts.sessions() as session:
        return list(session.scalars(select(store.RankingLog).order_by(store.RankingLog.id)))


def answer_of(call) -> tuple[str, list[dict]]:
    return call.args.get("text", ""), call.args.get("blocks") or []


def test_a_mention_gets_one_threaded_answer_with_sources_and_buttons(slack, fake_slack) -> None:
    response = slack.event(mention("how do I configure SAML with Okta for a customer?"))
    assert response.status_code == 200

    [reply] = fake_slack.wait_for("chat.postMessage")
    assert reply.args["channel"] == "C0SALES01" and reply.args["thread_ts"] == TS
    assert reply.token == "xoxb-test"
    text, blocks = answer_of(reply)
    assert re.search(r"\[\d\]", text)
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    sources = next(s for s in sections if s.startswith("*Sources*"))
    assert "[1] <https://docs.nimbusdesk.example/" in sources and "rerank 0." in sources
    [log] = ranking_logs(slack)
    assert (log.channel, log.user, log.status) == ("C0SALES01", "U0ALICE", "ok")
    contexts = [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]
    assert f"Preset *default* (v1) · ref R-{log.id}" in contexts
    assert blocks[0]["type"] == "markdown" and re.search(r"\[\d\]", blocks[0]["text"])
    [actions] = [b for b in blocks if b["type"] == "context_actions"]
    [buttons] = actions["elements"]
    assert (buttons["type"], buttons["action_id"]) == ("feedback_buttons", "ragbot_feedback")
    assert (buttons["positive_button"]["value"], buttons["negative_button"]["value"]) == (
        f"helpful:{log.id}",
        f"not_helpful:{log.id}",
    )
    # the 👀 sign came before the answer, and went away after it
    [added] = fake_slack.calls_to("reactions.add")
    assert added.args | {"channel": "C0SALES01", "timestamp": TS, "name": "eyes"} == added.args
    assert added.at <= reply.at
    fake_slack.wait_for("reactions.remove")


def test_retries_and_the_duplicate_message_event_get_no_second_reply(slack, fake_slack) -> None:
    event = mention("What is the API rate limit?")
    assert slack.event(event, event_id="Ev1").status_code == 200
    assert slack.event(event, event_id="Ev1", retry_num=1).status_code == 200
    as_message = {**event, "type": "message", "channel_type": "channel"}
    assert slack.event(as_message, event_id="Ev2").status_code == 200
    fake_slack.wait_for("chat.postMessage")
    time.sleep(1.5)  # time enough for a second answer to show up if there were one
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    assert len(ranking_logs(slack)) == 1


def test_two_bot_processes_sharing_one_database_answer_once(slack, fake_slack, monkeypatch, embedder) -> None:
    from tests.bot.slack.conftest import RunningServer, start_service

    # A second bot "process": its own Bolt app, worker pool and HTTP server, the same database.
    # the embedded index admits one process; share it here
    parts, service = start_service(monkeypatch, fake_slack, embedder, index=slack.parts.index)
    other = RunningServer(service)
    try:
        event = mention("Which plans include single sign-on?")
        assert slack.event(event, event_id="Ev7").status_code == 200
        assert other.event(event, event_id="Ev7").status_code == 200
        fake_slack.wait_for("chat.postMessage")
        time.sleep(1.5)
        assert len(fake_slack.calls_to("chat.postMessage")) == 1
    finally:
        other.stop()
        parts.close()  # leaves the shared index open


def test_a_bad_or_stale_signature_gets_401_and_no_reply(slack, fake_slack) -> None:
    body = json.dumps({"type": "event_callback", "event_id": "Ev9", "event": mention("hello")})
    assert slack.post(body, "application/json", signature="v0=" + "0" * 64).status_code == 401
    assert slack.post(body, "application/json", timestamp=int(time.time()) - 600).status_code == 401
    time.sleep(0.5)
    assert fake_slack.calls_to("chat.postMessage") == [] and ranking_logs(slack) == []


def _answered(slack, fake_slack, text: str = "How do I export all account data?"):
    slack.event(mention(text))
    [reply] = fake_slack.wait_for("chat.postMessage")
    return reply, ranking_logs(slack)[-1]


def _vote(vote: str, log_id: int) -> dict:
    """What Slack sends for a press on a `feedback_buttons` element: its action id and the pressed button's value."""
    return {
        "type": "feedback_buttons",
        "action_id": "ragbot_feedback",
        "block_id": "ragbot_feedback",
        "value": f"{vote}:{log_id}",
        "action_ts": "1700000002.000200",
    }


def _old_button(action_id: str, log_id: int) -> dict:
    """A press on the buttons that answers carried before `feedback_buttons` (still in channels' history)."""
    return {"action_id": action_id, "block_id": "ragbot_feedback", "value": str(log_id), "type": "button"}


def _press(slack, reply, action: dict, user: str = "U0BOB") -> None:
    payload = {
        "type": "block_actions",
        "user": {"id": user},
        "team": {"id": "T1"},
        "api_app_id": "A1",
        "trigger_id": "trigger-1",
        "channel": {"id": reply.args["channel"]},
        "container": {"type": "message", "message_ts": "1700000000.000001", "channel_id": reply.args["channel"]},
        "message": {"ts": "1700000000.000001", "text": reply.args["text"], "blocks": reply.args["blocks"]},
        "actions": [action],
        "response_url": "http://127.0.0.1:9/unused",
    }
    assert slack.interaction(payload).status_code == 200


def test_helpful_stores_feedback_and_replaces_the_buttons(slack, fake_slack) -> None:
    reply, log = _answered(slack, fake_slack)
    _press(slack, reply, _vote("helpful", log.id))
    [update] = fake_slack.wait_for("chat.update")
    assert update.args["ts"] == "1700000000.000001" and update.args["channel"] == "C0SALES01"
    assert not any(b["type"] == "context_actions" for b in update.args["blocks"])
    assert update.args["blocks"][0] == reply.args["blocks"][0]  # the answer itself stays
    assert "👍 Thanks for the feedback, <@U0BOB>!" in json.dumps(update.args["blocks"], ensure_ascii=False)
    _press(slack, reply, _vote("helpful", log.id))  # a double click votes once
    _press(slack, reply, _old_button("ragbot_feedback_up", log.id))
    time.sleep(0.5)
    with slack.parts.sessions() as session:
        votes = session.scalars(select(store.Feedback)).all()
    assert [(v.ranking_id, v.user, v.value) for v in votes] == [(log.id, "U0BOB", 1)]


def test_the_buttons_of_answers_posted_before_feedback_buttons_still_vote(slack, fake_slack) -> None:
    reply, log = _answered(slack, fake_slack)
    _press(slack, reply, _old_button("ragbot_feedback_up", log.id))
    _press(slack, reply, _old_button("ragbot_feedback_down", log.id), user="U0CAROL")
    [opened] = fake_slack.wait_for("views.open")
    assert opened.args["view"]["callback_id"] == "ragbot_feedback_comment"
    fake_slack.wait_for("chat.update", 2)
    with slack.parts.sessions() as session:
        votes = session.scalars(select(store.Feedback).order_by(store.Feedback.user)).all()
    assert [(v.ranking_id, v.user, v.value) for v in votes] == [(log.id, "U0BOB", 1), (log.id, "U0CAROL", -1)]


def test_not_helpful_opens_a_modal_and_stores_the_comment(slack, fake_slack) -> None:
    reply, log = _answered(slack, fake_slack)
    _press(slack, reply, _vote("not_helpful", log.id))
    [opened] = fake_slack.wait_for("views.open")
    assert opened.args["trigger_id"] == "trigger-1"
    view = opened.args["view"]
    assert view["callback_id"] == "ragbot_feedback_comment"
    submission = {
        "type": "view_submission",
        "user": {"id": "U0BOB"},
        "team": {"id": "T1"},
        "api_app_id": "A1",
        "view": {
            "id": "V1",
            "type": "modal",
            "callback_id": "ragbot_feedback_comment",
            "private_metadata": view["private_metadata"],
            "state": {"values": {"comment": {"text": {"type": "plain_text_input", "value": " Cites the 2025 docs "}}}},
        },
    }
    assert slack.interaction(submission).status_code == 200
    deadline = time.time() + 10
    while time.time() < deadline:
        with slack.parts.sessions() as session:
            [vote] = session.scalars(select(store.Feedback)).all()
        if vote.comment:
            break
        time.sleep(0.05)
    assert (vote.ranking_id, vote.value, vote.comment) == (log.id, -1, "Cites the 2025 docs")
    fake_slack.wait_for("chat.update")


def test_a_failing_stage_gets_the_never_silent_message(slack, fake_slack, monkeypatch) -> None:
    def broken_search(*args, **kwargs):
        raise ConnectionError("Qdrant went away")

    monkeypatch.setattr(slack.parts.retriever, "search", broken_search)
    slack.event(mention("What is SCIM?"))
    [reply] = fake_slack.wait_for("chat.postMessage")
    [log] = ranking_logs(slack)
    assert reply.args["thread_ts"] == TS
    assert "Sorry, something went wrong" in reply.args["text"] and f"R-{log.id}" in reply.args["text"]
    assert log.status == "error" and "Qdrant went away" in log.error
    fake_slack.wait_for("reactions.remove")


def test_a_failing_reranker_answers_in_retrieval_order_and_says_so(slack, fake_slack, monkeypatch) -> None:
    class BrokenReranker:
        name = "broken"

        def score(self, query, documents, instruction=None):
            raise RuntimeError("CUDA error: device-side assert triggered")

    monkeypatch.setattr(slack.parts.reranker, "get", lambda: BrokenReranker())
    reply, log = _answered(slack, fake_slack)
    sources = json.dumps(reply.args["blocks"], ensure_ascii=False)
    assert "Reranking was skipped: reranker failed" in sources and "in retrieval order" in sources
    assert log.status == "ok" and log.rerank_status.startswith("skipped: reranker failed")


def test_a_direct_message_is_answered(slack, fake_slack) -> None:
    dm = {"type": "message", "channel_type": "im", "channel": "D0ALICE", "user": "U0ALICE", "ts": TS}
    slack.event({**dm, "text": "How do refunds work when we cancel?"})
    [reply] = fake_slack.wait_for("chat.postMessage")
    assert reply.args["channel"] == "D0ALICE" and re.search(r"\[\d\]", reply.args["text"])


def test_a_follow_up_in_the_thread_uses_the_first_question(slack, fake_slack) -> None:
    fake_slack.thread_messages[("C0SALES01", "1700000000.000900")] = [
        {"user": "U0ALICE", "text": f"<@{BOT_USER_ID}> how do I configure SAML with Okta?", "ts": "1700000000.000900"}
    ]
    slack.event(mention("and how do we rotate the certificate?", thread_ts="1700000000.000900"))
    [reply] = fake_slack.wait_for("chat.postMessage")
    assert reply.args["thread_ts"] == "1700000000.000900"
    [log] = ranking_logs(slack)
    assert log.question == "how do I configure SAML with Okta?\nand how do we rotate the certificate?"


def test_the_bots_own_and_other_bots_messages_are_ignored(slack, fake_slack) -> None:
    dm = {"type": "message", "channel_type": "im", "channel": "D0ALICE", "text": "How do refunds work?"}
    slack.event({**dm, "ts": "1.1", "bot_id": BOT_ID, "user": BOT_USER_ID}, event_id="EvA")
    slack.event({**dm, "ts": "1.2", "bot_id": "B0OTHER", "subtype": "bot_message"}, event_id="EvB")
    time.sleep(1.5)
    assert fake_slack.calls_to("chat.postMessage") == [] and ranking_logs(slack) == []


def test_the_slash_command_answers_ephemerally_with_a_share_button(slack, fake_slack) -> None:
    response = slack.command(
        command="/ask",
        text="Which payment methods do you accept?",
        user_id="U0ALICE",
        channel_id="C0SALES01",
        team_id="T1",
        trigger_id="t1",
        response_url=f"{fake_slack.base_url}/response/1",
    )
    assert response.status_code == 200 and "Searching the knowledge base" in response.text
    [answer] = fake_slack.wait_for("response_url")
    assert answer.args["response_type"] == "ephemeral" and re.search(r"\[\d\]", answer.args["text"])
    [share] = [e for b in answer.args["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert share["action_id"] == "ragbot_share"

    payload = {
        "type": "block_actions",
        "user": {"id": "U0ALICE"},
        "team": {"id": "T1"},
        "api_app_id": "A1",
        "trigger_id": "t2",
        "channel": {"id": "C0SALES01"},
        "container": {"type": "message", "is_ephemeral": True},
        "actions": [{"action_id": "ragbot_share", "block_id": "ragbot_share", "value": share["value"]}],
        "response_url": f"{fake_slack.base_url}/response/1",
    }
    assert slack.interaction(payload).status_code == 200
    [posted] = fake_slack.wait_for("chat.postMessage")
    assert posted.args["channel"] == "C0SALES01"
    blocks = json.dumps(posted.args["blocks"], ensure_ascii=False)
    assert "<@U0ALICE> asked: Which payment methods do you accept?" in blocks and '"feedback_buttons"' in blocks
    deleted = fake_slack.wait_for("response_url", 2)[-1]
    assert deleted.args.get("delete_original") in (True, "true")


def test_a_rate_limited_web_api_call_is_retried_after_retry_after(slack, fake_slack) -> None:
    fake_slack.rate_limit_next["chat.postMessage"] = 1
    slack.event(mention("Is data encrypted at rest?"))
    [reply] = fake_slack.wait_for("chat.postMessage")
    [limited] = fake_slack.calls_to("chat.postMessage:429")
    assert reply.at - limited.at >= 0.9  # waited for Retry-After: 1


def test_thirty_mentions_at_once_are_acked_fast_and_answered_once(env, monkeypatch, fake_slack, embedder) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from bot.app.web import build_service
    from tests.bot.slack.conftest import RunningServer, start_service

    parts, service = start_service(monkeypatch, fake_slack, embedder, workers=8)
    real_ask = parts.answers.ask

    def slow_ask(*args, **kwargs):
        time.sleep(2.0)  # a pipeline that takes 2 s per question
        return real_ask(*args, **kwargs)

    monkeypatch.setattr(parts.answers, "ask", slow_ask)
    service.close()
    service = build_service(parts)  # wired onto the slowed pipeline
    server = RunningServer(service)
    try:

        def send(i: int) -> float:
            started = time.perf_counter()
            response = server.event(mention(f"Question {i}: what is SCIM?", ts=f"1700000100.{i:06d}"), event_id=f"E{i}")
            assert response.status_code == 200
            return time.perf_counter() - started

        with ThreadPoolExecutor(max_workers=30) as senders:
            ack_times = list(senders.map(send, range(30)))
        assert max(ack_times) < 3.0, sorted(ack_times)[-5:]
        replies = fake_slack.wait_for("chat.postMessage", 30, timeout=120)
        time.sleep(1.0)
        replies = fake_slack.calls_to("chat.postMessage")
        assert sorted(r.args["thread_ts"] for r in replies) == sorted(f"1700000100.{i:06d}" for i in range(30))
        busy = fake_slack.calls_to("chat.postEphemeral")
        assert busy and all("queued" in b.args["text"] for b in busy)  # 8 workers, 30 questions: some waited
        with parts.sessions() as session:
            assert session.scalar(select(func.count()).select_from(store.RankingLog)) == 30
    finally:
        server.stop()
        parts.close()


def test_slacks_url_verification_is_answered(slack) -> None:
    body = json.dumps({"type": "url_verification", "token": "legacy", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9C"})
    response = slack.post(body, "application/json")
    assert response.status_code == 200 and "3eZbrw1aBm2rZgRNFdxV2595E9C" in response.text


def test_a_database_outage_is_not_silent(slack, fake_slack, monkeypatch) -> None:
    from sqlalchemy.exc import OperationalError

    def database_down(*args, **kwargs):
        raise OperationalError("INSERT INTO slack_events", {}, ConnectionRefusedError("connection refused"))

    monkeypatch.setattr(store, "claim_slack_event", database_down)
    slack.event(mention("What is SCIM?"))
    [reply] = fake_slack.wait_for("chat.postMessage")
    assert reply.args["thread_ts"] == TS
    assert "Sorry, something went wrong" in reply.args["text"] and re.search(
        r"reference \*E-[0-9a-f]{8}\*", reply.args["text"]
    )
