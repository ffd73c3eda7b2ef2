"""What the Slack surfaces remember beyond one question: assistant pane threads and what their users look at,
threads ragbot has answered in (follow-ups need no mention there), escalations and refusals."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import AnswerJob, AssistantThread, Escalation, SlackRefusal, utcnow


def save_assistant_context(session: Session, channel_id: str, thread_ts: str, context: dict[str, Any]) -> None:
    """Remember what the user of an assistant thread is looking at (Slack's `context`: `channel_id`, ...)."""
    row = session.get(AssistantThread, (channel_id, thread_ts))
    if row is None:
        session.add(AssistantThread(channel_id=channel_id, thread_ts=thread_ts, context=dict(context)))
    else:
        row.context = dict(context)
        row.updated_at = utcnow()
    session.flush()


def assistant_context(session: Session, channel_id: str, thread_ts: str) -> dict[str, Any] | None:
    """The saved context of an assistant thread; None when the thread is not one ragbot saw start."""
    row = session.get(AssistantThread, (channel_id, thread_ts))
    return dict(row.context) if row is not None else None


def answered_in_thread(session: Session, channel: str, thread_ts: str) -> bool:
    """Whether ragbot took a question in this thread before (answered, being answered, or told it failed)."""
    found = session.scalar(
        select(AnswerJob.id).where(AnswerJob.channel == channel, AnswerJob.thread_ts == thread_ts).limit(1)
    )
    return found is not None


def add_escalation(session: Session, ranking_id: int, user: str | None, via: str, target: str) -> Escalation:
    escalation = Escalation(ranking_id=ranking_id, user=user, via=via, target=target)
    session.add(escalation)
    session.flush()
    return escalation


def record_refusal(
    session: Session,
    reason: str,
    *,
    channel: str | None,
    user: str | None,
    user_team: str | None = None,
    question: str | None = None,
) -> SlackRefusal:
    refusal = SlackRefusal(reason=reason, channel=channel, user=user, user_team=user_team, question=question)
    session.add(refusal)
    session.flush()
    return refusal
