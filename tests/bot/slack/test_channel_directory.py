"""The bot's channels by name (issue 16, "Channels by name"), against the local fake of Slack's Web API: paged
`users.conversations`, the cache and its refresh, 429s waited out, Slack's errors leaving ids only."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
import yaml

from bot.slack.channels import MIN_REFRESH_S, PAGE_LIMIT, TTL_S, ChannelDirectory
from tests.fake_slack import FakeSlack


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def directory(fake: FakeSlack, clock: Clock | None = None) -> ChannelDirectory:
    return ChannelDirectory.for_token("xoxb-test", fake.api_url, clock=clock or Clock())


def test_names_by_id_across_pages_only_the_bots_unarchived_channels(fake_slack: FakeSlack) -> None:
    for i in range(PAGE_LIMIT + 50):  # two pages of the bot's channels
        fake_slack.channel(f"C{i:09d}", f"team-{i}")
    fake_slack.channel("G000000001", "secret-deals", private=True)
    fake_slack.channel("C999999991", "random", member=False)
    fake_slack.channel("C999999992", "old-launch", archived=True)

    names = directory(fake_slack).names()

    assert names["C000000000"] == "team-0"
    assert names[f"C{PAGE_LIMIT + 49:09d}"] == f"team-{PAGE_LIMIT + 49}"  # from the second page
    assert names["G000000001"] == "secret-deals"
    assert "C999999991" not in names and "C999999992" not in names
    assert len(names) == PAGE_LIMIT + 51
    calls = fake_slack.calls_to("users.conversations")
    assert len(calls) == 2
    assert calls[0].args["types"] == "public_channel,private_channel"
    assert calls[0].args["exclude_archived"] == "1"
    assert int(calls[0].args["limit"]) <= 200
    assert calls[0].token == "xoxb-test"
    assert "cursor" not in calls[0].args and calls[1].args["cursor"] == f"next:{PAGE_LIMIT}"


def test_a_cache_hit_asks_slack_nothing_until_the_ttl_passes(fake_slack: FakeSlack) -> None:
    fake_slack.channel("C0SALES001", "sales")
    clock = Clock()
    channels = directory(fake_slack, clock)
    assert channels.names() == {"C0SALES001": "sales"}
    fake_slack.channel("C0LEGAL001", "legal")
    clock.now += TTL_S - 1
    assert channels.names() == {"C0SALES001": "sales"}
    assert len(fake_slack.calls_to("users.conversations")) == 1
    clock.now += 1
    assert channels.names() == {"C0SALES001": "sales", "C0LEGAL001": "legal"}
    assert len(fake_slack.calls_to("users.conversations")) == 2


def test_refresh_refetches_but_not_on_repeated_clicks(fake_slack: FakeSlack) -> None:
    fake_slack.channel("C0SALES001", "sales")
    clock = Clock()
    channels = directory(fake_slack, clock)
    channels.names()
    fake_slack.channel("C0LEGAL001", "legal")  # the bot was just invited
    clock.now += MIN_REFRESH_S
    assert channels.refresh()["C0LEGAL001"] == "legal"
    assert channels.refresh()["C0LEGAL001"] == "legal"  # a second click at once: no call
    assert len(fake_slack.calls_to("users.conversations")) == 2


def test_one_fetch_at_a_time(fake_slack: FakeSlack) -> None:
    fake_slack.channel("C0SALES001", "sales")
    fake_slack.rate_limit_next["users.conversations"] = 1  # the first fetch takes a second (Retry-After: 1)
    channels = directory(fake_slack)
    results: list[dict[str, str]] = []
    threads = [threading.Thread(target=lambda: results.append(dict(channels.names()))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == [{"C0SALES001": "sales"}] * 4
    assert len(fake_slack.calls_to("users.conversations")) == 1  # the other three waited for it


def test_a_429_is_waited_out_per_retry_after(fake_slack: FakeSlack) -> None:
    fake_slack.channel("C0SALES001", "sales")
    fake_slack.rate_limit_next["users.conversations"] = 1
    started = time.monotonic()
    assert directory(fake_slack).names() == {"C0SALES001": "sales"}
    assert time.monotonic() - started >= 1.0  # Retry-After: 1
    assert len(fake_slack.calls_to("users.conversations:429")) == 1
    assert len(fake_slack.calls_to("users.conversations")) == 1


def test_rate_limited_past_the_retries_leaves_ids_only(fake_slack: FakeSlack, caplog) -> None:
    fake_slack.channel("C0SALES001", "sales")
    fake_slack.rate_limit_next["users.conversations"] = 10
    with caplog.at_level(logging.WARNING, logger="bot.slack.channels"):
        assert directory(fake_slack).names() == {}
    assert "ratelimited" in caplog.text


@pytest.mark.parametrize("error", ["missing_scope", "invalid_auth"])
def test_a_slack_error_gives_an_empty_directory_and_a_warning(fake_slack: FakeSlack, caplog, error: str) -> None:
    fake_slack.channel("C0SALES001", "sales")
    fake_slack.errors["users.conversations"] = error
    clock = Clock()
    channels = directory(fake_slack, clock)
    with caplog.at_level(logging.WARNING, logger="bot.slack.channels"):
        assert channels.names() == {}
        assert channels.names() == {}  # the failure is not retried on every page view
    assert len(fake_slack.calls_to("users.conversations")) == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and error in warnings[0]
    if error == "missing_scope":
        assert "channels:read" in warnings[0] and "groups:read" in warnings[0]
    # fixed (scope added): the next fetch after the TTL finds the names
    del fake_slack.errors["users.conversations"]
    clock.now += TTL_S
    assert channels.names() == {"C0SALES001": "sales"}


def test_a_failed_refresh_keeps_the_names_known_before(fake_slack: FakeSlack, caplog) -> None:
    fake_slack.channel("C0SALES001", "sales")
    clock = Clock()
    channels = directory(fake_slack, clock)
    channels.names()
    fake_slack.errors["users.conversations"] = "internal_error"
    clock.now += MIN_REFRESH_S
    with caplog.at_level(logging.WARNING, logger="bot.slack.channels"):
        assert channels.refresh() == {"C0SALES001": "sales"}
    assert "internal_error" in caplog.text


def test_slack_unreachable_leaves_ids_only(caplog) -> None:
    fake = FakeSlack().start()
    url = fake.api_url
    fake.stop()
    with caplog.at_level(logging.WARNING, logger="bot.slack.channels"):
        assert ChannelDirectory.for_token("xoxb-test", url).names() == {}
    assert "Could not reach Slack" in caplog.text


def test_the_manifest_grants_the_scopes_users_conversations_needs() -> None:
    manifest = yaml.safe_load((Path(__file__).resolve().parents[3] / "slack-app-manifest.yml").read_text())
    assert {"channels:read", "groups:read"} <= set(manifest["oauth_config"]["scopes"]["bot"])
