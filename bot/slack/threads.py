"""A Slack thread as a conversation: the turns before a follow-up (the users' messages and ragbot's own answers),
and whether a message in a thread ragbot answered in is a follow-up it should take without a mention."""

from __future__ import annotations

import logging
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from slack_sdk import WebClient

from bot.answering import Turn
from bot.answering.conversation import recent_turns
from bot.slack.identity import BotIdentity
from bot.slack.inbound import question_text

log = logging.getLogger(__name__)

_USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
# Messages people write (plain, with files, sent to the channel too); not joins, edits, deletions, bots.
PEOPLES_SUBTYPES = (None, "file_share", "thread_broadcast")
MAX_PAGES = 20  # 20 pages of 200 messages: a thread longer than that is cut at its oldest end anyway
PAGE_SIZE = 200


def _ts(value: Any) -> Decimal | None:
    try:
        return Decimal(value) if isinstance(value, str) else None
    except InvalidOperation:
        return None


def thread_messages(client: WebClient, channel: str, thread_ts: str) -> list[dict[str, Any]]:
    """Every message of a thread, oldest first, following `conversations.replies`' cursor."""
    messages: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        kwargs: dict[str, Any] = {"channel": channel, "ts": thread_ts, "limit": PAGE_SIZE}
        if cursor:
            kwargs["cursor"] = cursor
        response = client.conversations_replies(**kwargs)
        messages.extend(m for m in response.get("messages") or [] if isinstance(m, dict))
        cursor = (response.get("response_metadata") or {}).get("next_cursor")
        if not cursor or not response.get("has_more", True):
            break
    return messages


def turns_of(messages: list[dict[str, Any]], before_ts: str, bot_user_id: str | None, bot_id: str | None) -> list[Turn]:
    """The conversation in `messages` before the message `before_ts`: people's messages as user turns (mentions
    removed), ragbot's own answers as assistant turns; other bots, system messages and empty ones are left out."""
    limit = _ts(before_ts)
    turns: list[Turn] = []
    for message in messages:
        ts = _ts(message.get("ts"))
        if ts is None or (limit is not None and ts >= limit):
            continue  # the follow-up itself, and what came after it while it waited in the queue
        text = message.get("text") if isinstance(message.get("text"), str) else ""
        own = (bot_id is not None and message.get("bot_id") == bot_id) or (
            bot_user_id is not None and message.get("user") == bot_user_id
        )
        if own:
            if text.strip():
                turns.append(Turn("assistant", text.strip()))
            continue
        if message.get("bot_id") or message.get("subtype") not in PEOPLES_SUBTYPES:
            continue
        if cleaned := question_text(text):
            turns.append(Turn("user", cleaned))
    return turns


def thread_history(
    client: WebClient, identity: BotIdentity, channel: str, thread_ts: str, before_ts: str, max_tokens: int
) -> list[Turn]:
    """The thread before the message `before_ts` as a conversation within `max_tokens`; empty (with a warning)
    when Slack cannot give the thread: the follow-up is then answered on its own rather than not at all."""
    try:
        messages = thread_messages(client, channel, thread_ts)
    except Exception:
        log.warning("Could not read thread %s/%s for its conversation", channel, thread_ts, exc_info=True)
        return []
    bot_user_id, bot_id = identity.ids()
    return recent_turns(turns_of(messages, before_ts, bot_user_id, bot_id), max_tokens)


def addressed_to_someone_else(text: str, bot_user_id: str | None) -> bool:
    """A thread message that mentions people but not ragbot speaks to them, not to ragbot."""
    mentioned = set(_USER_MENTION.findall(text or ""))
    return bool(mentioned) and bot_user_id not in mentioned
