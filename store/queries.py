"""The few queries the pipeline needs. None of them commit: the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.models import (
    DEFAULT_PRESET_INSTRUCTION,
    DEFAULT_PRESET_NAME,
    DEFAULT_TEAM,
    RANKING_STATUSES,
    ChannelBinding,
    Feedback,
    LoggedCandidate,
    Preset,
    RankingLog,
    SlackEvent,
)

# Stored in RankingLog.preset_name / preset_version when a ranking ran without a preset.
NO_PRESET_NAME = "(none)"
NO_PRESET_VERSION = 0

_CANDIDATE_FIELDS = frozenset(c.key for c in LoggedCandidate.__table__.columns) - {"id", "ranking_id"}
_REQUIRED_CANDIDATE_FIELDS = frozenset(
    c.key
    for c in LoggedCandidate.__table__.columns
    if not c.nullable and c.default is None and c.server_default is None and c.key not in ("id", "ranking_id")
)


def default_preset(session: Session) -> Preset:
    """The preset named "default"; recreated (and flushed) with the stock values if someone deleted it."""
    preset = session.scalar(select(Preset).where(Preset.name == DEFAULT_PRESET_NAME))
    if preset is None:
        preset = Preset(name=DEFAULT_PRESET_NAME, team=DEFAULT_TEAM, instruction=DEFAULT_PRESET_INSTRUCTION)
        session.add(preset)
        session.flush()
    return preset


def preset_for(session: Session, channel: str | None) -> Preset:
    """The preset bound to ``channel``, else the default preset."""
    if channel:
        preset = session.scalar(select(Preset).join(ChannelBinding).where(ChannelBinding.channel_id == channel))
        if preset is not None:
            return preset
    return default_preset(session)


def preset_named(session: Session, name: str) -> Preset:
    """The preset with this name; ValueError with a clear message when there is none."""
    preset = session.scalars(select(Preset).where(Preset.name == name)).first()
    if preset is None:
        raise ValueError(f"No preset named {name!r}")
    return preset


def bind_channel(session: Session, channel_id: str, preset_name: str) -> ChannelBinding:
    """Make ``channel_id`` use the preset called ``preset_name`` (creating or replacing its binding)."""
    preset = session.scalar(select(Preset).where(Preset.name == preset_name))
    if preset is None:
        known = session.scalars(select(Preset.name).order_by(Preset.name)).all()
        raise ValueError(f"Unknown preset {preset_name!r}; known presets: {', '.join(known) if known else '(none)'}.")
    binding = session.scalar(select(ChannelBinding).where(ChannelBinding.channel_id == channel_id))
    if binding is None:
        binding = ChannelBinding(channel_id=channel_id, preset=preset)
        session.add(binding)
    else:
        binding.preset = preset
    session.flush()
    return binding


def _candidate(index: int, fields: Mapping[str, Any]) -> LoggedCandidate:
    unknown = set(fields) - _CANDIDATE_FIELDS
    if unknown:
        raise ValueError(f"Candidate {index}: unknown field(s) {sorted(unknown)}; expected {sorted(_CANDIDATE_FIELDS)}")
    missing = _REQUIRED_CANDIDATE_FIELDS - set(fields)
    if missing:
        raise ValueError(f"Candidate {index}: missing field(s) {sorted(missing)}")
    return LoggedCandidate(**fields)


def record_ranking(
    session: Session,
    *,
    question: str,
    channel: str | None,
    user: str | None,
    preset: Preset | None,
    instruction: str,
    collection: str,
    answer: str | None,
    status: str,
    error: str | None,
    rerank_status: str,
    reranker: str | None,
    timings_ms: dict[str, float],
    candidates: list[dict[str, Any]],
    retrieval_mode: str | None = None,
    record_key: str | None = None,
    asked: str | None = None,
) -> RankingLog:
    """Add one ranking and its candidates, and flush so ``.id`` is set. The caller commits.

    ``candidates`` are dicts keyed by :class:`LoggedCandidate` column names (without ``id``/``ranking_id``).
    The preset's name and version are copied into the log; without a preset they are "(none)" and 0.
    """
    if status not in RANKING_STATUSES:
        raise ValueError(f"status must be one of {', '.join(RANKING_STATUSES)}, not {status!r}")
    log = RankingLog(
        question=question,
        asked=asked,
        channel=channel,
        user=user,
        preset=preset,
        preset_name=preset.name if preset is not None else NO_PRESET_NAME,
        preset_version=preset.version if preset is not None else NO_PRESET_VERSION,
        instruction=instruction,
        collection=collection,
        answer=answer,
        status=status,
        error=error,
        rerank_status=rerank_status,
        reranker=reranker,
        timings_ms={str(stage): float(ms) for stage, ms in timings_ms.items()},
        retrieval_mode=retrieval_mode,
        record_key=record_key,
    )
    rows = [_candidate(i, fields) for i, fields in enumerate(candidates)]
    # Same order in memory as when loaded back (the relationship is ordered by retrieval_rank).
    log.candidates = sorted(rows, key=lambda c: c.retrieval_rank)
    session.add(log)
    session.flush()
    return log


def add_feedback(
    session: Session, ranking_id: int, value: int, user: str | None = None, comment: str | None = None
) -> Feedback:
    """Record a thumbs up (+1) or down (-1) on a ranking, and flush so ``.id`` is set."""
    if value not in (1, -1) or isinstance(value, bool):
        raise ValueError(f"Feedback value must be +1 or -1, not {value!r}")
    if session.get(RankingLog, ranking_id) is None:
        raise ValueError(f"No ranking with id {ranking_id}")
    feedback = Feedback(ranking_id=ranking_id, value=value, user=user, comment=comment)
    session.add(feedback)
    session.flush()
    return feedback


def set_feedback_comment(session: Session, feedback_id: int, comment: str) -> Feedback:
    """Attach the optional comment a user gave after voting."""
    feedback = session.get(Feedback, feedback_id)
    if feedback is None:
        raise ValueError(f"No feedback with id {feedback_id}")
    feedback.comment = comment
    session.flush()
    return feedback


def user_feedback(session: Session, ranking_id: int, user: str | None) -> Feedback | None:
    """The vote this user already gave on this ranking, if any."""
    return session.scalars(
        select(Feedback).where(Feedback.ranking_id == ranking_id, Feedback.user == user).limit(1)
    ).first()


def claim_slack_event(session: Session, channel: str, ts: str, event_id: str | None = None) -> bool:
    """True for the first claim of a Slack message, False for a duplicate (a retry, the same mention seen as
    another event type, or another bot process that got there first). Commits or rolls back its own
    savepoint, so the caller's transaction stays usable."""
    try:
        with session.begin_nested():
            session.add(SlackEvent(event_id=event_id, channel=channel, ts=ts))
    except IntegrityError:
        return False
    return True
