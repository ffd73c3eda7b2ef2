"""The Web API stand-in's AI-app surfaces (assistant threads, streamed messages), driven through slack_sdk's own
`WebClient` and streaming helper, so the shapes it answers are the ones the real client sends and reads."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.fake_slack import FakeSlack


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    return WebClient(token="xoxb-test", base_url=fake.api_url)


def error_of(call) -> str:
    with pytest.raises(SlackApiError) as failed:
        call()
    return failed.value.response["error"]


def test_assistant_thread_status_prompts_and_title_are_answered_and_recorded(fake, client) -> None:
    where = {"channel_id": "D0ALICE", "thread_ts": "1700000001.000100"}
    assert client.assistant_threads_setStatus(**where, status="is searching the knowledge base…")["ok"]
    assert client.assistant_threads_setStatus(**where, status="")["ok"]  # clears it
    prompts = [{"title": f"Prompt {i}", "message": f"Question {i}?"} for i in range(4)]
    assert client.assistant_threads_setSuggestedPrompts(**where, prompts=prompts, title="Try asking")["ok"]
    assert client.assistant_threads_setTitle(**where, title="SAML with Okta")["ok"]  # sent form-encoded

    [status, cleared] = fake.calls_to("assistant.threads.setStatus")
    assert status.args == {**where, "status": "is searching the knowledge base…"} and cleared.args["status"] == ""
    [suggested] = fake.calls_to("assistant.threads.setSuggestedPrompts")
    assert suggested.args["prompts"] == prompts and suggested.args["title"] == "Try asking"
    [title] = fake.calls_to("assistant.threads.setTitle")
    assert title.args == {**where, "title": "SAML with Okta"} and title.token == "xoxb-test"

    five = [*prompts, {"title": "one more", "message": "?"}]
    assert error_of(lambda: client.assistant_threads_setSuggestedPrompts(**where, prompts=five)) == (
        "invalid_arguments"
    )
    assert error_of(lambda: client.assistant_threads_setTitle(**where, title="")) == "invalid_arguments"
    fake.errors["assistant.threads.setStatus"] = "missing_scope"  # an app without assistant:write
    assert error_of(lambda: client.assistant_threads_setStatus(**where, status="…")) == "missing_scope"


def test_a_message_streamed_through_slack_sdks_helper_ends_with_its_blocks(fake, client) -> None:
    feedback = {"type": "context_actions", "elements": [{"type": "feedback_buttons", "action_id": "x"}]}
    streamer = client.chat_stream(
        channel="C0SALES01",
        thread_ts="1700000001.000100",
        recipient_team_id="T1",
        recipient_user_id="U0ALICE",
        buffer_size=10,
    )
    streamer.append(markdown_text="SSO needs ")
    streamer.append(markdown_text="the **Business** plan ")
    streamer.append(markdown_text="[1].")
    stopped = streamer.stop(blocks=[feedback])

    [started] = fake.calls_to("chat.startStream")
    assert started.args["channel"] == "C0SALES01" and started.args["recipient_user_id"] == "U0ALICE"
    assert fake.calls_to("chat.appendStream") and len(fake.calls_to("chat.stopStream")) == 1
    stream = fake.streams[streamer.ts]
    assert stream.text == "SSO needs the **Business** plan [1]." and not stream.streaming
    assert stream.blocks == [feedback] and stopped["message"]["blocks"] == [feedback]
    assert stopped["ts"] == streamer.ts and stopped["channel"] == "C0SALES01"


def test_streams_fail_like_slacks(fake, client) -> None:
    # a channel stream must say whom it answers; a DM stream need not
    assert error_of(lambda: client.chat_startStream(channel="C0SALES01", thread_ts="1.1")) == "invalid_arguments"
    started = client.chat_startStream(channel="D0ALICE", thread_ts="1.1", markdown_text="Hel")
    assert started["ok"] and started["channel"] == "D0ALICE"
    ts = started["ts"]
    assert error_of(lambda: client.chat_appendStream(channel="D0ALICE", ts="9.9", markdown_text="x")) == (
        "message_not_found"
    )
    client.chat_appendStream(channel="D0ALICE", ts=ts, chunks=[{"type": "markdown_text", "text": "lo"}])
    client.chat_stopStream(channel="D0ALICE", ts=ts, markdown_text="!")
    assert fake.streams[ts].text == "Hello!"
    assert error_of(lambda: client.chat_appendStream(channel="D0ALICE", ts=ts, markdown_text="late")) == (
        "message_not_in_streaming_state"
    )
    assert error_of(lambda: client.chat_stopStream(channel="D0ALICE", ts=ts)) == "message_not_in_streaming_state"
    fake.errors["chat.startStream"] = "not_allowed"  # an older workspace: the caller posts the answer whole
    assert error_of(lambda: client.chat_startStream(channel="D0ALICE", thread_ts="1.1")) == "not_allowed"
    assert len(fake.calls_to("chat.startStream")) == 3  # every call recorded, failed ones too
