"""Persistence for ragbot: SQLAlchemy models, engine/session helpers, migrations runner, and queries.

No business logic lives here, and nothing here reads settings: pass ``settings.database_url`` in.
"""

from store.db import DatabaseError, make_engine, mask_url, session_factory, upgrade_database
from store.jobs import enqueue_job, finish_job, open_jobs, release_jobs, renew_leases, take_job
from store.models import (
    USER_ROLES,
    AdminSession,
    AnswerJob,
    AuditEntry,
    Base,
    CandidateLabel,
    ChannelBinding,
    Feedback,
    LoggedCandidate,
    LoginThrottle,
    Preset,
    PresetVersion,
    RankingLog,
    SlackEvent,
    User,
)
from store.queries import (
    add_feedback,
    bind_channel,
    claim_slack_event,
    default_preset,
    preset_for,
    preset_named,
    record_ranking,
    set_feedback_comment,
    user_feedback,
)

__all__ = [
    "USER_ROLES",
    "AdminSession",
    "AnswerJob",
    "AuditEntry",
    "Base",
    "CandidateLabel",
    "ChannelBinding",
    "DatabaseError",
    "Feedback",
    "LoggedCandidate",
    "LoginThrottle",
    "Preset",
    "PresetVersion",
    "RankingLog",
    "SlackEvent",
    "User",
    "add_feedback",
    "bind_channel",
    "claim_slack_event",
    "default_preset",
    "enqueue_job",
    "finish_job",
    "make_engine",
    "mask_url",
    "open_jobs",
    "preset_for",
    "preset_named",
    "record_ranking",
    "release_jobs",
    "renew_leases",
    "session_factory",
    "set_feedback_comment",
    "take_job",
    "upgrade_database",
    "user_feedback",
]
