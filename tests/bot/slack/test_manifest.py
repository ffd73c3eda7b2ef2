"""The Slack app manifest users paste asks for what the code uses: the events its listeners take, the scopes of the
Web API methods it calls, the assistant pane, and the slash command ragbot answers by default."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.settings import Settings

MANIFEST = Path(__file__).resolve().parents[3] / "slack-app-manifest.yml"


def manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))


def test_the_manifest_subscribes_to_every_event_the_listeners_take() -> None:
    events = set(manifest()["settings"]["event_subscriptions"]["bot_events"])
    assert {"app_mention", "message.im", "message.channels", "message.groups"} <= events  # questions, follow-ups
    assert {"assistant_thread_started", "assistant_thread_context_changed"} <= events  # the assistant pane


def test_the_manifest_grants_the_scopes_of_the_methods_ragbot_calls() -> None:
    scopes = set(manifest()["oauth_config"]["scopes"]["bot"])
    assert "assistant:write" in scopes  # assistant.threads.setStatus / setSuggestedPrompts / setTitle
    assert {"chat:write", "chat:write.public"} <= scopes  # answers, streams, escalations to a support channel
    assert {"channels:history", "groups:history", "im:history"} <= scopes  # a thread as a follow-up's conversation
    assert {"reactions:write", "commands", "app_mentions:read"} <= scopes


def test_the_manifest_turns_the_assistant_pane_on_and_names_the_default_command() -> None:
    data = manifest()
    assert data["features"]["assistant_view"]["assistant_description"]
    [command] = data["features"]["slash_commands"]
    assert command["command"] == Settings.model_fields["slack_slash_command"].default
    assert data["settings"]["interactivity"]["is_enabled"] is True  # buttons, the comment modal, escalation
