"""Queries and constraints, on SQLite and PostgreSQL (see conftest.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import store
from store import (
    ChannelBinding,
    Feedback,
    LoggedCandidate,
    Preset,
    RankingLog,
    add_feedback,
    bind_channel,
    default_preset,
    preset_for,
    record_ranking,
    session_factory,
)


def candidate(rank: int, **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "point_id": f"pt-{rank}",
        "doc_id": f"doc-{rank}",
        "title": f"Title {rank}",
        "source": f"docs/page-{rank}.md",
        "section": f"Section {rank}",
        "text": f"Passage {rank} — ünïcode ✓",
        "retrieval_rank": rank,
        "retrieval_score": 1.0 / rank,
        "rerank_rank": None,
        "rerank_score": None,
        "used": False,
        "citation": None,
    }
    fields.update(overrides)
    return fields


def record(session: Session, preset: Preset | None = None, **overrides: Any) -> RankingLog:
    kwargs: dict[str, Any] = {
        "question": "Does the Pro plan include SSO?",
        "channel": "C0123ABCD",
        "user": "U042",
        "preset": preset,
        "instruction": "custom instruction",
        "collection": "kb",
        "answer": "Yes [1].",
        "status": "ok",
        "error": None,
        "rerank_status": "ok",
        "reranker": "Qwen/Qwen3-Reranker-0.6B",
        "timings_ms": {"retrieve": 12.5, "rerank": 80.25, "answer": 3.0},
        "candidates": [candidate(1), candidate(2)],
    }
    kwargs.update(overrides)
    return record_ranking(session, **kwargs)


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


# --- presets and bindings ----------------------------------------------------------------------------------


def test_preset_for_without_binding_is_default(session: Session) -> None:
    default = default_preset(session)
    assert default.name == "default"
    assert preset_for(session, None).id == default.id
    assert preset_for(session, "C_UNBOUND").id == default.id


def test_preset_for_bound_channel(session: Session) -> None:
    sales = Preset(name="sales", team="sales", instruction="Find pricing passages", top_n=5)
    session.add(sales)
    binding = bind_channel(session, "C0123ABCD", "sales")
    session.commit()
    assert binding.preset_id == sales.id

    with Session(session.get_bind()) as fresh:
        assert preset_for(fresh, "C0123ABCD").name == "sales"
        assert preset_for(fresh, "C0THER").name == "default"


def test_bind_channel_is_an_upsert(session: Session) -> None:
    session.add(Preset(name="support", instruction="Find troubleshooting passages"))
    first = bind_channel(session, "C1", "default")
    second = bind_channel(session, "C1", "support")
    session.commit()
    assert first.id == second.id
    assert count(session, ChannelBinding) == 1
    assert preset_for(session, "C1").name == "support"


def test_bind_channel_unknown_preset_raises(session: Session) -> None:
    with pytest.raises(ValueError, match=r"Unknown preset 'nope'.*known presets: default"):
        bind_channel(session, "C1", "nope")
    assert count(session, ChannelBinding) == 0


def test_default_preset_is_recreated_if_missing(session: Session) -> None:
    session.execute(delete(Preset))
    session.commit()
    preset = default_preset(session)
    session.commit()
    assert preset.id is not None
    assert (preset.name, preset.team, preset.candidates_k, preset.top_n, preset.min_score) == (
        "default",
        "default",
        20,
        3,
        0.0,
    )
    assert preset.instruction.startswith("Given a question from a sales or support colleague")


def test_deleting_a_preset_keeps_logs_and_drops_bindings(session: Session) -> None:
    sales = Preset(name="sales", instruction="Find pricing passages", version=4)
    session.add(sales)
    bind_channel(session, "C1", "sales")
    log = record(session, preset=sales)
    session.commit()
    log_id = log.id

    session.execute(delete(Preset).where(Preset.name == "sales"))  # the database's ON DELETE rules
    session.commit()
    session.expunge_all()
    kept = session.get(RankingLog, log_id)
    assert kept is not None
    assert (kept.preset_id, kept.preset_name, kept.preset_version) == (None, "sales", 4)
    assert count(session, ChannelBinding) == 0


# --- ranking logs ------------------------------------------------------------------------------------------


def test_record_ranking_round_trips(migrated: Engine) -> None:
    factory = session_factory(migrated)
    given = [
        candidate(3, rerank_rank=1, rerank_score=0.91, used=True, citation=1, dense_rank=5, dense_score=0.41),
        candidate(1, rerank_rank=3, rerank_score=0.12, dense_rank=1, dense_score=0.62, lexical_rank=2),
        candidate(2, rerank_rank=2, rerank_score=0.55, used=True, citation=2, lexical_rank=1, lexical_score=7.5),
    ]
    for c in given:  # every column round-trips: fill the per-channel fields the helper leaves out
        for key in ("dense_rank", "dense_score", "lexical_rank", "lexical_score"):
            c.setdefault(key, None)
    timings = {"embed": 1.5, "retrieve": 12.25, "rerank": 80.0, "answer": 310.125}
    before = datetime.now(timezone.utc) - timedelta(seconds=5)
    with factory() as session:
        preset = default_preset(session)
        log = record(
            session,
            preset=preset,
            question="Which regions host EU customer data?",
            channel="C0123ABCD",
            user="U042",
            instruction=preset.instruction,
            collection="kb",
            answer="Frankfurt and Dublin [1][2].",
            rerank_status="ok",
            reranker="Qwen/Qwen3-Reranker-0.6B",
            timings_ms=timings,
            retrieval_mode="hybrid",
            candidates=given,
        )
        assert log.id is not None  # flushed, not committed
        assert [c.retrieval_rank for c in log.candidates] == [1, 2, 3]
        session.commit()
        log_id, preset_id = log.id, preset.id

    with factory() as session:
        stored = session.get(RankingLog, log_id)
        assert stored is not None
        assert stored.question == "Which regions host EU customer data?"
        assert (stored.channel, stored.user) == ("C0123ABCD", "U042")
        assert (stored.preset_id, stored.preset_name, stored.preset_version) == (preset_id, "default", 1)
        assert stored.preset is not None and stored.preset.name == "default"
        assert stored.instruction.startswith("Given a question")
        assert stored.collection == "kb"
        assert stored.answer == "Frankfurt and Dublin [1][2]."
        assert (stored.status, stored.error) == ("ok", None)
        assert (stored.rerank_status, stored.reranker) == ("ok", "Qwen/Qwen3-Reranker-0.6B")
        assert stored.timings_ms == timings
        assert stored.retrieval_mode == "hybrid"
        assert stored.created_at.tzinfo is not None and stored.created_at.utcoffset() == timedelta(0)
        assert before <= stored.created_at <= datetime.now(timezone.utc) + timedelta(seconds=5)

        columns = [c.key for c in LoggedCandidate.__table__.columns if c.key not in ("id", "ranking_id")]
        got = [{key: getattr(c, key) for key in columns} for c in stored.candidates]
        assert got == sorted(given, key=lambda c: c["retrieval_rank"])
        assert all(c.ranking_id == log_id for c in stored.candidates)


def test_record_ranking_skipped_rerank_without_preset(session: Session) -> None:
    log = record(
        session,
        preset=None,
        channel=None,
        user=None,
        answer=None,
        status="error",
        error="LLM timed out",
        rerank_status="skipped: model not installed",
        reranker=None,
        timings_ms={},
        candidates=[],
    )
    session.commit()
    session.expunge_all()
    stored = session.get(RankingLog, log.id)
    assert stored is not None
    assert (stored.preset_id, stored.preset_name, stored.preset_version) == (None, "(none)", 0)
    assert (stored.status, stored.error, stored.answer) == ("error", "LLM timed out", None)
    assert stored.rerank_status == "skipped: model not installed"
    assert stored.timings_ms == {}
    assert stored.candidates == []


def test_record_ranking_rejects_bad_input(session: Session) -> None:
    with pytest.raises(ValueError, match="status must be one of"):
        record(session, status="maybe")
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['score'\]"):
        record(session, candidates=[{**candidate(1), "score": 0.5}])
    with pytest.raises(ValueError, match=r"missing field\(s\) \['text'\]"):
        record(session, candidates=[{k: v for k, v in candidate(1).items() if k != "text"}])
    session.rollback()
    assert count(session, RankingLog) == 0


def test_status_check_constraint(session: Session) -> None:
    with pytest.raises(IntegrityError):
        session.execute(
            insert(RankingLog).values(
                question="q",
                preset_name="default",
                preset_version=1,
                instruction="i",
                collection="kb",
                status="weird",
                rerank_status="ok",
                timings_ms={},
            )
        )
    session.rollback()


@pytest.mark.parametrize("how", ["orm", "sql"])
def test_deleting_a_ranking_deletes_candidates_and_feedback(session: Session, how: str) -> None:
    keep = record(session, candidates=[candidate(1)])
    doomed = record(session, candidates=[candidate(1), candidate(2), candidate(3)])
    add_feedback(session, doomed.id, +1, user="U1")
    add_feedback(session, doomed.id, -1, user="U2", comment="wrong plan")
    add_feedback(session, keep.id, +1)
    session.commit()
    doomed_id = doomed.id
    session.expunge_all()  # nothing loaded: the database's ON DELETE CASCADE must do the work

    if how == "orm":
        session.delete(session.get(RankingLog, doomed_id))
    else:
        session.execute(delete(RankingLog).where(RankingLog.id == doomed_id))
    session.commit()

    assert session.scalars(select(RankingLog.id)).all() == [keep.id]
    assert session.scalars(select(LoggedCandidate.ranking_id)).all() == [keep.id]
    assert session.scalars(select(Feedback.ranking_id)).all() == [keep.id]


# --- feedback ----------------------------------------------------------------------------------------------


def test_add_feedback(session: Session) -> None:
    log = record(session)
    up = add_feedback(session, log.id, 1, user="U1")
    down = add_feedback(session, log.id, -1, user="U2", comment="outdated")
    session.commit()
    assert up.id is not None and down.id is not None
    session.expunge_all()
    stored = session.get(RankingLog, log.id)
    assert stored is not None
    assert [(f.value, f.user, f.comment) for f in stored.feedback] == [(1, "U1", None), (-1, "U2", "outdated")]
    assert all(f.created_at.utcoffset() == timedelta(0) for f in stored.feedback)


@pytest.mark.parametrize("value", [0, 2, -2, True])
def test_feedback_value_must_be_plus_or_minus_one(session: Session, value: int) -> None:
    log = record(session)
    session.commit()
    with pytest.raises(ValueError, match=r"\+1 or -1"):
        add_feedback(session, log.id, value)


@pytest.mark.parametrize("value", [0, 2])
def test_feedback_check_constraint_in_database(session: Session, value: int) -> None:
    log = record(session)
    session.commit()
    with pytest.raises(IntegrityError):
        session.execute(insert(Feedback).values(ranking_id=log.id, value=value))
    session.rollback()
    session.add(Feedback(ranking_id=log.id, value=value))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()
    assert count(session, Feedback) == 0


def test_feedback_for_unknown_ranking_raises(session: Session) -> None:
    with pytest.raises(ValueError, match="No ranking with id 12345"):
        add_feedback(session, 12345, 1)


def test_timestamps_are_stored_as_utc(session: Session) -> None:
    log = record(session)
    berlin_noon = datetime(2024, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    fb = Feedback(ranking_id=log.id, value=1, created_at=berlin_noon)
    session.add(fb)
    session.commit()
    session.expunge_all()
    stored = session.get(Feedback, fb.id)
    assert stored is not None
    assert stored.created_at == datetime(2024, 6, 1, 10, 0, tzinfo=timezone.utc)
    assert stored.created_at.utcoffset() == timedelta(0)


def test_claim_slack_event_dedupes_on_event_id_and_on_channel_ts(migrated: Engine) -> None:
    from store import claim_slack_event

    sessions = session_factory(migrated)
    with sessions.begin() as session:
        assert claim_slack_event(session, "C1", "100.1", "Ev1") is True
        assert claim_slack_event(session, "C1", "100.1", "Ev1") is False  # Slack's retry
        assert claim_slack_event(session, "C1", "100.1", "Ev2") is False  # same message as another event type
        assert claim_slack_event(session, "C1", "100.2", "Ev1") is False  # same event id
        assert claim_slack_event(session, "C2", "100.1", None) is True  # other channel, no event id
        assert claim_slack_event(session, "C2", "100.3", None) is True  # NULL event ids never collide
    # a second process (another session on the same database) sees the claim
    with sessions.begin() as other:
        assert claim_slack_event(other, "C1", "100.1", "Ev3") is False
        assert count(other, store.SlackEvent) == 3


def test_feedback_comment_and_lookup_by_user(session: Session) -> None:
    from store import set_feedback_comment, user_feedback

    log = record(session)
    assert user_feedback(session, log.id, "U1") is None
    vote = add_feedback(session, log.id, -1, user="U1")
    assert user_feedback(session, log.id, "U1").id == vote.id and user_feedback(session, log.id, "U2") is None
    set_feedback_comment(session, vote.id, "Cited the old pricing page")
    assert session.get(store.Feedback, vote.id).comment == "Cited the old pricing page"
    with pytest.raises(ValueError, match="No feedback"):
        set_feedback_comment(session, 999999, "x")
