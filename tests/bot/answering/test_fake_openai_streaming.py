"""The OpenAI-compatible stand-in streams like the real servers: the `openai` client reads its server-sent
events into the reply, piece by piece."""

from __future__ import annotations

import httpx
import openai

from tests.fake_openai import FakeOpenAI, serve_fake_openai, stream_pieces


def test_a_streamed_completion_reads_back_as_the_reply_in_pieces() -> None:
    with serve_fake_openai() as base_url:
        client = openai.OpenAI(base_url=base_url, api_key="test-key")
        chunks = list(
            client.chat.completions.create(
                model="qwen",
                messages=[{"role": "user", "content": "Which plan has SSO?"}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        [request] = FakeOpenAI.requests
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == FakeOpenAI.reply and len(pieces) == len(stream_pieces(FakeOpenAI.reply)) > 3
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == len(pieces)
    assert request["body"]["stream"] is True and request["auth"] == "Bearer test-key"


def test_the_wire_format_is_data_lines_ending_with_done() -> None:
    with serve_fake_openai() as base_url:
        body = {"model": "qwen", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        response = httpx.post(f"{base_url}/chat/completions", json=body)
    assert response.headers["content-type"] == "text/event-stream"
    events = [line for line in response.text.split("\n\n") if line]
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"


def test_a_broken_stream_ends_without_a_finish_reason() -> None:
    """A server that goes away mid-answer: the client just stops reading, and only the missing `finish_reason`
    tells the caller the answer is incomplete."""
    with serve_fake_openai() as base_url:
        FakeOpenAI.break_stream_after = 2
        client = openai.OpenAI(base_url=base_url, api_key="test-key", max_retries=0)
        chunks = list(
            client.chat.completions.create(model="qwen", messages=[{"role": "user", "content": "hi"}], stream=True)
        )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "".join(stream_pieces(FakeOpenAI.reply)[:2])
    assert all(c.choices[0].finish_reason is None for c in chunks)
