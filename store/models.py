"""SQLAlchemy models: reranking presets, channel bindings, and the log of every ranking.

The schema is owned by the Alembic revisions in ``migrations/versions``; a test checks that these models and
the migrated database agree (no autogenerate drift) on both SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# Explicit constraint names: identical on SQLite and PostgreSQL, so migrations can drop/alter them by name
# (SQLite batch mode needs names to find constraints when it recreates a table).
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

DEFAULT_PRESET_NAME = "default"
DEFAULT_TEAM = "default"
DEFAULT_PRESET_INSTRUCTION = (
    "Given a question from a sales or support colleague, "
    "retrieve passages from the product documentation that answer it"
)

RANKING_STATUSES = ("ok", "no_answer", "error")
# What asked a durable question: a mention or message in a channel thread or DM, the slash command, a message in
# the assistant pane.
JOB_KINDS = ("mention", "command", "assistant")
ESCALATION_VIAS = ("usergroup", "channel")
# The largest id the databases' integer keys hold: a larger one from a URL or a Slack payload would fail inside
# the driver, so it is refused (or "not found") before any query.
MAX_ROW_ID = 2**63 - 1
# Where a channel's answers go: the thread (everyone sees them) or only the asker (Slack's ephemeral messages).
REPLY_VISIBILITIES = ("thread", "ephemeral")
# How a preset retrieves when it names no mode (the modes themselves: retrieval.RETRIEVAL_MODES).
DEFAULT_RETRIEVAL_MODE = "hybrid"


def utcnow() -> datetime:
    """The current time as a timezone-aware UTC datetime."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that always hands back aware UTC datetimes.

    PostgreSQL stores ``timestamptz`` natively; SQLite has no time zones and would return naive values, so
    values are normalised to UTC on the way in (naive input is taken to be UTC) and tagged UTC on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON(), float: Float()}


class Team(Base):
    """A team: what presets and people belong to. Presets and users name their team (a foreign key to `name`,
    which follows a rename), so both refer to one row."""

    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String, unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


class Preset(Base):
    """A named reranking setup: the instruction given to the reranker and how many passages to keep."""

    __tablename__ = "presets"
    __table_args__ = (
        CheckConstraint("retrieval_mode IN ('dense', 'lexical', 'hybrid')", name="retrieval_mode"),
        CheckConstraint(f"reply_visibility IN {REPLY_VISIBILITIES!r}", name="reply_visibility"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team: Mapped[str] = mapped_column(
        ForeignKey("teams.name", onupdate="CASCADE"), default=DEFAULT_TEAM, server_default=DEFAULT_TEAM
    )
    name: Mapped[str] = mapped_column(String, unique=True)
    instruction: Mapped[str] = mapped_column(Text)
    candidates_k: Mapped[int] = mapped_column(Integer, default=20, server_default=text("20"))
    top_n: Mapped[int] = mapped_column(Integer, default=3, server_default=text("3"))
    min_score: Mapped[float] = mapped_column(default=0.0, server_default=text("0.0"))
    # None = use the default collection (settings.ragbot_collection).
    collection: Mapped[str | None] = mapped_column(String)
    retrieval_mode: Mapped[str] = mapped_column(
        String, default=DEFAULT_RETRIEVAL_MODE, server_default=DEFAULT_RETRIEVAL_MODE
    )
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())
    # How the preset's channels behave in Slack (not versioned: they change no ranking).
    # Up to 4 {"title", "message"} prompts the assistant pane suggests; None = the stock set.
    suggested_prompts: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)
    # Answer a follow-up in a thread ragbot already answered in without a new mention.
    follow_ups: Mapped[bool] = mapped_column(default=True, server_default=true())
    # "Still need help?": mention this user group (S...) in the thread, or post the question to this channel (C...).
    escalation_usergroup: Mapped[str | None] = mapped_column(String)
    escalation_channel: Mapped[str | None] = mapped_column(String)
    # Answer users of other organisations in Slack Connect channels (else only when SLACK_ALLOW_EXTERNAL is set).
    allow_external: Mapped[bool] = mapped_column(default=False, server_default=false())
    # How answers appear in the preset's channels: in the thread for everyone, or only to the asker (ephemeral).
    reply_visibility: Mapped[str] = mapped_column(String, default="thread", server_default="thread")
    # Retrieval restricted to these source names and/or these tags, inside the Qdrant query (None: everything).
    source_filter: Mapped[list[str] | None] = mapped_column(JSON)
    tag_filter: Mapped[list[str] | None] = mapped_column(JSON)

    bindings: Mapped[list[ChannelBinding]] = relationship(
        back_populates="preset", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"Preset(id={self.id!r}, name={self.name!r}, version={self.version!r})"


class ChannelBinding(Base):
    """Which preset a Slack channel uses (channels without a binding use the default preset)."""

    __tablename__ = "channel_bindings"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[str] = mapped_column(String, unique=True)
    preset_id: Mapped[int] = mapped_column(ForeignKey("presets.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())

    preset: Mapped[Preset] = relationship(back_populates="bindings")

    def __repr__(self) -> str:
        return f"ChannelBinding(channel_id={self.channel_id!r}, preset_id={self.preset_id!r})"


class RankingLog(Base):
    """One answered (or failed) question: what was asked, with which instruction, and what came back.

    ``preset_name``/``preset_version``/``instruction`` are copies taken at answer time, so the log stays
    truthful after the preset is edited or deleted (``preset_id`` then becomes NULL).
    """

    __tablename__ = "ranking_logs"
    __table_args__ = (CheckConstraint("status IN ('ok', 'no_answer', 'error')", name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now(), index=True)
    question: Mapped[str] = mapped_column(Text)
    channel: Mapped[str | None] = mapped_column(String, index=True)
    user: Mapped[str | None] = mapped_column(String)
    preset_id: Mapped[int | None] = mapped_column(ForeignKey("presets.id", ondelete="SET NULL"))
    preset_name: Mapped[str] = mapped_column(String)
    preset_version: Mapped[int] = mapped_column(Integer)
    instruction: Mapped[str] = mapped_column(Text)
    collection: Mapped[str] = mapped_column(String)
    answer: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String)
    error: Mapped[str | None] = mapped_column(Text)
    # "ok" or "skipped: <reason>"
    rerank_status: Mapped[str] = mapped_column(String)
    reranker: Mapped[str | None] = mapped_column(String)
    timings_ms: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The mode that ran (None in logs written before the lexical channel existed).
    retrieval_mode: Mapped[str | None] = mapped_column(String)
    # Set when the record was kept on disk through a database outage and written later: written once.
    record_key: Mapped[str | None] = mapped_column(String, unique=True)
    # The message as the user wrote it, when `question` (what was searched) differs: a follow-up in a thread is
    # searched as a standalone question.
    asked: Mapped[str | None] = mapped_column(Text)

    preset: Mapped[Preset | None] = relationship()
    candidates: Mapped[list[LoggedCandidate]] = relationship(
        back_populates="ranking",
        order_by="LoggedCandidate.retrieval_rank",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )
    feedback: Mapped[list[Feedback]] = relationship(
        back_populates="ranking",
        order_by="Feedback.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )
    escalations: Mapped[list[Escalation]] = relationship(
        back_populates="ranking",
        order_by="Escalation.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    def __repr__(self) -> str:
        return f"RankingLog(id={self.id!r}, status={self.status!r}, preset_name={self.preset_name!r})"


class LoggedCandidate(Base):
    """One retrieved passage of a ranking, with its retrieval and rerank positions."""

    __tablename__ = "ranked_candidates"

    id: Mapped[int] = mapped_column(primary_key=True)
    ranking_id: Mapped[int] = mapped_column(ForeignKey("ranking_logs.id", ondelete="CASCADE"), index=True)
    point_id: Mapped[str] = mapped_column(String)
    doc_id: Mapped[str] = mapped_column(String)
    title: Mapped[str] = mapped_column(String)
    source: Mapped[str] = mapped_column(String)
    section: Mapped[str] = mapped_column(String)
    text: Mapped[str] = mapped_column(Text)
    retrieval_rank: Mapped[int] = mapped_column(Integer)  # 1-based
    retrieval_score: Mapped[float] = mapped_column()
    # Place in each retrieval channel's own ranking; None when not among its results (or the channel did not run).
    dense_rank: Mapped[int | None] = mapped_column(Integer)
    dense_score: Mapped[float | None] = mapped_column()
    lexical_rank: Mapped[int | None] = mapped_column(Integer)
    lexical_score: Mapped[float | None] = mapped_column()
    rerank_rank: Mapped[int | None] = mapped_column(Integer)  # 1-based; None when reranking was skipped
    rerank_score: Mapped[float | None] = mapped_column()
    used: Mapped[bool] = mapped_column(default=False)
    citation: Mapped[int | None] = mapped_column(Integer)  # the [n] in the answer, when used

    ranking: Mapped[RankingLog] = relationship(back_populates="candidates")

    def __repr__(self) -> str:
        return (
            f"LoggedCandidate(id={self.id!r}, retrieval_rank={self.retrieval_rank!r}, "
            f"rerank_rank={self.rerank_rank!r}, used={self.used!r})"
        )


class Feedback(Base):
    """A thumbs up (+1) or down (-1) on an answer."""

    __tablename__ = "feedback"
    __table_args__ = (CheckConstraint("value IN (-1, 1)", name="value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ranking_id: Mapped[int] = mapped_column(ForeignKey("ranking_logs.id", ondelete="CASCADE"), index=True)
    user: Mapped[str | None] = mapped_column(String)
    value: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())

    ranking: Mapped[RankingLog] = relationship(back_populates="feedback")

    def __repr__(self) -> str:
        return f"Feedback(id={self.id!r}, ranking_id={self.ranking_id!r}, value={self.value!r})"


class SlackEvent(Base):
    """A Slack message the bot has taken on. The unique constraints are the deduplication: Slack's retries
    repeat the event_id, and one mention delivered as both `app_mention` and `message` repeats (channel, ts).
    Living in the database, they hold across bot processes."""

    __tablename__ = "slack_events"
    __table_args__ = (UniqueConstraint("channel", "ts", name="uq_slack_events_channel_ts"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str | None] = mapped_column(String, unique=True)
    channel: Mapped[str] = mapped_column(String)
    ts: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


class AnswerJob(Base):
    """An acknowledged question, kept until it is answered or its asker has been told it failed. A process
    works on it under a lease (`lease_owner` until `lease_until`); a crashed process's lease runs out and any
    process takes the job again. `attempts` counts how often it was taken."""

    __tablename__ = "answer_jobs"
    __table_args__ = (
        CheckConstraint("state IN ('queued', 'answering', 'answered', 'failed')", name="state"),
        CheckConstraint(f"kind IN {JOB_KINDS!r}", name="kind"),
        Index("ix_answer_jobs_thread", "channel", "thread_ts"),  # has ragbot answered in this thread?
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String)
    state: Mapped[str] = mapped_column(String, default="queued", server_default="queued", index=True)
    question: Mapped[str] = mapped_column(Text)
    channel: Mapped[str | None] = mapped_column(String)
    ts: Mapped[str | None] = mapped_column(String)  # the question's message (mentions and DMs)
    thread_ts: Mapped[str | None] = mapped_column(String)  # where the answer goes
    user: Mapped[str | None] = mapped_column(String)
    response_url: Mapped[str | None] = mapped_column(Text)  # a slash command's
    # Names of the files the question came with: they are not read, and the answer says so.
    attachments: Mapped[list[str] | None] = mapped_column(JSON)
    # The message an answer began streaming into: a process that dies mid-stream leaves it half written, and the
    # next attempt replaces it with the answer instead of adding a second one.
    reply_ts: Mapped[str | None] = mapped_column(String)
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    lease_owner: Mapped[str | None] = mapped_column(String)
    lease_until: Mapped[datetime | None] = mapped_column()
    ranking_id: Mapped[int | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())

    def __repr__(self) -> str:
        return f"AnswerJob(id={self.id!r}, kind={self.kind!r}, state={self.state!r}, attempts={self.attempts!r})"


USER_ROLES = ("admin", "team_admin", "reviewer")
# The role of a user who signed in through single sign-on and was granted nothing yet: signed in, no pages.
NO_ROLE = "none"


class User(Base):
    """Someone who signs in to the admin app. `team` is the team they belong to (a team admin's presets and
    people). A user who is not `active`
        cannot sign in, and their open sessions are refused."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'team_admin', 'reviewer', 'none')", name="role"),
        UniqueConstraint("oidc_issuer", "oidc_subject", name="uq_users_oidc_identity"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String, unique=True)
    # None: signs in only through single sign-on.
    password_hash: Mapped[str | None] = mapped_column(String)
    role: Mapped[str] = mapped_column(String)
    team: Mapped[str | None] = mapped_column(ForeignKey("teams.name", onupdate="CASCADE"))
    active: Mapped[bool] = mapped_column(default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    email: Mapped[str | None] = mapped_column(String)
    # The identity provider's issuer and subject: how a single sign-on finds its user (never by name or email).
    oidc_issuer: Mapped[str | None] = mapped_column(String)
    oidc_subject: Mapped[str | None] = mapped_column(String)


class AdminSession(Base):
    """A signed-in admin-app session, kept server-side so that signing out, deactivation and a password change
    end it at once. `id` is the SHA-256 of the token the cookie carries (a copy of the table signs no one in)."""

    __tablename__ = "admin_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(index=True)


class LoginThrottle(Base):
    """Sign-in attempts counted per key (a name, an address, or both), shared by every admin process. `key` is a
    SHA-256 digest, so a row has a fixed size whatever was typed; rows untouched for the throttle's window are
    pruned. `attempts` counts tries since the key was last clear; no try is checked before `next_attempt_at`."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now(), index=True)


class AuditEntry(Base):
    """Who changed what in the admin app (presets, bindings, labels, users), when, and from what to what."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now(), index=True)
    actor: Mapped[str] = mapped_column(String)
    action: Mapped[str] = mapped_column(String)  # e.g. "preset.update", "binding.create", "user.create"
    target: Mapped[str] = mapped_column(String)  # what was changed, by name ("preset sales", "channel C012")
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class PresetVersion(Base):
    """A preset as it was at one version: every change makes a new row (who, when, what)."""

    __tablename__ = "preset_versions"
    __table_args__ = (UniqueConstraint("preset_id", "version", name="uq_preset_versions_preset_id_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    preset_id: Mapped[int] = mapped_column(ForeignKey("presets.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    instruction: Mapped[str] = mapped_column(Text)
    candidates_k: Mapped[int] = mapped_column(Integer)
    top_n: Mapped[int] = mapped_column(Integer)
    min_score: Mapped[float] = mapped_column()
    collection: Mapped[str | None] = mapped_column(String)
    retrieval_mode: Mapped[str] = mapped_column(
        String, default=DEFAULT_RETRIEVAL_MODE, server_default=DEFAULT_RETRIEVAL_MODE
    )
    # The preset's retrieval filters at this version (None: no filter, and every version from before filters).
    source_filter: Mapped[list[str] | None] = mapped_column(JSON)
    tag_filter: Mapped[list[str] | None] = mapped_column(JSON)
    author: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


class CandidateLabel(Base):
    """A reviewer's judgement of one logged candidate: relevant to the question or not."""

    __tablename__ = "candidate_labels"
    __table_args__ = (UniqueConstraint("candidate_id", "reviewer", name="uq_candidate_labels_candidate_id_reviewer"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("ranked_candidates.id", ondelete="CASCADE"), index=True)
    ranking_id: Mapped[int] = mapped_column(ForeignKey("ranking_logs.id", ondelete="CASCADE"), index=True)
    reviewer: Mapped[str] = mapped_column(String)
    relevant: Mapped[bool] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())


class Escalation(Base):
    """A "Still need help?" press: the answer's question was handed to people (a user group or a channel)."""

    __tablename__ = "escalations"
    __table_args__ = (CheckConstraint(f"via IN {ESCALATION_VIAS!r}", name="via"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ranking_id: Mapped[int] = mapped_column(ForeignKey("ranking_logs.id", ondelete="CASCADE"), index=True)
    user: Mapped[str | None] = mapped_column(String)
    via: Mapped[str] = mapped_column(String)
    target: Mapped[str] = mapped_column(String)  # the user group or channel id
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())

    ranking: Mapped[RankingLog] = relationship(back_populates="escalations")


class SlackRefusal(Base):
    """A Slack question ragbot declined to answer, and why (e.g. "external": a user of another organisation in a
    Slack Connect channel)."""

    __tablename__ = "slack_refusals"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now(), index=True)
    reason: Mapped[str] = mapped_column(String)
    channel: Mapped[str | None] = mapped_column(String)
    user: Mapped[str | None] = mapped_column(String)
    user_team: Mapped[str | None] = mapped_column(String)  # the asker's own workspace
    question: Mapped[str | None] = mapped_column(Text)


class AssistantThread(Base):
    """An assistant pane thread and what its user is looking at (`context`: Slack's `channel_id`, `team_id`,
    `enterprise_id`), so that channel's preset steers the answers; kept here so every process sees it."""

    __tablename__ = "assistant_threads"

    channel_id: Mapped[str] = mapped_column(String, primary_key=True)
    thread_ts: Mapped[str] = mapped_column(String, primary_key=True)
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now(), index=True)


SOURCE_KINDS = ("folder", "web", "confluence", "notion", "zendesk", "github")
SYNC_STATUSES = ("running", "ok", "failed", "interrupted")


class Source(Base):
    """Where a collection's documents come from, synced on a schedule. `settings` holds the kind's own settings
    (path, url, space keys...), never a secret: `token_env` names the environment variable that holds the token.
    A sync runs under a lock (`lock_owner` until `locked_until`, renewed while it runs), so two processes never
    sync one source at once and a crashed process's lock runs out. `sync_requested_at` is set by "Sync now"."""

    __tablename__ = "sources"
    __table_args__ = (CheckConstraint(f"kind IN {SOURCE_KINDS!r}", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String, unique=True)
    kind: Mapped[str] = mapped_column(String)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    collection: Mapped[str] = mapped_column(String)
    every_s: Mapped[int | None] = mapped_column(Integer)  # None: synced only on demand
    token_env: Mapped[str | None] = mapped_column(String)
    lock_owner: Mapped[str | None] = mapped_column(String)
    locked_until: Mapped[datetime | None] = mapped_column()
    sync_requested_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())

    syncs: Mapped[list[SourceSync]] = relationship(cascade="all, delete-orphan", passive_deletes=True)
    documents: Mapped[list[SourceDocument]] = relationship(cascade="all, delete-orphan", passive_deletes=True)

    def __repr__(self) -> str:
        return f"Source(id={self.id!r}, name={self.name!r}, kind={self.kind!r})"


class SourceSync(Base):
    """One sync of a source: when, how long, what it did, and the errors by document (`errors`: key -> reason;
    `error`: why the whole sync failed)."""

    __tablename__ = "source_syncs"
    __table_args__ = (CheckConstraint(f"status IN {SYNC_STATUSES!r}", name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column()
    status: Mapped[str] = mapped_column(String, default="running", server_default="running")
    added: Mapped[int] = mapped_column(default=0, server_default="0")
    changed: Mapped[int] = mapped_column(default=0, server_default="0")
    removed: Mapped[int] = mapped_column(default=0, server_default="0")
    unchanged: Mapped[int] = mapped_column(default=0, server_default="0")
    failed: Mapped[int] = mapped_column(default=0, server_default="0")
    errors: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)


class SourceDocument(Base):
    """A document a source holds, as of its last sync: its source's version and HTTP validators (so the next sync
    fetches conditionally), the content hash, and connector-private facts (`extra`)."""

    __tablename__ = "source_documents"
    __table_args__ = (UniqueConstraint("source_id", "key", name="uq_source_documents_source_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String)
    # text("''"), not "": Alembic compares SQLite's reflected '' with a bare "" as a changed default.
    url: Mapped[str] = mapped_column(Text, default="", server_default=text("''"))
    title: Mapped[str] = mapped_column(Text, default="", server_default=text("''"))
    version: Mapped[str] = mapped_column(String, default="", server_default=text("''"))
    etag: Mapped[str] = mapped_column(String, default="", server_default=text("''"))
    last_modified: Mapped[str] = mapped_column(String, default="", server_default=text("''"))
    content_hash: Mapped[str] = mapped_column(String, default="", server_default=text("''"))
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated: Mapped[datetime | None] = mapped_column()  # when the source says it changed
    synced_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())
