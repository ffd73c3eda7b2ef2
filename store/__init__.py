"""Persistence for ragbot: SQLAlchemy models, engine/session helpers, migrations runner, and queries.

No business logic lives here, and nothing here reads settings: pass ``settings.database_url`` in.
"""

from store.db import DatabaseError, make_engine, mask_url, session_factory, upgrade_database
from store.models import (
    Base,
    ChannelBinding,
    Feedback,
    Preset,
    RankedCandidate,
    RankingLog,
)
from store.queries import add_feedback, bind_channel, default_preset, preset_for, record_ranking

__all__ = [
    "Base",
    "ChannelBinding",
    "DatabaseError",
    "Feedback",
    "Preset",
    "RankedCandidate",
    "RankingLog",
    "add_feedback",
    "bind_channel",
    "default_preset",
    "make_engine",
    "mask_url",
    "preset_for",
    "record_ranking",
    "session_factory",
    "upgrade_database",
]
