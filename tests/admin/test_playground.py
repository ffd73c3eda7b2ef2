"""The playground: rank pasted candidates with the real (tiny, random-weight) reranker, export them, and ask the
whole pipeline; bad input and a missing reranker are said plainly."""

from __future__ import annotations

import csv
import html
import io
import re

import store
from admin import playground
from rerank import DEFAULT_INSTRUCTION

CANDIDATES = [
    "SSO is not available on the Starter plan.",
    "Starter 套餐无法使用 SSO，需要升级到 Business。",
    "",  # blank lines are dropped, line numbers still count them
    "Invoices are issued electronically and need no company stamp.",
    "数电发票无需加盖发票专用章。",
    "The Business plan allows 600 API requests per minute per token.",
]
TEXTS = [line for line in CANDIDATES if line]


def ranked(page: str) -> list[tuple[int, float, int, str]]:
    """(rank, score, line, text) of each row in #ranked."""
    body = re.search(r'<tbody id="ranked">(.*?)</tbody>', page, re.S)
    assert body, "the page shows ranked results"
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S):
        rank, score, line, text = (html.unescape(c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S))
        score_text = re.search(r"(\d\.\d{3})$", score).group(1)
        rows.append((int(rank), float(score_text), int(line), text))
    return rows


def rank_form(**fields: str) -> dict[str, str]:
    return {"query": "Can Starter use SSO?", "candidates": "\n".join(CANDIDATES), "preset": "", **fields}


def test_ranking_custom_instructions_and_csv(live, components) -> None:
    with components.sessions.begin() as session:
        session.add(store.Preset(name="sales", team="sales", instruction="Find passages a salesperson can quote"))
    client = live("rita")  # any role may use the playground

    by_preset = client.form("/admin/playground/rank", rank_form(preset="sales"))
    assert by_preset.status_code == 200, by_preset.text
    rows = ranked(by_preset.text)
    assert sorted(text for *_, text in rows) == sorted(TEXTS)  # every candidate, Chinese included, unchanged
    assert [rank for rank, *_ in rows] == list(range(1, len(TEXTS) + 1))
    scores = [score for _, score, _, _ in rows]
    assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)
    assert all(CANDIDATES[line - 1] == text for _, _, line, text in rows)
    assert "Find passages a salesperson can quote" in by_preset.text
    # the form keeps its inputs
    assert 'value="Can Starter use SSO?"' in by_preset.text and "数电发票无需加盖发票专用章。" in by_preset.text

    custom = client.form("/admin/playground/rank", rank_form(preset="sales", instruction="Judge the tone only"))
    custom_scores = {text: score for _, score, _, text in ranked(custom.text)}
    preset_scores = {text: score for _, score, _, text in rows}
    assert custom_scores != preset_scores
    assert "Judge the tone only" in custom.text

    export = client.form("/admin/playground/rank.csv", rank_form(preset="sales", instruction="Judge the tone only"))
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    assert 'filename="playground.csv"' in export.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert table[0] == ["rank", "score", "line", "text"]
    assert len(table) == 1 + len(TEXTS)
    for _, score, line, text in table[1:]:
        assert CANDIDATES[int(line) - 1] == text
        assert abs(float(score) - custom_scores[text]) <= 0.0005 + 1e-9
    assert [int(r[0]) for r in table[1:]] == list(range(1, len(TEXTS) + 1))


def test_pipeline_mode_and_an_unavailable_reranker(live, components, monkeypatch) -> None:
    client = live("sam")
    page = client.form("/admin/playground/ask", {"question": "Can we integrate single sign-on?", "preset": ""})
    assert page.status_code == 200, page.text
    answer = re.search(r'<div id="answer".*?</div>\s*</div>\s*</div>', page.text, re.S).group(0)
    assert re.search(r"\[\d\]", answer)
    assert "Sources" in answer
    assert re.search(r'<a href="https://docs\.nimbusdesk\.example/[^"]+"', answer)
    assert "rerank 0." in answer or "rerank 1." in answer
    assert "👍 Helpful" in answer and "disabled" in answer
    assert "Retrieval: <strong>hybrid</strong>" in page.text
    rows = candidate_rows(page.text)
    assert len(rows) == 20 and [r["rerank"][0] for r in rows] == [f"#{i}" for i in range(1, 21)]
    assert sorted(int(r["retrieval"][0][1:]) for r in rows) == list(range(1, 21))
    assert any(r["dense"][0].startswith("#") for r in rows) and any(r["lexical"][0].startswith("#") for r in rows)
    assert all(len(r["dense"]) == 2 or r["dense"] == ["–"] for r in rows)  # a rank and its score, or a dash

    empty = client.form("/admin/playground/ask", {"question": "   ", "preset": ""})
    assert empty.status_code == 400 and "The question is empty" in empty.text
    unknown = client.form("/admin/playground/ask", {"question": "SSO?", "preset": "gone"})
    assert unknown.status_code == 400 and "no preset named &#39;gone&#39;" in unknown.text

    slot = components.reranker
    monkeypatch.setattr(slot, "get", lambda: None)
    monkeypatch.setattr(slot, "error", "Could not load the reranker from /models/nowhere: no such folder.")
    down = client.form("/admin/playground/rank", rank_form())
    assert down.status_code == 503
    assert "The reranker is unavailable: Could not load the reranker from /models/nowhere" in down.text
    assert 'id="ranked"' not in down.text
    # the pipeline still answers, and says reranking was skipped
    skipped = client.form("/admin/playground/ask", {"question": "How do I set up SAML with Okta?", "preset": ""})
    assert skipped.status_code == 200 and "Reranking was skipped: reranker unavailable" in skipped.text


def candidate_rows(page: str) -> list[dict[str, list[str]]]:
    """The retrieved candidates under a pipeline answer: each cell's words, by column."""
    body = re.search(r'<tbody id="ask-candidates">(.*?)</tbody>', page, re.S).group(1)
    columns = ("retrieval", "dense", "lexical", "rerank", "used", "passage")
    rows = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S):
        cells = [re.sub(r"<[^>]+>", " ", cell).split() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        rows.append(dict(zip(columns, cells, strict=True)))
    return rows


def test_pipeline_mode_shows_the_presets_retrieval_mode_and_a_fallback(live, components, monkeypatch) -> None:
    with components.sessions.begin() as session:
        session.add(store.Preset(name="keywords", instruction="Find the passage", retrieval_mode="lexical"))
    client = live("rita")
    page = client.form("/admin/playground/ask", {"question": "SAML single sign-on with Okta", "preset": "keywords"})
    assert page.status_code == 200, page.text
    assert "Retrieval: <strong>lexical</strong>" in page.text and "BM25 keywords only" in page.text
    rows = candidate_rows(page.text)
    assert rows and all(r["dense"] == ["–"] and r["lexical"][0].startswith("#") for r in rows)

    search = components.retriever.search

    def legacy(question, collection, limit, filters=None, mode="hybrid", **options):  # no keyword vectors
        result = search(question, collection, limit, filters, mode="dense", **options)
        result.note = "Collection kb has no keyword vectors: re-ingest it for lexical retrieval."
        return result

    monkeypatch.setattr(components.retriever, "search", legacy)
    fallback = client.form("/admin/playground/ask", {"question": "SAML with Okta", "preset": "keywords"})
    assert "Retrieval: <strong>dense</strong>" in fallback.text
    assert "ℹ️ Collection kb has no keyword vectors: re-ingest it for lexical retrieval." in fallback.text
    assert all(r["lexical"] == ["–"] for r in candidate_rows(fallback.text))


def test_load_example_prefills_the_form(as_user) -> None:
    page = as_user("rita").get("/admin/playground?example=1")
    assert page.status_code == 200
    assert f'value="{html.escape(playground.EXAMPLE_QUERY)}"' in page.text
    assert html.escape(playground.EXAMPLE_CANDIDATES, quote=False) in page.text
    lines = playground.EXAMPLE_CANDIDATES.splitlines()
    assert 6 <= len(lines) <= 10 and any(re.search(r"[\u4e00-\u9fff]", line) for line in lines)
    blank = as_user("alice").get("/admin/playground")
    for label in ("Rank", "Export CSV", "Load example", "Ask"):
        assert f">{label}<" in blank.text
    assert "playground?example=1" in blank.text


def test_bad_input_is_said_next_to_the_field(as_user) -> None:
    client = as_user("alice")  # validation happens before the pipeline is touched
    cases = [
        (rank_form(query=" "), "Enter a query"),
        (rank_form(candidates="\n  \n"), "Paste at least one candidate"),
        (rank_form(candidates="\n".join(f"doc {i}" for i in range(101))), "There are 101 candidates; the limit is 100"),
        (rank_form(candidates="short\n" + "x" * 4001), "Line 2 is 4,001 characters"),
        (rank_form(preset="nope"), "no preset named"),
    ]
    for url in ("/admin/playground/rank", "/admin/playground/rank.csv"):
        for data, message in cases:
            response = client.form(url, data)
            assert response.status_code == 400, (url, message)
            assert message in html.unescape(response.text), (url, message)
            assert 'role="alert"' in response.text


def test_candidate_parsing_and_instruction_choice() -> None:
    assert playground.parse_candidates(" a \n\n b\n") == [(1, "a"), (3, "b")]
    assert playground.choose_instruction("  mine ", "preset's") == ("mine", "custom")
    assert playground.choose_instruction("", "preset's") == ("preset's", "preset")
    assert playground.choose_instruction("", "  ") == (DEFAULT_INSTRUCTION, "default")
    link = playground.answer_html("See **this** [docs](https://docs.nimbusdesk.example/a) <script>")
    assert "<strong>this</strong>" in link and '<a href="https://docs.nimbusdesk.example/a"' in link
    assert "&lt;script&gt;" in link
