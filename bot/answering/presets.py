"""The preset a question runs with, and its fallbacks, in one place: a blank instruction means the reranker's
default, no collection means the configured default collection, no retrieval mode means hybrid."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

import store
from bot.answering.results import PresetSnapshot
from rerank import DEFAULT_INSTRUCTION
from store.models import DEFAULT_PRESET_INSTRUCTION, DEFAULT_RETRIEVAL_MODE, DEFAULT_TEAM


def instruction_or_default(text: str | None) -> str:
    """The instruction the reranker gets: the preset's own text, or the reranker's default when it is blank."""
    return (text or "").strip() or DEFAULT_INSTRUCTION


def snapshot(row: store.Preset, default_collection: str) -> PresetSnapshot:
    """A preset row's values as one question uses them, with every fallback applied."""
    return PresetSnapshot(
        id=row.id,
        name=row.name,
        version=row.version,
        instruction=instruction_or_default(row.instruction),
        candidates_k=row.candidates_k,
        top_n=row.top_n,
        min_score=row.min_score,
        collection=row.collection or default_collection,
        retrieval_mode=row.retrieval_mode or DEFAULT_RETRIEVAL_MODE,
        suggested_prompts=tuple(
            (str(p.get("title") or ""), str(p.get("message") or ""))
            for p in (row.suggested_prompts or [])
            if isinstance(p, dict) and p.get("message")
        ),
        follow_ups=row.follow_ups if row.follow_ups is not None else True,
        escalation_usergroup=row.escalation_usergroup or None,
        escalation_channel=row.escalation_channel or None,
        allow_external=bool(row.allow_external),
        reply_visibility=row.reply_visibility or "thread",
        source_filter=_names(row.source_filter),
        tag_filter=_names(row.tag_filter),
    )


def _names(values: object) -> tuple[str, ...]:
    """A filter column (a JSON list of names, or None) as the snapshot holds it: blanks dropped."""
    if not isinstance(values, list):
        return ()
    return tuple(dict.fromkeys(str(v).strip() for v in values if str(v).strip()))


class Presets:
    """Reads presets from the database as snapshots."""

    def __init__(self, sessions: sessionmaker[Session], default_collection: str) -> None:
        self._sessions = sessions
        self.default_collection = default_collection

    def resolve(self, channel: str | None = None, name: str | None = None) -> PresetSnapshot:
        """The preset named `name` when given (ValueError when there is none), else the one bound to `channel`,
        else the default preset."""
        with self._sessions() as session:
            row = store.preset_named(session, name) if name else store.preset_for(session, channel)
            return snapshot(row, self.default_collection)

    def ensure(self, name: str, collection: str) -> PresetSnapshot:
        """The preset named `name`, created on first use with the stock instruction and sizes and searching
        `collection`; one that exists is left as it is (an admin may have tuned it)."""
        with self._sessions() as session:
            row = session.scalar(select(store.Preset).where(store.Preset.name == name))
            if row is None:
                row = store.Preset(
                    name=name, team=DEFAULT_TEAM, instruction=DEFAULT_PRESET_INSTRUCTION, collection=collection
                )
                session.add(row)
                try:
                    session.commit()
                except IntegrityError:  # another process created it meanwhile: theirs stands
                    session.rollback()
                    row = store.preset_named(session, name)
            return snapshot(row, self.default_collection)

    def remove(self, name: str, collection: str) -> bool:
        """Delete the preset named `name` with its channel bindings, only when it searches `collection` (a
        preset someone pointed elsewhere is theirs); True when one was deleted."""
        with self._sessions() as session:
            row = session.scalar(select(store.Preset).where(store.Preset.name == name))
            if row is None or row.collection != collection:
                return False
            session.delete(row)
            session.commit()
            return True
