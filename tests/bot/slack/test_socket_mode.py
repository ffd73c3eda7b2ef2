"""Socket Mode: with SLACK_APP_TOKEN set, `ragbot serve`'s wiring connects out and runs the same handlers."""

from __future__ import annotations

import time

from tests.bot.slack.conftest import mention
from tests.fake_slack import FakeSocketModeServer


def test_socket_mode_receives_a_mention_acks_it_and_answers_in_the_thread(
    env, monkeypatch, fake_slack, embedder
) -> None:
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
    try:
        assert service.socket_mode is not None
        service.start_socket_mode()
        [opened] = fake_slack.wait_for("apps.connections.open")
        assert opened.token == "xapp-socket"  # the app-level token opens the connection
        socket.push(
            {
                "envelope_id": "env-1",
                "type": "events_api",
                "accepts_response_payload": False,
                "retry_attempt": 0,
                "retry_reason": "",
                "payload": {
                    "type": "event_callback",
                    "team_id": "T1",
                    "api_app_id": "A1",
                    "event_id": "EvSock",
                    "event_time": int(time.time()),
                    "event": mention("How do I configure SCIM provisioning?"),
                },
            }
        )
        socket.wait_for_ack("env-1")
        [reply] = fake_slack.wait_for("chat.postMessage")
        assert reply.token == "xoxb-socket" and reply.args["thread_ts"] == "1700000001.000100"
        assert any(b["type"] == "context_actions" for b in reply.args["blocks"])
    finally:
        service.close()
        socket.stop()
        parts.close()
