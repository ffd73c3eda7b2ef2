"""Who ragbot is in its workspace, from `auth.test` asked once: its bot user id and bot id (to tell its own answers
in a thread from people's messages) and the workspace's team id (a stream names its recipient's team). Answer jobs
run outside any event's context, so they cannot read these from a payload."""

from __future__ import annotations

import logging
import threading
from typing import Any

from slack_sdk import WebClient

log = logging.getLogger(__name__)


class BotIdentity:
    """`auth.test`'s answer, asked on first use and kept; while Slack cannot say, each call asks again."""

    def __init__(self, client: WebClient) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._auth: dict[str, Any] | None = None

    def _get(self, name: str) -> str | None:
        with self._lock:
            if self._auth is None:
                try:
                    self._auth = dict(self._client.auth_test().data)  # type: ignore[arg-type]
                except Exception as exc:
                    log.warning("auth.test failed; ragbot cannot tell its own id or team yet: %s", exc)
                    return None
            value = self._auth.get(name)
            return value if isinstance(value, str) and value else None

    def ids(self) -> tuple[str | None, str | None]:
        """(bot user id, bot id); (None, None) while Slack cannot say."""
        return self._get("user_id"), self._get("bot_id")

    def team_id(self) -> str | None:
        """The workspace the bot is installed in."""
        return self._get("team_id")
