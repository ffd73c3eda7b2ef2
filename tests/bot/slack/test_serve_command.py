"""`ragbot serve` as an operator starts it: a real process, the HTTP endpoint and /healthz."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from slack_sdk.signature import SignatureVerifier

from tests.bot.slack.conftest import SIGNING_SECRET, mention


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_health(process: subprocess.Popen, port: int) -> dict:
    deadline = time.time() + 120
    while True:
        assert process.poll() is None, process.stdout.read()
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).json()
        except httpx.TransportError:
            assert time.time() < deadline, "ragbot serve did not come up"
            time.sleep(0.3)


def test_serve_answers_slack_over_http_and_reports_health(env: Path, fake_slack) -> None:
    port = free_port()
    command = Path(sys.executable).with_name("ragbot")
    process = subprocess.Popen(
        [str(command), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env={
            **os.environ,
            "SLACK_BOT_TOKEN": "xoxb-serve",
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": fake_slack.api_url,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert wait_for_health(process, port) == {"status": "ok", "slack_http": True, "admin": True}

        body = json.dumps({"type": "event_callback", "event_id": "EvServe", "event": mention("What is SCIM?")})
        ts = str(int(time.time()))
        signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=ts, body=body)
        response = httpx.post(
            f"http://127.0.0.1:{port}/slack/events",
            content=body,
            headers={
                "Content-Type": "application/json",
                "X-Slack-Request-Timestamp": ts,
                "X-Slack-Signature": signature,
            },
        )
        assert response.status_code == 200
        [reply] = fake_slack.wait_for("chat.postMessage")
        assert reply.token == "xoxb-serve" and reply.args["thread_ts"] == "1700000001.000100"

        ready = httpx.get(f"http://127.0.0.1:{port}/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ok", "database": "ok", "index": "ok", "reranker": "ok"}
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert 'ragbot_slack_events_total{kind="mention",outcome="queued"} 1.0' in metrics
        assert 'ragbot_answers_total{outcome="ok"} 1.0' in metrics
        assert 'ragbot_stage_seconds_count{stage="rerank"} 1.0' in metrics
        assert "ragbot_queue_depth 0.0" in metrics

        # a second `ragbot serve` on the same embedded store refuses to start, saying who holds it
        second = subprocess.run(
            [str(command), "serve", "--port", str(free_port())],
            env={
                **os.environ,
                "SLACK_BOT_TOKEN": "xoxb-serve",
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "SLACK_API_URL": fake_slack.api_url,
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 1, second.stderr
        assert "is in use by process" in " ".join(second.stderr.split()) and "Traceback" not in second.stderr
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0  # SIGTERM: a clean exit
    assert f"ragbot is listening on http://127.0.0.1:{port} (Slack over HTTP, admin)" in output
    assert "Traceback" not in output


def test_serve_without_slack_runs_the_admin_app_and_says_slack_is_not_configured(env: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("ragbot")), "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        health = wait_for_health(process, port)
        assert health == {"status": "ok", "slack_http": False, "admin": True}
        assert httpx.get(f"http://127.0.0.1:{port}/admin/login").status_code == 200
        assert httpx.post(f"http://127.0.0.1:{port}/slack/events", content=b"{}").status_code == 404
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert "admin only: Slack is not configured" in output and "Traceback" not in output


def test_a_rejected_bot_token_is_a_clear_error(env: Path, fake_slack, monkeypatch, embedder) -> None:
    import pytest

    from bot.slack.app import SlackConfigError
    from tests.bot.slack.conftest import start_service

    fake_slack.auth_error = "invalid_auth"
    with pytest.raises(SlackConfigError, match=r"Slack did not accept SLACK_BOT_TOKEN.*invalid_auth"):
        start_service(monkeypatch, fake_slack, embedder)
