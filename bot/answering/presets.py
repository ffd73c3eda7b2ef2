"""The preset a question runs with, and its fallbacks, in one place: a blank instruction means the reranker's
default, no collection means the configured default collection, no retrieval mode means hybrid."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

import store
from bot.answering.results import PresetSnapshot
from rerank import DEFAULT_INSTRUCTION
from store.models import DEFAULT_RETRIEVAL_MODE


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
    )


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
