"""The overview: numbers computed from a seeded ranking log, checked against hand-computed values, and the page
with its four inline SVG charts (or its empty state)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta, timezone

import pytest

import store
from admin import overview

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
UTC = timezone.utc


def candidate(rank: int, score: float | None, used: bool) -> dict:
    return {
        "point_id": f"p{rank}",
        "doc_id": f"d{rank}",
        "title": f"Doc {rank}",
        "source": f"https://docs.nimbusdesk.example/{rank}",
        "section": "",
        "text": "…",
        "retrieval_rank": rank,
        "retrieval_score": 0.5,
        "rerank_score": score,
        "used": used,
    }


def ranking(session, created_at, preset, status="ok", timings=None, used=(), unused=(), votes=()) -> int:
    scored = [(s, True) for s in used] + [(s, False) for s in unused]
    row = store.record_ranking(
        session,
        question="q",
        channel="C1",
        user="U1",
        preset=preset,
        instruction="i",
        collection="kb",
        answer="a [1]",
        status=status,
        error=None,
        rerank_status="ok",
        reranker="tiny",
        timings_ms=timings or {},
        candidates=[candidate(i, s, u) for i, (s, u) in enumerate(scored, start=1)],
    )
    row.created_at = created_at
    for i, value in enumerate(votes):
        store.add_feedback(session, row.id, value, user=f"U{i}")
    session.flush()
    return row.id


def seed(session, day: datetime) -> None:
    """Six rankings around the window 2026-03-06 .. 2026-03-10 (five days ending at `day`)."""
    sales = store.Preset(name="sales", team="sales", instruction="i")
    session.add(sales)
    default = store.default_preset(session)
    d = day.replace(hour=0, minute=0, second=0, microsecond=0)
    t = {"embed": 10, "search": 20, "rerank": 100, "answer": 5, "total": 140}
    ranking(session, d - timedelta(days=4) + timedelta(hours=9), sales, "ok", t, (0.95, 0.81), (0.35, 0.05), (1, 1, -1))
    # 07:59 at UTC+8 is 23:59 UTC the day before: counted on that UTC day
    plus8 = timezone(timedelta(hours=8))
    late = (d - timedelta(days=4) + timedelta(hours=23, minutes=59)).astimezone(plus8)
    ranking(session, late, sales, "no_answer", {"rerank": 0.0, "total": 60}, (), (0.1, 0.0, None), (-1,))
    t3 = {"embed": 12, "search": 18, "rerank": 300, "answer": 7, "total": 200}
    ranking(session, d - timedelta(days=2), default, "ok", t3, (0.5, 1.0), (), (1,))
    ranking(session, d, default, "error", {"total": 9999})  # today, 00:00; failed: no latency
    ranking(session, d - timedelta(days=4) - timedelta(seconds=1), sales, "ok", t, (0.2,), (), (1,))  # just outside
    ranking(session, datetime(2025, 1, 1, tzinfo=UTC), sales, "ok", t, (0.2,), (), (1,))


def test_numbers_match_hand_computed_values(sessions) -> None:
    with sessions.begin() as session:
        seed(session, NOW)
    with sessions() as session:
        view = overview.build_overview(session, days=5, now=NOW)

    assert view.since == date(2026, 3, 6)
    assert view.per_day == [
        (date(2026, 3, 6), 2),
        (date(2026, 3, 7), 0),
        (date(2026, 3, 8), 1),
        (date(2026, 3, 9), 0),
        (date(2026, 3, 10), 1),
    ]
    assert [(f.preset, f.up, f.down) for f in view.feedback] == [("sales", 2, 2), ("default", 1, 0)]
    assert [(f.up_share, f.down_share) for f in view.feedback] == [(0.5, 0.5), (1.0, 0.0)]
    assert [b.used for b in view.scores] == [0, 0, 0, 0, 0, 1, 0, 0, 1, 2]
    assert [b.unused for b in view.scores] == [2, 1, 0, 1, 0, 0, 0, 0, 0, 0]  # 0.1 falls in 0.1-0.2; None skipped
    assert (view.scores[0].low, view.scores[9].high) == (0.0, 1.0)
    latency = {s.stage: (s.p50, s.p95, s.samples) for s in view.latency}
    assert latency["total"] == pytest.approx((140, 194, 3))  # [60, 140, 200]: 140 + 0.9 * 60
    assert latency["rerank"] == pytest.approx((100, 280, 3))  # [0, 100, 300]: 100 + 0.9 * 200
    assert latency["answer"] == pytest.approx((6, 6.9, 2))  # [5, 7]
    assert latency["embed"] == pytest.approx((11, 11.9, 2))
    assert view.totals == {"questions": 4, "ok": 2, "no_answer": 1, "error": 1, "up": 3, "down": 2, "ever": 6}

    with sessions() as session:
        one_day = overview.build_overview(session, days=1, now=NOW)
    assert one_day.per_day == [(date(2026, 3, 10), 1)] and one_day.latency == [] and one_day.feedback == []


def test_latency_uses_the_latest_rankings_only(sessions, monkeypatch) -> None:
    with sessions.begin() as session:
        for i, total in enumerate([1000, 10, 20]):  # the oldest is the slow one
            ranking(session, NOW - timedelta(hours=3 - i), None, "ok", {"total": total})
    monkeypatch.setattr(overview, "LATENCY_SAMPLE", 2)
    with sessions() as session:
        view = overview.build_overview(session, days=1, now=NOW)
    assert [(s.stage, s.p50, s.samples) for s in view.latency] == [("total", 15, 2)]


def test_helpers() -> None:
    assert [overview.parse_days(v) for v in (None, "", "7", "0", "9999", "abc", "-3")] == [30, 30, 7, 1, 365, 30, 1]


def test_the_page_draws_four_charts(sessions, as_user) -> None:
    with sessions.begin() as session:
        seed(session, datetime.now(UTC))
    page = as_user("rita").get("/admin/?days=5")
    assert page.status_code == 200
    assert "No questions logged yet" not in page.text
    for chart_id in ("chart-questions", "chart-feedback", "chart-scores", "chart-latency"):
        svg = re.search(rf'<svg id="{chart_id}".*?</svg>', page.text, re.S)
        assert svg, chart_id
        root = ET.fromstring(svg.group(0))  # well-formed, self-contained SVG
        assert root.get("role") == "img" and root.get("aria-label")
        bars = root.findall("{http://www.w3.org/2000/svg}rect")
        assert bars and all(bar.find("{http://www.w3.org/2000/svg}title").text for bar in bars)
    assert len(re.findall(r'<svg id="chart-questions".*?</svg>', page.text, re.S)[0].split("<rect")) - 1 == 5
    assert "sales: 2 👍 (50%)" in page.text  # tooltip
    assert "<td>sales</td><td>2</td><td>2</td><td>50%</td>" in page.text  # the numbers, as a table
    for url in re.findall(r'(?:src|href)="([^"]+)"', page.text):  # no external assets
        assert url.startswith(("http://testserver/", "/", "?")), url
    assert "selected>last 5 days" in page.text


def test_an_empty_score_chart_says_why(sessions, as_user) -> None:
    """With no reranked candidate in the period the chart is empty: the page says reranking was skipped."""
    with sessions.begin() as session:
        ranking(session, datetime.now(UTC), store.default_preset(session), "ok", {"total": 50})
    page = as_user("alice").get("/admin/").text
    assert "No reranked candidates in this period" in page
    with sessions.begin() as session:
        ranking(session, datetime.now(UTC), store.default_preset(session), "ok", {"total": 50}, (0.9,), (0.1,))
    page = as_user("alice").get("/admin/").text
    assert "No reranked candidates in this period" not in page and "per score bin" in page


def test_empty_states(sessions, as_user) -> None:
    client = as_user("sam")
    page = client.get("/admin/")
    assert page.status_code == 200 and "No questions logged yet" in page.text and "<svg" not in page.text
    with sessions.begin() as session:
        ranking(session, datetime(2020, 1, 1, tzinfo=UTC), None, "ok", {"total": 5})
    old = client.get("/admin/?days=abc")
    assert old.status_code == 200 and "No questions in the last 30 days" in old.text
