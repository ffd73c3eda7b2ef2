"""Log lines as text (the default) or as one JSON object a line (`LOG_FORMAT=json`) for log collectors; JSON
lines carry the fields a record was given (`slack_channel`, `slack_ts`, `ranking_id`) when they are known."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

FIELDS = ("slack_channel", "slack_ts", "ranking_id")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({field: getattr(record, field) for field in FIELDS if getattr(record, field, None) is not None})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure_logging(log_format: str) -> None:
    """Switch the root logger's handlers to `log_format` ("text" leaves them as they are)."""
    if log_format != "json":
        return
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.WARNING)
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter())
