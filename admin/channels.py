"""Channel names beside channel ids. The admin app never calls Slack: the composition root may hand it a directory
(the Slack adapter's, when a bot token is set); without one every page shows ids, as before."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from fastapi import Request

from admin.presets import CHANNEL_RE


class ChannelDirectory(Protocol):
    """Channel id -> name for the channels the bot is in; cheap to call (cached by its owner)."""

    def names(self) -> Mapping[str, str]: ...

    def refresh(self) -> Mapping[str, str]:
        """Fetch again now (an admin just invited the bot somewhere)."""
        ...


def directory(request: Request) -> ChannelDirectory | None:
    return request.app.state.channels


def channel_names(request: Request) -> Mapping[str, str]:
    channels = directory(request)
    return channels.names() if channels is not None else {}


def channel_label(request: Request, channel_id: str) -> str:
    """ "#sales (C0123ABCD)" where the name is known, else the id alone."""
    name = channel_names(request).get(channel_id)
    return f"#{name} ({channel_id})" if name else channel_id


def channel_choices(request: Request) -> list[tuple[str, str]]:
    """(id, name) of the bot's channels, by name, for the binding form."""
    return sorted(channel_names(request).items(), key=lambda item: (item[1].lower(), item[0]))


def channel_id_of(request: Request, typed: str) -> str:
    """The id for what was typed: a known channel's name ("#sales" or "sales") becomes its id; anything else is
    returned as typed, for the id check to judge."""
    typed = typed.strip()
    if CHANNEL_RE.match(typed):  # an id, even where some channel is named like one
        return typed
    wanted = typed.removeprefix("#").lower()
    matches = [cid for cid, name in channel_names(request).items() if name.lower() == wanted]
    return matches[0] if len(matches) == 1 else typed
