"""The audit log: who changed presets, channel bindings, labels and users, or asked for a source sync, when, and
from what to what.

`record` adds the entry to the caller's session, so it commits or rolls back with the change it describes.
No HTTP here; the page is admin/routes/audit.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store import AuditEntry

PAGE_SIZE = 50


class Action(str, Enum):
    """What an entry records; the value is what the table stores (and what `str()` gives, as a StrEnum would:
    ragbot still runs on Python 3.10, which has no StrEnum)."""

    PRESET_CREATE = "preset.create"
    PRESET_UPDATE = "preset.update"
    PRESET_RESTORE = "preset.restore"
    BINDING_CREATE = "binding.create"
    BINDING_MOVE = "binding.move"
    BINDING_DELETE = "binding.delete"
    LABEL_SET = "label.set"
    LABEL_CLEAR = "label.clear"
    USER_CREATE = "user.create"
    USER_DEACTIVATE = "user.deactivate"
    USER_ACTIVATE = "user.activate"
    USER_PASSWORD = "user.password"
    USER_TEAM = "user.team"
    USER_SSO_LINK = "user.sso_link"  # an invited user's first single sign-on took their row (matched by email)
    TEAM_CREATE = "team.create"
    TEAM_RENAME = "team.rename"
    USER_ROLE = "user.role"  # an admin (or the identity provider's groups, as "sso") changed a user's role
    SOURCE_SYNC = "source.sync"  # "Sync now": the scheduler is asked to sync the source

    def __str__(self) -> str:
        return self.value


def _plain(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A JSON-safe copy (dates and other objects as text)."""
    return None if values is None else json.loads(json.dumps(dict(values), default=str))


def record(
    session: Session,
    actor: str,
    action: Action,
    target: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Add one entry to the session (the caller commits it with the change). `before`/`after`: the changed fields
    as they were and as they are now; None for a thing that did not exist before or does not any more. Never pass
    secrets (a password change is recorded as that, without the hash)."""
    entry = AuditEntry(actor=actor, action=str(action), target=target, before=_plain(before), after=_plain(after))
    session.add(entry)
    return entry


@dataclass(frozen=True)
class Change:
    """One field of an entry: its value before and after, as text ("" when absent)."""

    field: str
    before: str
    after: str


def _text(value: Any) -> str:
    if value is None:
        return "—"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def changes(entry: AuditEntry) -> list[Change]:
    """The entry's fields, in the order they were recorded, each with its old and new value."""
    before, after = entry.before or {}, entry.after or {}
    fields = list(dict.fromkeys([*before, *after]))
    return [Change(f, _text(before[f]) if f in before else "", _text(after[f]) if f in after else "") for f in fields]


@dataclass
class AuditPage:
    entries: list[AuditEntry]
    number: int
    pages: int
    total: int


def list_entries(session: Session, actor: str | None = None, action: str | None = None, page: int = 1) -> AuditPage:
    """One page of entries, newest first, optionally of one actor and one action."""
    where = []
    if actor:
        where.append(AuditEntry.actor == actor)
    if action:
        where.append(AuditEntry.action == action)
    total = session.scalar(select(func.count(AuditEntry.id)).where(*where)) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    entries = session.scalars(
        select(AuditEntry)
        .where(*where)
        .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    ).all()
    return AuditPage(list(entries), page, pages, total)


def actors(session: Session) -> list[str]:
    """Everyone the log names, for the filter."""
    return list(session.scalars(select(AuditEntry.actor).distinct().order_by(AuditEntry.actor)))
