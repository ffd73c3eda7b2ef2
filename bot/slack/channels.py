"""The channels the bot is in, by name: the admin app binds presets to channels and shows rankings per channel,
and a bare id (C0123ABCD) says little to the person choosing.

Slack's `users.conversations` lists the calling token's own conversations, so with the bot token it returns just
the channels the bot is in (the only ones it answers in). `conversations.list` would page through every channel
of the workspace to keep the few with `is_member`, at a stricter rate tier (2 against 3): many more calls for the
same answer in a large workspace. Scopes: channels:read (public channels), groups:read (private ones).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.slack.app import web_client

log = logging.getLogger(__name__)

TTL_S = 300.0  # names change rarely; a new channel shows up after this, or at once with refresh()
MIN_REFRESH_S = 10.0  # a refresh sooner than this after the last fetch reuses it (repeated clicks cost no calls)
PAGE_LIMIT = 200  # Slack recommends at most 200 per page
MAX_PAGES = 100  # 20,000 channels: past that, a cursor that never ends is a bug, not a workspace
TIMEOUT_S = 10  # a page renders after at most this long when Slack does not answer


class ChannelDirectory:
    """Channel id -> name for the public and private, unarchived channels the bot is in.

    Args:
        client: a Web API client with the bot token (its retry handler waits out 429s per `Retry-After`).
        ttl_s: how long fetched names are served before the next `names()` fetches again.
        clock: seconds, monotonic (tests move it).

    One fetch at a time: a caller arriving during a fetch waits for it and reads its result. A failed fetch
    (a missing scope, a revoked token, Slack unreachable, 429s past the retries) is logged as a warning and keeps
    the names known before (none at first) until the next try, so the admin app shows ids and still works.
    """

    def __init__(self, client: WebClient, *, ttl_s: float = TTL_S, clock: Callable[[], float] = time.monotonic):
        self._client = client
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._names: Mapping[str, str] = MappingProxyType({})
        self._fetched_at: float | None = None

    @classmethod
    def for_token(cls, bot_token: str, api_url: str, **kwargs: float) -> ChannelDirectory:
        """A directory over its own Web API client (at `api_url`, i.e. SLACK_API_URL)."""
        client = web_client(bot_token, api_url)
        client.timeout = TIMEOUT_S
        return cls(client, **kwargs)

    def names(self) -> Mapping[str, str]:
        """The cached names, fetched first when older than the TTL."""
        with self._lock:
            if self._fetched_at is None or self._clock() - self._fetched_at >= self._ttl_s:
                self._fetch()
            return self._names

    def refresh(self) -> Mapping[str, str]:
        """Fetch now (the bot was just invited somewhere), unless the last fetch is under MIN_REFRESH_S old."""
        with self._lock:
            if self._fetched_at is None or self._clock() - self._fetched_at >= MIN_REFRESH_S:
                self._fetch()
            return self._names

    def _fetch(self) -> None:
        self._fetched_at = self._clock()  # a failure is not retried before the TTL either: no call per page view
        try:
            names = self._pages()
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            hint = " (give the bot token the channels:read and groups:read scopes)" if error == "missing_scope" else ""
            log.warning("Slack would not list the bot's channels: %s%s; the admin app shows channel ids.", error, hint)
            return
        except (SlackClientError, OSError) as exc:
            log.warning("Could not reach Slack to list the bot's channels (%s); the admin app shows channel ids.", exc)
            return
        self._names = MappingProxyType(names)

    def _pages(self) -> dict[str, str]:
        names: dict[str, str] = {}
        cursor = None
        for _ in range(MAX_PAGES):
            response = self._client.users_conversations(
                types="public_channel,private_channel", exclude_archived=True, limit=PAGE_LIMIT, cursor=cursor
            )
            for channel in response.get("channels") or []:
                if channel.get("is_member") is False or channel.get("is_archived"):
                    continue
                if isinstance(channel.get("id"), str) and isinstance(channel.get("name"), str):
                    names[channel["id"]] = channel["name"]
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return names
        log.warning("users.conversations returned more than %d pages; the admin app shows the first ones.", MAX_PAGES)
        return names
