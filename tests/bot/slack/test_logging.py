"""LOG_FORMAT=json on the Slack path: a failed answer's log line carries its Slack message and ranking id."""

from __future__ import annotations

import json
import logging

from bot.app.logs import JsonFormatter
from tests.bot.slack.conftest import mention

TS = "1700000001.000100"  # mention()'s default message


def test_a_failed_answer_logs_one_json_line_with_its_slack_message_and_ranking(slack, fake_slack, monkeypatch, caplog):
    def broken_search(*args, **kwargs):
        raise ConnectionError("Qdrant went away")

    monkeypatch.setattr(slack.parts.retriever, "search", broken_search)
    with caplog.at_level(logging.ERROR, logger="bot.slack.listeners"):
        slack.event(mention("What is SCIM?"))
        fake_slack.wait_for("chat.postMessage")
    [record] = [r for r in caplog.records if r.name == "bot.slack.listeners"]
    line = json.loads(JsonFormatter().format(record))
    assert (line["level"], line["logger"], line["slack_ts"]) == ("ERROR", "bot.slack.listeners", TS)
    assert line["slack_channel"] and isinstance(line["ranking_id"], int)
    assert "Qdrant went away" in line["exception"] and "\n" not in JsonFormatter().format(record)
