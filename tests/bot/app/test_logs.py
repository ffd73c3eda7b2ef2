"""LOG_FORMAT=json switches the root handlers to one JSON object a line."""

from __future__ import annotations

import logging

from bot.app.logs import JsonFormatter, configure_logging


def test_json_format_switches_the_root_handlers_and_text_leaves_them(monkeypatch) -> None:
    root = logging.getLogger()
    handler = logging.StreamHandler()
    monkeypatch.setattr(root, "handlers", [handler])
    configure_logging("text")
    assert not isinstance(handler.formatter, JsonFormatter)
    configure_logging("json")
    assert isinstance(handler.formatter, JsonFormatter)
