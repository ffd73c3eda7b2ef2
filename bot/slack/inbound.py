"""What a Slack message brings besides its text: who sent it (a user of another organisation in a Slack Connect
channel) and which files it carries (ragbot does not read them, and says so)."""

from __future__ import annotations

import re
from typing import Any

_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")

MAX_FILE_NAMES = 10  # named in the answer; more are counted
EXTERNAL_REFUSAL = (
    "Sorry, I only answer members of this workspace, so I can't help with this question here. "
    "Someone from the team in this channel can take it from here."
)


def question_text(text: str) -> str:
    """A message's text without user mentions (the bot's among them), white space collapsed."""
    return " ".join(_MENTION.sub(" ", text or "").split())


def external_team(body: dict[str, Any], event: dict[str, Any]) -> str | None:
    """The sender's team when the message comes from another organisation in a Slack Connect channel: the
    envelope says the channel is shared and the event's `user_team` (or `source_team`) is not the envelope's
    `team_id`. None for members of this workspace (and when the payload does not say)."""
    if body.get("is_ext_shared_channel") is not True:
        return None
    home = body.get("team_id")
    team = event.get("user_team") or event.get("source_team")
    if isinstance(team, str) and team and isinstance(home, str) and home and team != home:
        return team
    return None


def file_names(event: dict[str, Any]) -> list[str]:
    """The names of the files a message carries (`files`, as in a `file_share` message), in order."""
    files = event.get("files")
    if not isinstance(files, list):
        return []
    names = []
    for file in files:
        if isinstance(file, dict):
            name = next((file[k] for k in ("name", "title") if isinstance(file.get(k), str) and file[k].strip()), None)
            names.append(name.strip() if name else "an unnamed file")
    return names


def listed(names: list[str]) -> str:
    """File names for a sentence: "a.pdf", "a.pdf and b.png", "a.pdf, b.png and 3 more"."""
    shown = [f"“{n}”" for n in names[:MAX_FILE_NAMES]]
    if len(names) > MAX_FILE_NAMES:
        shown.append(f"{len(names) - MAX_FILE_NAMES} more")
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def unread_files_note(names: list[str]) -> str:
    """The line an answer carries when its question came with files."""
    return f"📎 Attachments are not read: this answer comes from your message's text only, not from {listed(names)}."


def files_only_reply(names: list[str]) -> str:
    """The reply to a message that is only files: never a silent drop."""
    return (
        f"I can't read attachments ({listed(names)}), so I have nothing to answer yet. "
        "Please ask your question in words, e.g. “how do I set up SAML with Okta?”"
    )
