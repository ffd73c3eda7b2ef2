"""A running `ragbot serve` stack for scenario tests: the real Bolt app behind the real HTTP endpoint
(uvicorn, FastAPI), a local fake of Slack's Web API, the real pipeline on the sample knowledge base."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn
from slack_sdk.signature import SignatureVerifier

from tests.fake_slack import BOT_USER_ID, FakeSlack

SIGNING_SECRET = "test-signing-secret"


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()


class RunningServer:
    """`ragbot serve`'s web app on a free port, and helpers that send what Slack sends, signed."""

    def __init__(self, service: Any) -> None:
        self.service = service
        config = uvicorn.Config(service.http, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.time() + 30
        while not self._server.started:
            if time.time() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def stop(self) -> None:
        self.http.close()
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self.service.close()

    # -- sending ------------------------------------------------------------------------------------
    def post(
        self,
        body: str,
        content_type: str,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
        retry_num: int | None = None,
    ) -> httpx.Response:
        ts = str(timestamp if timestamp is not None else int(time.time()))
        signature = signature or SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=ts, body=body)
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature
            or SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=ts, body=body),
        }
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        return self.http.post("/slack/events", content=body.encode(), headers=headers)

    def event(
        self, event: dict[str, Any], event_id: str = "Ev1", envelope: dict[str, Any] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """An Events API request for `event`; `envelope` adds fields around it (e.g. `is_ext_shared_channel`)."""
        body = {
            "token": "legacy",
            "team_id": "T1",
            "api_app_id": "A1",
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "authorizations": [{"team_id": "T1", "user_id": BOT_USER_ID, "is_bot": True}],
            "event": event,
            **(envelope or {}),
        }
        return self.post(json.dumps(body), "application/json", **kwargs)

    def interaction(self, payload: dict[str, Any]) -> httpx.Response:
        return self.post(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")

    def command(self, **fields: str) -> httpx.Response:
        return self.post(urlencode(fields), "application/x-www-form-urlencoded")


def mention(text: str, ts: str = "1700000001.000100", channel: str = "C0SALES01", **extra: Any) -> dict[str, Any]:
    return {
        "type": "app_mention",
        "user": "U0ALICE",
        "text": f"<@{BOT_USER_ID}> {text}",
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
        **extra,
    }


def start_service(
    monkeypatch: pytest.MonkeyPatch, fake: FakeSlack, embedder: Any, workers: int = 4, **provided: Any
) -> Any:
    """`ragbot serve`'s own wiring (bot.app.web.build_service) over this test's environment; `provided` are
    components shared with another bot "process" of the same test."""
    from bot.app import Components
    from bot.app.web import build_service
    from bot.settings import Settings

    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("SLACK_API_URL", fake.api_url)
    monkeypatch.setenv("SLACK_WORKERS", str(workers))
    parts = Components(Settings(), embedder=embedder, **provided)
    return parts, build_service(parts)


@contextmanager
def running_service(monkeypatch: pytest.MonkeyPatch, fake: FakeSlack, embedder: Any) -> Iterator[RunningServer]:
    """`ragbot serve` over this test's environment (set variables first), served until the block ends."""
    parts, service = start_service(monkeypatch, fake, embedder)
    server = RunningServer(service)
    server.parts = parts  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.stop()
        parts.close()


@pytest.fixture
def slack(env: Path, monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, embedder: Any) -> Iterator[RunningServer]:
    with running_service(monkeypatch, fake_slack, embedder) as server:
        yield server


@pytest.fixture
def llm_slack(
    env: Path, monkeypatch: pytest.MonkeyPatch, fake_slack: FakeSlack, embedder: Any, llm_server: str
) -> Iterator[RunningServer]:
    """The service with an OpenAI-compatible LLM that streams (tests/fake_openai.py)."""
    monkeypatch.setenv("LLM_BASE_URL", llm_server)
    with running_service(monkeypatch, fake_slack, embedder) as server:
        yield server


def logged_candidate(rank: int, section: str, citation: int | None, used: bool | None = None):
    """A candidate as the ranking log holds it (one section of sso.md); `used` defaults to being cited."""
    import store

    return store.LoggedCandidate(
        point_id=f"p{rank}",
        doc_id="sso.md",
        title="SSO",
        source="https://docs.example/sso",
        section=section,
        text="…",
        retrieval_rank=rank,
        retrieval_score=0.5,
        rerank_rank=rank,
        rerank_score=1 - rank / 10,
        used=citation is not None if used is None else used,
        citation=citation,
    )
