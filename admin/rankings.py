"""Reviewing logged rankings: filters, paging, reviewers' labels, and the CSV / JSONL exports (no HTTP here)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta, timezone
from itertools import groupby
from typing import Any

from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from admin import audit
from admin.exports import csv_cell
from store.models import RANKING_STATUSES, CandidateLabel, Escalation, Feedback, LoggedCandidate, RankingLog

PAGE_SIZE = 50
BATCH = 1000
FEEDBACK_CHOICES = ("up", "down", "none")
ESCALATED_CHOICES = ("yes", "no")
FILTER_FIELDS = ("channel", "preset", "date_from", "date_to", "feedback", "status", "escalated")
CSV_HEADER = (
    "ranking_id",
    "created_at",
    "channel",
    "user",
    "preset",
    "preset_version",
    "question",
    "status",
    "rerank_status",
    "feedback",
    "retrieval_rank",
    "retrieval_score",
    "rerank_rank",
    "rerank_score",
    "used",
    "citation",
    "title",
    "section",
    "source",
    "text",
    # Appended with hybrid retrieval; the columns above keep their order for the tools that read them.
    "retrieval_mode",
    "dense_rank",
    "dense_score",
    "lexical_rank",
    "lexical_score",
)


class FilterError(ValueError):
    """The query parameters don't make a valid filter; the message says which and why."""


class LabelError(ValueError):
    """A label cannot be stored as asked."""


@dataclass(frozen=True)
class RankingFilter:
    channel: str | None = None
    preset: str | None = None
    date_from: date | None = None  # inclusive, UTC days
    date_to: date | None = None  # inclusive
    feedback: str | None = None  # up (has a 👍) | down (has a 👎) | none (no vote)
    status: str | None = None
    escalated: str | None = None  # yes (someone pressed "Still need help?") | no

    def params(self) -> dict[str, str]:
        """The non-empty filters as query parameters, for links that keep them."""
        return {k: v.isoformat() if isinstance(v, date) else v for k, v in asdict(self).items() if v}

    def conditions(self) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if self.channel:
            where.append(RankingLog.channel == self.channel)
        if self.preset:
            where.append(RankingLog.preset_name == self.preset)
        if self.date_from:
            where.append(RankingLog.created_at >= datetime.combine(self.date_from, time.min, timezone.utc))
        if self.date_to and self.date_to < date.max:  # up to 9999-12-31 is no end at all (and has no next day)
            end = datetime.combine(self.date_to + timedelta(days=1), time.min, timezone.utc)
            where.append(RankingLog.created_at < end)
        if self.feedback == "none":
            where.append(~exists().where(Feedback.ranking_id == RankingLog.id))
        elif self.feedback:
            value = 1 if self.feedback == "up" else -1
            where.append(exists().where(Feedback.ranking_id == RankingLog.id, Feedback.value == value))
        if self.status:
            where.append(RankingLog.status == self.status)
        if self.escalated:
            escalated = exists().where(Escalation.ranking_id == RankingLog.id)
            where.append(escalated if self.escalated == "yes" else ~escalated)
        return where


def _date(name: str, value: str, errors: list[str]) -> date | None:
    try:
        return datetime.strptime(value, "%Y-%m-%d").date() if value else None
    except ValueError:
        errors.append(f"{name} must be a date written YYYY-MM-DD, like 2025-03-31, not {value!r}.")
        return None


def parse_filter(params: Mapping[str, str]) -> RankingFilter:
    """A filter from query parameters; FilterError listing every invalid value."""
    raw = {name: (params.get(name) or "").strip() for name in FILTER_FIELDS}
    errors: list[str] = []
    date_from = _date("date_from", raw["date_from"], errors)
    date_to = _date("date_to", raw["date_to"], errors)
    if date_from and date_to and date_from > date_to:
        errors.append(f"date_from ({date_from}) is after date_to ({date_to}).")
    if raw["feedback"] and raw["feedback"] not in FEEDBACK_CHOICES:
        errors.append(f"feedback must be one of {', '.join(FEEDBACK_CHOICES)}, not {raw['feedback']!r}.")
    if raw["status"] and raw["status"] not in RANKING_STATUSES:
        errors.append(f"status must be one of {', '.join(RANKING_STATUSES)}, not {raw['status']!r}.")
    if raw["escalated"] and raw["escalated"] not in ESCALATED_CHOICES:
        errors.append(f"escalated must be one of {', '.join(ESCALATED_CHOICES)}, not {raw['escalated']!r}.")
    if errors:
        raise FilterError(" ".join(errors))
    return RankingFilter(
        channel=raw["channel"] or None,
        preset=raw["preset"] or None,
        date_from=date_from,
        date_to=date_to,
        feedback=raw["feedback"] or None,
        status=raw["status"] or None,
        escalated=raw["escalated"] or None,
    )


def parse_page(value: str | None) -> int:
    try:
        page = int(value or "1")
    except ValueError:
        page = 0
    if page < 1:
        raise FilterError(f"page must be a whole number from 1, not {value!r}.")
    return page


@dataclass
class Row:
    ranking: RankingLog
    up: int
    down: int
    escalations: int = 0


@dataclass
class Page:
    rows: list[Row]
    number: int
    pages: int
    total: int


def list_rankings(session: Session, filters: RankingFilter, page: int = 1) -> Page:
    """One page of the filtered rankings, newest first, with their 👍/👎 and escalation counts."""
    where = filters.conditions()
    total = session.scalar(select(func.count(RankingLog.id)).where(*where)) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(page, pages)
    rankings = session.scalars(
        select(RankingLog)
        .where(*where)
        .order_by(RankingLog.created_at.desc(), RankingLog.id.desc())
        .options(selectinload(RankingLog.preset))  # its team, shown beside its name
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    ).all()
    votes = session.execute(
        select(Feedback.ranking_id, Feedback.value, func.count())
        .where(Feedback.ranking_id.in_([r.id for r in rankings]))
        .group_by(Feedback.ranking_id, Feedback.value)
    ).all()
    counts = {(ranking_id, value): n for ranking_id, value, n in votes}
    escalated = dict(
        session.execute(
            select(Escalation.ranking_id, func.count())
            .where(Escalation.ranking_id.in_([r.id for r in rankings]))
            .group_by(Escalation.ranking_id)
        ).all()
    )
    rows = [Row(r, counts.get((r.id, 1), 0), counts.get((r.id, -1), 0), escalated.get(r.id, 0)) for r in rankings]
    return Page(rows, page, pages, total)


def filter_choices(session: Session) -> dict[str, list[str]]:
    """Channels and preset names seen in the log, to suggest in the filter form."""
    channels = select(RankingLog.channel).where(RankingLog.channel.is_not(None)).distinct()
    presets = select(RankingLog.preset_name).distinct()
    return {
        "channels": list(session.scalars(channels.order_by(RankingLog.channel))),
        "presets": list(session.scalars(presets.order_by(RankingLog.preset_name))),
    }


def get_ranking(session: Session, ranking_id: int) -> RankingLog | None:
    return session.scalar(
        select(RankingLog)
        .where(RankingLog.id == ranking_id)
        .options(
            selectinload(RankingLog.candidates),
            selectinload(RankingLog.feedback),
            selectinload(RankingLog.escalations),
            selectinload(RankingLog.preset),
        )
    )


def labels_of(session: Session, ranking_id: int, reviewer: str) -> dict[int, bool]:
    """candidate id -> relevant, for this reviewer's labels on this ranking."""
    rows = session.execute(
        select(CandidateLabel.candidate_id, CandidateLabel.relevant).where(
            CandidateLabel.ranking_id == ranking_id, CandidateLabel.reviewer == reviewer
        )
    )
    return {candidate_id: relevant for candidate_id, relevant in rows}


def set_label(
    session: Session, candidate_id: int, reviewer: str, relevant: bool | None, *, ranking_id: int
) -> CandidateLabel | None:
    """Store (or replace) this reviewer's label on a candidate of `ranking_id`; None removes it. A change is
    audited (the reviewer as its actor). Flushes."""
    candidate = session.get(LoggedCandidate, candidate_id)
    if candidate is None or candidate.ranking_id != ranking_id:
        raise LabelError(f"Candidate {candidate_id} is not part of ranking {ranking_id}.")
    find = select(CandidateLabel).where(
        CandidateLabel.candidate_id == candidate_id, CandidateLabel.reviewer == reviewer
    )
    label = session.scalar(find)
    was = None if label is None else label.relevant
    if was != relevant:
        action = audit.Action.LABEL_CLEAR if relevant is None else audit.Action.LABEL_SET
        target = f"ranking {ranking_id} candidate {candidate_id} ({candidate.source})"
        audit.record(session, reviewer, action, target, {"relevant": was}, {"relevant": relevant})
    if relevant is None:
        if label is not None:
            session.delete(label)
            session.flush()
        return None
    if label is None:
        try:
            with session.begin_nested():  # a double click may race us to the unique (candidate, reviewer)
                label = CandidateLabel(
                    candidate_id=candidate_id, ranking_id=ranking_id, reviewer=reviewer, relevant=relevant
                )
                session.add(label)
            return label
        except IntegrityError:
            label = session.scalars(find).one()
    label.relevant = relevant
    session.flush()
    return label


def csv_chunks(session: Session, filters: RankingFilter, batch: int = BATCH) -> Iterator[str]:
    """The filtered rankings as CSV text, one row per candidate, newest ranking first; yields the header and
    then one chunk per `batch` rows, reading the database in batches too, so memory stays flat."""
    latest_vote = (
        select(Feedback.value)
        .where(Feedback.ranking_id == RankingLog.id)
        .order_by(Feedback.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    c = LoggedCandidate
    stmt = (
        select(
            RankingLog.id,
            RankingLog.created_at,
            RankingLog.channel,
            RankingLog.user,
            RankingLog.preset_name,
            RankingLog.preset_version,
            RankingLog.question,
            RankingLog.status,
            RankingLog.rerank_status,
            latest_vote,
            c.retrieval_rank,
            c.retrieval_score,
            c.rerank_rank,
            c.rerank_score,
            c.used,
            c.citation,
            c.title,
            c.section,
            c.source,
            c.text,
            RankingLog.retrieval_mode,
            c.dense_rank,
            c.dense_score,
            c.lexical_rank,
            c.lexical_score,
        )
        .join(c, c.ranking_id == RankingLog.id)
        .where(*filters.conditions())
        .order_by(RankingLog.created_at.desc(), RankingLog.id.desc(), c.retrieval_rank)
        .execution_options(yield_per=batch)
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    yield buffer.getvalue()
    for rows in session.execute(stmt).partitions():
        buffer.seek(0)
        buffer.truncate()
        for row in rows:
            values = list(row)
            values[1] = values[1].isoformat()
            values[14] = int(values[14])  # used
            writer.writerow([csv_cell(v) for v in values])
        yield buffer.getvalue()


def _eval_line(rows: list[Any]) -> dict[str, Any]:
    """One evaluation-set line from the label rows of one ranking (ordered by candidate rank, reviewer)."""
    first = rows[0]
    votes: dict[int, tuple[str, list[bool]]] = {}  # candidate -> (source, labels), in rank order
    for row in rows:
        votes.setdefault(row.candidate_id, (row.source, []))[1].append(row.relevant)
    relevant: list[str] = []
    not_relevant: list[str] = []
    for source, labels in votes.values():
        yes, no = labels.count(True), labels.count(False)  # reviewers disagreeing evenly: no verdict
        target = relevant if yes > no else not_relevant if no > yes else None
        if target is not None and source not in target:
            target.append(source)
    return {
        "question": first.question,
        "channel": first.channel,
        "preset": first.preset_name,
        "ranking_id": first.ranking_id,
        "relevant": relevant,
        "not_relevant": [s for s in not_relevant if s not in relevant],
        "labels": [
            {
                "source": r.source,
                "title": r.title,
                "section": r.section,
                "doc_id": r.doc_id,
                "relevant": r.relevant,
                "reviewer": r.reviewer,
            }
            for r in rows
        ],
    }


def label_lines(session: Session, filters: RankingFilter, batch: int = BATCH) -> Iterator[str]:
    """The labels of the filtered rankings as JSONL, one line per labeled ranking, newest first. A source is
    relevant when most reviewers' labels on one of its candidates say so (not_relevant likewise, unless it
    is relevant through another candidate); `labels` keeps every reviewer's label."""
    c = LoggedCandidate
    stmt = (
        select(
            RankingLog.id.label("ranking_id"),
            RankingLog.question,
            RankingLog.channel,
            RankingLog.preset_name,
            c.id.label("candidate_id"),
            c.source,
            c.title,
            c.section,
            c.doc_id,
            CandidateLabel.reviewer,
            CandidateLabel.relevant,
        )
        .join(c, c.ranking_id == RankingLog.id)
        .join(CandidateLabel, CandidateLabel.candidate_id == c.id)
        .where(*filters.conditions())
        .order_by(RankingLog.created_at.desc(), RankingLog.id.desc(), c.retrieval_rank, c.id, CandidateLabel.reviewer)
        .execution_options(yield_per=batch)
    )
    lines: list[str] = []
    for _, rows in groupby(session.execute(stmt), key=lambda r: r.ranking_id):
        lines.append(json.dumps(_eval_line(list(rows)), ensure_ascii=False) + "\n")
        if len(lines) >= 100:
            yield "".join(lines)
            lines = []
    if lines:
        yield "".join(lines)
