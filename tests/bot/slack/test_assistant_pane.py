"""The assistant pane through the real endpoint (signed events into `ragbot serve`'s wiring, Web API calls out to
the local stand-in): greeting and suggested prompts from the context channel's preset, statuses, the title, a
streamed answer with its sources and feedback buttons, the context steering the preset, and Socket Mode."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import select

import store
from bot.slack.assistant import GREETING, STOCK_PROMPTS
from tests.fake_openai import FakeOpenAI
from tests.fake_slack import BOT_USER_ID, FakeSocketModeServer

DM = "D0ALICE"
THREAD = "1700000100.000100"
SALES_PROMPTS = [
    {"title": "Pricing", "message": "What does the Business plan cost?"},
    {"title": "SSO", "message": "Which plans include single sign-on?"},
]


def pane_event(kind: str, context_channel: str | None, thread_ts: str = THREAD) -> dict[str, Any]:
    """`assistant_thread_started` / `assistant_thread_context_changed` as Slack sends them."""
    context = {"channel_id": context_channel, "team_id": "T1", "enterprise_id": None} if context_channel else {}
    return {
        "type": kind,
        "assistant_thread": {"user_id": "U0ALICE", "context": context, "channel_id": DM, "thread_ts": thread_ts},
        "event_ts": f"{time.time():.6f}",
    }


def pane_message(text: str, ts: str, thread_ts: str = THREAD) -> dict[str, Any]:
    """A user's message in an assistant thread: a DM message with a thread_ts."""
    return {
        "type": "message",
        "channel": DM,
        "channel_type": "im",
        "user": "U0ALICE",
        "text": text,
        "ts": ts,
        "thread_ts": thread_ts,
        "event_ts": ts,
    }


def add_preset(sessions, name: str, channel: str, prompts: list[dict[str, str]] | None = None) -> None:
    with sessions.begin() as session:
        store.default_preset(session)
        session.add(store.Preset(name=name, instruction=f"Answer for {name}.", suggested_prompts=prompts))
        session.flush()
        store.bind_channel(session, channel, name)


def rankings(sessions) -> list[store.RankingLog]:
    with sessions() as session:
        return list(session.scalars(select(store.RankingLog).order_by(store.RankingLog.id)))


def jobs(sessions) -> list[store.AnswerJob]:
    with sessions() as session:
        return list(session.scalars(select(store.AnswerJob).order_by(store.AnswerJob.id)))


def wait_for_jobs(sessions, timeout: float = 30.0) -> list[store.AnswerJob]:
    """The jobs once none is still being answered (a job is marked done just after its answer is out)."""
    deadline = time.time() + timeout
    while True:
        found = jobs(sessions)
        if not any(j.state in ("queued", "answering") for j in found):
            return found
        assert time.time() < deadline, "a job was not finished"
        time.sleep(0.05)


def wait_for_context(sessions, thread_ts: str, channel: str, timeout: float = 10.0) -> None:
    deadline = time.time() + timeout
    while True:
        with sessions() as session:
            if (store.assistant_context(session, DM, thread_ts) or {}).get("channel_id") == channel:
                return
        assert time.time() < deadline, f"the context {channel} was not saved"
        time.sleep(0.05)


def answers_posted(fake, thread_ts: str) -> list:
    """Answers posted as messages in the thread (answers carry blocks; greetings and notices do not)."""
    return [
        c for c in fake.calls_to("chat.postMessage") if c.args.get("thread_ts") == thread_ts and c.args.get("blocks")
    ]


def test_the_pane_greets_with_the_presets_prompts_and_the_stock_ones_otherwise(slack, fake_slack) -> None:
    add_preset(slack.parts.sessions, "sales", "C0SALES01", SALES_PROMPTS)
    assert slack.event(pane_event("assistant_thread_started", "C0SALES01"), event_id="EvStart1").status_code == 200
    [suggested] = fake_slack.wait_for("assistant.threads.setSuggestedPrompts")
    assert suggested.args["channel_id"] == DM and suggested.args["thread_ts"] == THREAD
    assert suggested.args["prompts"] == SALES_PROMPTS
    [greeting] = fake_slack.wait_for("chat.postMessage")
    assert greeting.args["channel"] == DM and greeting.args["thread_ts"] == THREAD
    assert greeting.args["text"] == GREETING

    other = "1700000200.000100"
    slack.event(pane_event("assistant_thread_started", "C0RANDOM1", other), event_id="EvStart2")
    stock = fake_slack.wait_for("assistant.threads.setSuggestedPrompts", 2)[1]
    assert stock.args["thread_ts"] == other
    assert [(p["title"], p["message"]) for p in stock.args["prompts"]] == list(STOCK_PROMPTS)
    assert len(stock.args["prompts"]) == 4

    # Events may arrive out of order: a thread's opening context never replaces a change saved before it.
    third = "1700000300.000100"
    slack.event(pane_event("assistant_thread_context_changed", "C0SUPPORT1", third), event_id="EvChanged3")
    wait_for_context(slack.parts.sessions, third, "C0SUPPORT1")
    slack.event(pane_event("assistant_thread_started", "C0SALES01", third), event_id="EvStart3")
    fake_slack.wait_for("assistant.threads.setSuggestedPrompts", 3)

    with slack.parts.sessions() as session:  # the context is in the database, for every process
        assert store.assistant_context(session, DM, THREAD)["channel_id"] == "C0SALES01"
        assert store.assistant_context(session, DM, other)["channel_id"] == "C0RANDOM1"
        assert store.assistant_context(session, DM, third)["channel_id"] == "C0SUPPORT1"
    assert fake_slack.calls_to("assistant.threads.setStatus") == []  # nothing asked yet


def test_a_pane_question_sets_a_status_and_the_title_and_streams_an_answer_with_sources_and_feedback(
    llm_slack, fake_slack
) -> None:
    llm_slack.event(pane_event("assistant_thread_started", "C0SALES01"), event_id="EvStart")
    fake_slack.wait_for("assistant.threads.setSuggestedPrompts")
    question = "How do I set up SAML single sign-on with Okta for the whole sales team in our workspace?"
    sent = time.time()
    response = llm_slack.event(pane_message(question, "1700000101.000100"), event_id="EvAsk")
    assert response.status_code == 200
    first_status = fake_slack.wait_for("assistant.threads.setStatus")[0]
    where = (first_status.args["channel_id"], first_status.args["thread_ts"])
    assert where == (DM, THREAD) and first_status.args["status"] == "is searching the knowledge base…"
    # The first visible sign of work comes from the listener, before the answer job runs (retrieval, reranking);
    # the bound is loose on purpose (a loaded machine), the order is the point.
    assert first_status.at - sent < 5.0

    [stopped] = fake_slack.wait_for("chat.stopStream")
    [started] = fake_slack.calls_to("chat.startStream")
    assert started.args["channel"] == DM and started.args["thread_ts"] == THREAD
    assert started.args["recipient_user_id"] == "U0ALICE" and started.args["recipient_team_id"] == "T1"
    stream = fake_slack.streams[stopped.args["ts"]]
    assert not stream.streaming and not stream.updated
    assert "Business plan" in stream.text and "[1]" in stream.text  # the LLM's text, streamed
    assert FakeOpenAI.requests and FakeOpenAI.requests[-1]["body"]["stream"] is True

    statuses = [c.args["status"] for c in fake_slack.calls_to("assistant.threads.setStatus")]
    assert statuses[0] == "is searching the knowledge base…" and "is writing the answer…" in statuses
    assert first_status.at <= started.at  # the status came before any answer text
    assert any(s.startswith("is reading ") and s.endswith(" passages…") for s in statuses)
    [title] = fake_slack.calls_to("assistant.threads.setTitle")
    assert title.args["thread_ts"] == THREAD and title.args["title"].startswith("How do I set up SAML")
    assert len(title.args["title"]) <= 60 and title.args["title"].endswith("…")

    final = json.dumps(stream.blocks)
    assert "*Sources*\\n[1] " in final  # the sources under the streamed text
    [feedback] = [b for b in stream.blocks if b["type"] == "context_actions"]
    value = feedback["elements"][0]["positive_button"]["value"]
    assert value.startswith("helpful:")
    [ranking] = rankings(llm_slack.parts.sessions)
    assert value == f"helpful:{ranking.id}" and ranking.channel == DM and ranking.status == "ok"
    assert answers_posted(fake_slack, THREAD) == []  # one answer: the streamed message
    assert fake_slack.calls_to("reactions.add") == []  # the pane shows a status, not 👀
    [job] = wait_for_jobs(llm_slack.parts.sessions)
    assert (job.kind, job.state, job.ranking_id) == ("assistant", "answered", ranking.id)

    # A second question in the same thread does not retitle it.
    llm_slack.event(pane_message("And with Azure AD?", "1700000102.000100"), event_id="EvAsk2")
    fake_slack.wait_for("chat.stopStream", 2)
    assert len(fake_slack.calls_to("assistant.threads.setTitle")) == 1


def test_the_channel_the_user_looks_at_steers_the_preset_and_without_an_llm_nothing_streams(slack, fake_slack) -> None:
    add_preset(slack.parts.sessions, "support", "C0SUPPORT1")
    slack.event(pane_event("assistant_thread_started", "C0SALES01"), event_id="EvStart")
    fake_slack.wait_for("assistant.threads.setSuggestedPrompts")
    slack.event(pane_event("assistant_thread_context_changed", "C0SUPPORT1"), event_id="EvChanged")
    wait_for_context(slack.parts.sessions, THREAD, "C0SUPPORT1")

    slack.event(pane_message("How do I configure SCIM provisioning?", "1700000101.000100"), event_id="EvAsk")
    fake_slack.wait_for("chat.postMessage", 2)  # the greeting, then the answer
    [answer] = answers_posted(fake_slack, THREAD)
    assert answer.args["channel"] == DM
    assert any(b["type"] == "context_actions" for b in answer.args["blocks"])
    [ranking] = rankings(slack.parts.sessions)
    assert ranking.preset_name == "support" and ranking.channel == DM
    for method in ("chat.startStream", "chat.appendStream", "chat.stopStream"):
        assert fake_slack.calls_to(method) == []  # the extractive writer does not stream
    assert fake_slack.calls_to("assistant.threads.setStatus")[0].args["status"] == "is searching the knowledge base…"


def test_the_pane_in_socket_mode_greets_and_answers(env, monkeypatch, fake_slack, embedder) -> None:
    from bot.app import Components
    from bot.app.web import build_service
    from bot.settings import Settings

    socket = FakeSocketModeServer()
    fake_slack.socket_url = socket.url
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-socket")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-socket")
    monkeypatch.setenv("SLACK_API_URL", fake_slack.api_url)
    parts = Components(Settings(), embedder=embedder)
    service = build_service(parts)

    def envelope(n: int, event: dict[str, Any]) -> dict[str, Any]:
        return {
            "envelope_id": f"env-{n}",
            "type": "events_api",
            "accepts_response_payload": False,
            "retry_attempt": 0,
            "retry_reason": "",
            "payload": {
                "type": "event_callback",
                "team_id": "T1",
                "api_app_id": "A1",
                "event_id": f"EvPane{n}",
                "event_time": int(time.time()),
                "authorizations": [{"team_id": "T1", "user_id": BOT_USER_ID, "is_bot": True}],
                "event": event,
            },
        }

    try:
        service.start_socket_mode()
        socket.push(envelope(1, pane_event("assistant_thread_started", "C0SALES01")))
        socket.wait_for_ack("env-1")
        [suggested] = fake_slack.wait_for("assistant.threads.setSuggestedPrompts")
        assert suggested.token == "xoxb-socket" and len(suggested.args["prompts"]) == 4
        socket.push(envelope(2, pane_message("How do I configure SCIM provisioning?", "1700000101.000100")))
        socket.wait_for_ack("env-2")
        fake_slack.wait_for("chat.postMessage", 2)
        [answer] = answers_posted(fake_slack, THREAD)
        assert answer.args["channel"] == DM and any(b["type"] == "context_actions" for b in answer.args["blocks"])
        assert fake_slack.calls_to("assistant.threads.setStatus")
    finally:
        service.close()
        socket.stop()
        parts.close()
