"""Ranking review: the filtered, paged list, the detail page, reviewers' labels, the CSV and JSONL exports."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, insert, select

import store
from admin import rankings

T0 = datetime(2025, 3, 10, 12, 0, tzinfo=timezone.utc)


def candidate(rank: int, **fields) -> dict:
    return {
        "point_id": f"p{rank}",
        "doc_id": f"doc{rank}",
        "title": f"Title {rank}",
        "source": f"https://docs.example/{rank}",
        "section": f"Section {rank}",
        "text": f"Passage text {rank}",
        "retrieval_rank": rank,
        "retrieval_score": 1 - rank / 10,
        "rerank_rank": rank,
        "rerank_score": -rank / 2,
        "used": rank == 1,
        "citation": 1 if rank == 1 else None,
        **fields,
    }


def seed(
    session,
    question: str,
    *,
    when: datetime = T0,
    channel: str | None = "C-sales",
    preset: str = "default",
    status: str = "ok",
    votes: tuple[int, ...] = (),
    candidates: list[dict] | None = None,
    retrieval_mode: str | None = None,
    rerank_status: str = "ok",
) -> int:
    preset_row = session.scalar(select(store.Preset).where(store.Preset.name == preset))
    if preset_row is None:
        preset_row = store.Preset(name=preset, instruction=f"instruction of {preset}", version=2)
        session.add(preset_row)
        session.flush()
    log = store.record_ranking(
        session,
        question=question,
        channel=channel,
        user="U1",
        preset=preset_row,
        instruction=preset_row.instruction,
        collection="kb",
        answer=f"Answer to {question} [1]" if status == "ok" else None,
        status=status,
        error="boom" if status == "error" else None,
        rerank_status=rerank_status,
        reranker="qwen3-tiny",
        timings_ms={"retrieve": 12.5, "rerank": 80.0},
        candidates=candidates if candidates is not None else [candidate(1), candidate(2)],
        retrieval_mode=retrieval_mode,
    )
    log.created_at = when
    for i, value in enumerate(votes):
        store.add_feedback(session, log.id, value, user=f"U{i}", comment=f"comment {i}" if value < 0 else None)
    session.flush()
    return log.id


def questions(html: str) -> list[str]:
    """The questions listed on a rankings page, in order."""
    return re.findall(r'/rankings/\d+">([^<]+)</a>', html)


@pytest.fixture
def logged(sessions) -> dict[str, int]:
    """Six rankings over channels, presets, days, statuses and feedback; Q1 oldest ... Q6 newest."""
    with sessions.begin() as s:
        return {
            "Q1": seed(s, "Q1", when=T0, channel="C-sales", preset="default", votes=(1,)),
            "Q2": seed(s, "Q2", when=T0 + timedelta(days=1), channel="C-legal", preset="legal", votes=(-1,)),
            "Q3": seed(s, "Q3", when=T0 + timedelta(days=2), channel="C-sales", preset="legal", status="no_answer"),
            "Q4": seed(s, "Q4", when=T0 + timedelta(days=3), channel="C-legal", status="error", votes=(1, -1)),
            "Q5": seed(s, "Q5", when=T0 + timedelta(days=4, hours=11), channel=None),
            "Q6": seed(s, "Q6", when=T0 + timedelta(days=5), channel="C-sales", votes=(-1,)),
        }


def test_the_list_is_newest_first_and_each_filter_narrows_it(logged, as_user) -> None:
    rita = as_user("rita")
    page = rita.get("/admin/rankings")
    assert page.status_code == 200
    assert questions(page.text) == ["Q6", "Q5", "Q4", "Q3", "Q2", "Q1"]
    assert "default v1" in page.text and "legal v2" in page.text and "6 rankings" in page.text
    cases = {
        "channel=C-sales": ["Q6", "Q3", "Q1"],
        "preset=legal": ["Q3", "Q2"],
        "date_from=2025-03-11&date_to=2025-03-13": ["Q4", "Q3", "Q2"],  # inclusive days
        "date_from=2025-03-14": ["Q6", "Q5"],
        "date_to=2025-03-10": ["Q1"],
        "feedback=up": ["Q4", "Q1"],
        "feedback=down": ["Q6", "Q4", "Q2"],
        "feedback=none": ["Q5", "Q3"],
        "status=no_answer": ["Q3"],
        "status=error": ["Q4"],
        "channel=C-sales&feedback=down": ["Q6"],
        "channel=nowhere": [],
    }
    for query, expected in cases.items():
        response = rita.get(f"/admin/rankings?{query}")
        assert response.status_code == 200, query
        assert questions(response.text) == expected, query
    assert "No rankings match" in rita.get("/admin/rankings?channel=nowhere").text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("status=bogus", "status must be one of ok, no_answer, error, not &#39;bogus&#39;"),
        ("feedback=meh", "feedback must be one of up, down, none"),
        ("date_from=2025-13-01", "date_from must be a date written YYYY-MM-DD"),
        ("date_to=yesterday", "date_to must be a date written YYYY-MM-DD"),
        ("date_from=2025-03-12&date_to=2025-03-11", "date_from (2025-03-12) is after date_to (2025-03-11)"),
        ("page=abc", "page must be a whole number from 1"),
        ("page=0", "page must be a whole number from 1"),
    ],
)
def test_invalid_filters_get_a_clear_message(logged, as_user, query: str, message: str) -> None:
    rita = as_user("rita")
    response = rita.get(f"/admin/rankings?{query}")
    assert response.status_code == 400
    assert message in response.text
    assert 'name="channel"' in response.text  # the form is still there to fix it
    for export in ("/admin/rankings/export.csv", "/admin/labels/export.jsonl"):
        if not query.startswith("page"):
            bad = rita.get(f"{export}?{query}")
            assert bad.status_code == 400 and message in bad.text


def test_pages_of_fifty_keep_the_filters(sessions, as_user) -> None:
    with sessions.begin() as s:
        for i in range(120):
            seed(s, f"S{i:03d}", when=T0 + timedelta(minutes=i), candidates=[candidate(1)])
        seed(s, "other channel", when=T0 + timedelta(days=9), channel="C-other")
    rita = as_user("rita")
    first = rita.get("/admin/rankings?channel=C-sales")
    assert questions(first.text) == [f"S{i:03d}" for i in range(119, 69, -1)]
    assert "Page 1 of 3" in first.text and "120 rankings" in first.text and "← Newer" not in first.text
    next_link = re.search(r'href="([^"]+)">Older', first.text).group(1).replace("&amp;", "&")
    assert "channel=C-sales" in next_link and "page=2" in next_link
    second = rita.get(next_link)
    assert questions(second.text) == [f"S{i:03d}" for i in range(69, 19, -1)]
    assert "Page 2 of 3" in second.text and "← Newer" in second.text
    third = rita.get("/admin/rankings?channel=C-sales&page=3")
    assert questions(third.text) == [f"S{i:03d}" for i in range(19, -1, -1)]
    assert "Older →" not in third.text
    assert questions(rita.get("/admin/rankings?channel=C-sales&page=99").text) == questions(third.text)
    csv_link = re.search(r'href="([^"]+)">Download CSV', first.text).group(1)
    assert csv_link.endswith("/rankings/export.csv?channel=C-sales")
    assert "Download labels (JSONL)" in first.text


def test_the_detail_page_shows_everything_about_one_question(sessions, as_user) -> None:
    with sessions.begin() as s:
        ranking_id = seed(
            s,
            "How do refunds work?",
            preset="legal",
            votes=(-1,),
            candidates=[
                candidate(1, text="Refunds <b>take</b> 5 days"),
                candidate(2, source="javascript:alert(1)", used=False),
                candidate(3, source="handbook/refunds.md", rerank_rank=None, rerank_score=None),
            ],
        )
    page = as_user("rita").get(f"/admin/rankings/{ranking_id}")
    assert page.status_code == 200
    text = page.text
    assert "How do refunds work?" in text and "Answer to How do refunds work? [1]" in text
    assert "<strong>legal</strong> v2" in text and "instruction of legal" in text
    assert "Rerank: ok (qwen3-tiny)" in text and "retrieve 12 ms" in text and "rerank 80 ms" in text
    assert "comment 0" in text and "👎" in text
    rows = re.findall(r'<tr id="c\d+" class="(used|)">', text)
    assert rows == ["used", "", ""]
    assert text.index("Title 1") < text.index("Title 2") < text.index("Title 3")
    assert '#1<br><span class="muted">0.9000</span>' in text and "-0.5000" in text and "yes [1]" in text
    assert '<pre class="passage">Refunds &lt;b&gt;take&lt;/b&gt; 5 days</pre>' in text
    assert '<a href="https://docs.example/1"' in text
    assert 'href="javascript:' not in text and "javascript:alert(1)" in text
    assert "handbook/refunds.md" in text and "Section 3" in text
    assert text.count(">Relevant</button>") == 3 and text.count(">Not relevant</button>") == 3
    assert as_user("alice").get("/admin/rankings/999").status_code == 404


def labels(sessions) -> set[tuple[int, str, bool]]:
    with sessions() as s:
        label = store.CandidateLabel
        return {tuple(r) for r in s.execute(select(label.candidate_id, label.reviewer, label.relevant))}


def test_reviewers_label_candidates_relevant_or_not(sessions, logged, as_user) -> None:
    with sessions() as s:
        first, second = s.get(store.RankingLog, logged["Q1"]).candidates
        other = s.get(store.RankingLog, logged["Q2"]).candidates[0]
    rita, alice = as_user("rita"), as_user("alice")
    url = f"/admin/rankings/{logged['Q1']}/labels"
    response = rita.form(url, {"candidate_id": first.id, "relevant": "1"})
    assert response.status_code == 303
    assert response.headers["location"].endswith(f"/admin/rankings/{logged['Q1']}#c{first.id}")
    assert labels(sessions) == {(first.id, "rita", True)}
    detail = rita.get(f"/admin/rankings/{logged['Q1']}").text
    assert '<span class="good">relevant</span>' in detail and "not labeled" in detail
    rita.form(url, {"candidate_id": first.id, "relevant": "0"})  # changes her mind
    alice.form(url, {"candidate_id": first.id, "relevant": "1"})  # a second reviewer, her own label
    rita.form(url, {"candidate_id": second.id, "relevant": "0"})
    assert labels(sessions) == {(first.id, "rita", False), (first.id, "alice", True), (second.id, "rita", False)}
    rita.form(url, {"candidate_id": first.id, "relevant": "clear"})
    assert labels(sessions) == {(first.id, "alice", True), (second.id, "rita", False)}

    refused = rita.form(url, {"candidate_id": other.id, "relevant": "1"})  # belongs to Q2
    assert refused.status_code == 400 and "is not part of ranking" in refused.text
    assert rita.form(url, {"candidate_id": first.id, "relevant": "maybe"}).status_code == 400
    assert rita.form("/admin/rankings/999/labels", {"candidate_id": first.id, "relevant": "1"}).status_code == 404
    assert rita.post(url, data={"candidate_id": first.id, "relevant": "1"}).status_code == 403  # no CSRF token
    assert labels(sessions) == {(first.id, "alice", True), (second.id, "rita", False)}


def test_an_answer_that_was_not_reranked_says_so_in_the_list(sessions, as_user) -> None:
    """Status "ok" alone read as reranked when the reranker was skipped."""
    with sessions.begin() as session:
        seed(session, "Reranked question")
        seed(session, "Unreranked question", rerank_status="skipped: reranker unavailable (no weights)")
    page = as_user("rita").get("/admin/rankings").text
    rows = {question: row for row in page.split("<tr>") for question in ("Reranked", "Unreranked") if question in row}
    assert 'title="skipped: reranker unavailable (no weights)">not reranked</span>' in rows["Unreranked"]
    assert "not reranked" not in rows["Reranked"]


def test_the_chosen_label_button_stays_solid_and_pressed(sessions, logged, as_user) -> None:
    """After "Relevant" the Relevant button must not turn light while "Not relevant" stays solid: that read as the
    opposite choice."""
    import re

    with sessions() as s:
        first = s.get(store.RankingLog, logged["Q1"]).candidates[0]
    rita = as_user("rita")
    rita.form(f"/admin/rankings/{logged['Q1']}/labels", {"candidate_id": first.id, "relevant": "1"})
    form = rita.get(f"/admin/rankings/{logged['Q1']}").text.split(f'value="{first.id}"', 1)[1].split("</form>", 1)[0]
    relevant = re.search(r'<button[^>]*value="1"[^>]*>', form)[0]
    not_relevant = re.search(r'<button[^>]*value="0"[^>]*>', form)[0]
    assert 'aria-pressed="true"' in relevant and "secondary" not in relevant
    assert 'aria-pressed="false"' in not_relevant and 'class="secondary"' in not_relevant


def test_set_label_refuses_a_candidate_of_another_ranking(sessions, logged) -> None:
    with sessions() as s:
        other = s.get(store.RankingLog, logged["Q2"]).candidates[0]
        with pytest.raises(rankings.LabelError, match="not part of ranking"):
            rankings.set_label(s, other.id, "rita", True, ranking_id=logged["Q1"])
        assert rankings.set_label(s, other.id, "rita", None, ranking_id=logged["Q2"]) is None
        label = rankings.set_label(s, other.id, "rita", True, ranking_id=logged["Q2"])
        assert rankings.set_label(s, other.id, "rita", False, ranking_id=logged["Q2"]) is label
        assert label.relevant is False and label.ranking_id == logged["Q2"]


def test_the_csv_has_one_row_per_candidate_of_the_filtered_rankings(sessions, logged, as_user) -> None:
    with sessions.begin() as s:
        evil = seed(
            s,
            '=HYPERLINK("http://evil")',
            when=T0 + timedelta(days=6),
            votes=(1,),
            candidates=[candidate(1, title="+cmd|' /C calc'!A0", text="@SUM(1)", section="-2+3", source="x")],
        )
    response = as_user("rita").get("/admin/rankings/export.csv?channel=C-sales")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == 'attachment; filename="rankings.csv"'
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == list(rankings.CSV_HEADER)
    # channel C-sales: the formula one (1 candidate), Q6, Q3, Q1 (2 candidates each), newest first
    assert [(int(r["ranking_id"]), r["retrieval_rank"]) for r in rows] == [
        (evil, "1"),
        (logged["Q6"], "1"),
        (logged["Q6"], "2"),
        (logged["Q3"], "1"),
        (logged["Q3"], "2"),
        (logged["Q1"], "1"),
        (logged["Q1"], "2"),
    ]
    first_q1 = rows[5]
    assert first_q1 == {
        "ranking_id": str(logged["Q1"]),
        "created_at": "2025-03-10T12:00:00+00:00",
        "channel": "C-sales",
        "user": "U1",
        "preset": "default",
        "preset_version": "1",
        "question": "Q1",
        "status": "ok",
        "rerank_status": "ok",
        "feedback": "1",
        "retrieval_rank": "1",
        "retrieval_score": "0.9",
        "rerank_rank": "1",
        "rerank_score": "-0.5",
        "used": "1",
        "citation": "1",
        "title": "Title 1",
        "section": "Section 1",
        "source": "https://docs.example/1",
        "text": "Passage text 1",
        "retrieval_mode": "",  # logged before hybrid retrieval: no mode, no per-leg ranks
        "dense_rank": "",
        "dense_score": "",
        "lexical_rank": "",
        "lexical_score": "",
    }
    assert rows[1]["feedback"] == "-1" and rows[3]["feedback"] == "" and rows[6]["used"] == "0"
    assert rows[6]["citation"] == ""
    formula = rows[0]
    assert formula["question"] == '\'=HYPERLINK("http://evil")'
    assert formula["title"] == "'+cmd|' /C calc'!A0"
    assert formula["text"] == "'@SUM(1)" and formula["section"] == "'-2+3"
    everything = as_user("alice").get("/admin/rankings/export.csv")
    assert len(list(csv.DictReader(io.StringIO(everything.text)))) == 13


CSV_COLUMNS_BEFORE_HYBRID = (
    "ranking_id created_at channel user preset preset_version question status rerank_status feedback "
    "retrieval_rank retrieval_score rerank_rank rerank_score used citation title section source text"
).split()
HYBRID_CANDIDATES = [
    candidate(1, dense_rank=2, dense_score=0.81, lexical_rank=1, lexical_score=12.5),  # in both channels
    candidate(2, dense_rank=1, dense_score=0.86),  # found by embeddings only
    candidate(3, lexical_rank=2, lexical_score=7.25),  # found by keywords only
]


def test_the_detail_page_shows_the_retrieval_mode_and_each_channels_rank(sessions, as_user) -> None:
    with sessions.begin() as s:
        hybrid = seed(s, "SSO on Starter?", retrieval_mode="hybrid", candidates=HYBRID_CANDIDATES)
        old = seed(s, "Logged before hybrid retrieval")
    rita = as_user("rita")
    text = rita.get(f"/admin/rankings/{hybrid}").text
    assert "Retrieval: <strong>hybrid</strong>" in text and "dense + lexical fused" in text
    assert "<th>Retrieval</th>" in text and ">Dense</th>" in text and ">Lexical</th>" in text
    cells = {
        int(row_id): re.findall(r'<td class="channel (dense|lexical)">(.*?)</td>', row, re.S)
        for row_id, row in re.findall(r'<tr id="c(\d+)"[^>]*>(.*?)</tr>', text, re.S)
    }
    shown = [[(channel, re.sub(r"<[^>]+>", " ", cell).split()) for channel, cell in row] for row in cells.values()]
    assert shown == [
        [("dense", ["#2", "0.8100"]), ("lexical", ["#1", "12.5000"])],
        [("dense", ["#1", "0.8600"]), ("lexical", ["–"])],
        [("dense", ["–"]), ("lexical", ["#2", "7.2500"])],
    ]
    assert 'title="not among the lexical results"' in text and 'title="not among the dense results"' in text
    before = rita.get(f"/admin/rankings/{old}").text
    assert "Retrieval: <strong>not recorded</strong>" in before
    assert before.count('<td class="channel dense"><span class="muted" title="not among the dense results">–') == 2


def test_the_csv_appends_the_retrieval_mode_and_the_channel_ranks(sessions, as_user) -> None:
    with sessions.begin() as s:
        hybrid = seed(s, "SSO on Starter?", retrieval_mode="hybrid", candidates=HYBRID_CANDIDATES)
    response = as_user("rita").get("/admin/rankings/export.csv")
    table = list(csv.reader(io.StringIO(response.text)))
    appended = ["retrieval_mode", "dense_rank", "dense_score", "lexical_rank", "lexical_score"]
    assert table[0] == [*CSV_COLUMNS_BEFORE_HYBRID, *appended]  # other tools read the older columns by place
    rows = [dict(zip(table[0], row, strict=True)) for row in table[1:]]
    assert [(int(r["ranking_id"]), *(r[k] for k in appended)) for r in rows] == [
        (hybrid, "hybrid", "2", "0.81", "1", "12.5"),
        (hybrid, "hybrid", "1", "0.86", "", ""),
        (hybrid, "hybrid", "", "", "2", "7.25"),
    ]


def test_the_labels_export_is_one_evaluation_line_per_labeled_ranking(sessions, logged, as_user) -> None:
    with sessions.begin() as s:
        q1 = s.get(store.RankingLog, logged["Q1"]).candidates
        q2 = s.get(store.RankingLog, logged["Q2"]).candidates
        q2[1].source = q2[0].source  # two passages of one document
        rankings.set_label(s, q1[0].id, "rita", True, ranking_id=logged["Q1"])
        rankings.set_label(s, q1[1].id, "rita", False, ranking_id=logged["Q1"])
        rankings.set_label(s, q1[1].id, "alice", False, ranking_id=logged["Q1"])
        rankings.set_label(s, q2[0].id, "rita", False, ranking_id=logged["Q2"])
        rankings.set_label(s, q2[1].id, "rita", True, ranking_id=logged["Q2"])
    response = as_user("rita").get("/admin/labels/export.jsonl")
    assert response.status_code == 200
    assert response.headers["content-disposition"] == 'attachment; filename="labels.jsonl"'
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert lines == [
        {
            "question": "Q2",
            "channel": "C-legal",
            "preset": "legal",
            "ranking_id": logged["Q2"],
            "relevant": ["https://docs.example/1"],  # relevant through its second passage
            "not_relevant": [],
            "labels": [
                {
                    "source": "https://docs.example/1",
                    "title": "Title 1",
                    "section": "Section 1",
                    "doc_id": "doc1",
                    "relevant": False,
                    "reviewer": "rita",
                },
                {
                    "source": "https://docs.example/1",
                    "title": "Title 2",
                    "section": "Section 2",
                    "doc_id": "doc2",
                    "relevant": True,
                    "reviewer": "rita",
                },
            ],
        },
        {
            "question": "Q1",
            "channel": "C-sales",
            "preset": "default",
            "ranking_id": logged["Q1"],
            "relevant": ["https://docs.example/1"],
            "not_relevant": ["https://docs.example/2"],
            "labels": [
                {
                    "source": "https://docs.example/1",
                    "title": "Title 1",
                    "section": "Section 1",
                    "doc_id": "doc1",
                    "relevant": True,
                    "reviewer": "rita",
                },
                {
                    "source": "https://docs.example/2",
                    "title": "Title 2",
                    "section": "Section 2",
                    "doc_id": "doc2",
                    "relevant": False,
                    "reviewer": "alice",
                },
                {
                    "source": "https://docs.example/2",
                    "title": "Title 2",
                    "section": "Section 2",
                    "doc_id": "doc2",
                    "relevant": False,
                    "reviewer": "rita",
                },
            ],
        },
    ]
    filtered = as_user("alice").get("/admin/labels/export.jsonl?preset=default")
    assert [json.loads(line)["question"] for line in filtered.text.splitlines()] == ["Q1"]
    assert as_user("alice").get("/admin/labels/export.jsonl?channel=nowhere").text == ""


def test_a_team_admin_gets_none_of_it(logged, as_user) -> None:
    sam = as_user("sam")
    ranking = logged["Q1"]
    for url in (
        "/admin/rankings",
        "/admin/rankings?status=bogus",
        f"/admin/rankings/{ranking}",
        "/admin/rankings/export.csv",
        "/admin/labels/export.jsonl",
    ):
        assert sam.get(url).status_code == 403, url
    assert sam.form(f"/admin/rankings/{ranking}/labels", {"candidate_id": 1, "relevant": "1"}).status_code == 403


def test_the_csv_of_ten_thousand_candidates_streams_in_seconds(sessions, as_user) -> None:
    texts = "A passage of the handbook, long enough to look like one. " * 8
    with sessions.begin() as s:
        s.execute(
            insert(store.RankingLog),
            [
                {
                    "id": i,
                    "created_at": T0 + timedelta(minutes=i),
                    "question": f"Question {i}?",
                    "channel": "C-sales",
                    "user": "U1",
                    "preset_name": "default",
                    "preset_version": 1,
                    "instruction": "Find passages",
                    "collection": "kb",
                    "answer": "An answer [1]",
                    "status": "ok",
                    "rerank_status": "ok",
                    "timings_ms": {"retrieve": 10.0},
                }
                for i in range(1, 501)
            ],
        )
        s.execute(
            insert(store.LoggedCandidate),
            [{"ranking_id": i, **candidate(rank, text=texts)} for i in range(1, 501) for rank in range(1, 21)],
        )
        assert s.scalar(select(func.count(store.LoggedCandidate.id))) == 10_000
    rita = as_user("rita")
    started = time.perf_counter()
    with rita.stream("GET", "/admin/rankings/export.csv") as response:
        assert response.status_code == 200
        assert "content-length" not in response.headers  # streamed, not built up front
        chunks = list(response.iter_raw())
    elapsed = time.perf_counter() - started
    body = b"".join(chunks).decode()
    assert len(body.splitlines()) == 10_001
    assert len(chunks) >= 10  # the header, then one chunk per 1,000 rows
    assert elapsed < 15, f"the CSV export took {elapsed:.1f}s"
    print(f"CSV export of 10,000 candidates: {elapsed:.2f}s, {len(body) / 1e6:.1f} MB in {len(chunks)} chunks")
