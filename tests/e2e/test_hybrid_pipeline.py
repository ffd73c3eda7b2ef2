"""Hybrid retrieval as users see it: `ragbot ask --json` reports each candidate's place in both legs, the ranking
log keeps the same values, a preset picks the retrieval mode, and a collection from before the lexical leg
is named for `ragbot ingest --rebuild`."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

import store
from retrieval import Retriever
from retrieval.edge_index import EdgeIndex
from retrieval.index import IndexPoint, point_id
from tests.e2e.test_cli import run_cli

LEG_FIELDS = ("dense_rank", "dense_score", "lexical_rank", "lexical_score")


def _ranking_rows(env: Path, ranking_id: int) -> tuple[str | None, list[store.LoggedCandidate]]:
    engine = store.make_engine(f"sqlite:///{env / 'ragbot.db'}")
    try:
        with store.session_factory(engine)() as session:
            log = session.get(store.RankingLog, ranking_id)
            return log.retrieval_mode, list(log.candidates)
    finally:
        engine.dispose()


def test_ask_json_reports_both_legs_and_logs_them(env: Path, embedders, capsys) -> None:
    question = "How do I fix SAML-401 signature validation failed?"
    code, out, _ = run_cli(capsys, "ask", question, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["retrieval"] == {"mode": "hybrid", "note": None}
    assert data["preset"]["retrieval_mode"] == "hybrid"
    candidates = data["candidates"]
    assert len(candidates) == 20
    assert sorted(c["retrieval_rank"] for c in candidates) == list(range(1, 21))
    for c in candidates:
        assert set(LEG_FIELDS) <= set(c)
        assert c["dense_rank"] is not None or c["lexical_rank"] is not None  # fused from at least one leg
        assert (c["dense_rank"] is None) == (c["dense_score"] is None)
        assert (c["lexical_rank"] is None) == (c["lexical_score"] is None)
    for leg in ("dense_rank", "lexical_rank"):
        ranks = [c[leg] for c in candidates if c[leg] is not None]
        assert len(ranks) == len(set(ranks)) and all(r >= 1 for r in ranks)
    by_rank = {c["retrieval_rank"]: c for c in candidates}
    assert by_rank[1]["lexical_rank"] is not None  # SAML-401 is quoted in the troubleshooting page

    # the same values as the retriever gives on its own (the CLI has closed the embedded store)
    index = EdgeIndex(env / "qdrant")
    try:
        alone = Retriever(index, embedders).search(question, "kb", 20)
    finally:
        index.close()
    assert alone.mode == "hybrid"
    for candidate in alone.candidates:
        shown = by_rank[candidate.retrieval_rank]
        assert (shown["title"], shown["section"]) == (candidate.title, candidate.section)
        assert (shown["dense_rank"], shown["lexical_rank"]) == (candidate.dense_rank, candidate.lexical_rank)
        assert shown["retrieval_score"] == pytest.approx(candidate.retrieval_score, rel=1e-5)
        for score in ("dense_score", "lexical_score"):
            expected = getattr(candidate, score)
            assert shown[score] == (expected if expected is None else pytest.approx(expected, rel=1e-5)), score

    # the ranking log rows carry the same per-leg values
    mode, rows = _ranking_rows(env, data["ranking_id"])
    assert mode == "hybrid" and len(rows) == 20
    for row in rows:
        shown = by_rank[row.retrieval_rank]
        assert (row.title, row.section, row.rerank_rank) == (shown["title"], shown["section"], shown["rerank_rank"])
        for name in LEG_FIELDS:
            expected = shown[name]
            assert getattr(row, name) == (expected if expected is None else pytest.approx(expected, rel=1e-6)), name


@pytest.mark.parametrize(("mode", "ran", "absent"), [("lexical", "lexical", "dense"), ("dense", "dense", "lexical")])
def test_the_preset_picks_the_retrieval_mode(components, mode: str, ran: str, absent: str) -> None:
    with components.sessions.begin() as session:
        session.add(
            store.Preset(
                team="it", name="it", instruction="", candidates_k=8, top_n=2, min_score=0.0, retrieval_mode=mode
            )
        )
        session.flush()
        store.bind_channel(session, "C0IT", "it")
    result = components.answers.ask("SAML single sign-on with Okta", channel="C0IT")
    assert result.preset.retrieval_mode == mode and result.retrieval_mode == mode and result.retrieval_note is None
    data = result.to_json()
    assert data["retrieval"] == {"mode": mode, "note": None} and data["preset"]["retrieval_mode"] == mode
    assert len(result.candidates) == 8
    for rc in result.candidates:
        c = rc.candidate
        assert getattr(c, f"{ran}_rank") == c.retrieval_rank
        assert getattr(c, f"{ran}_score") == pytest.approx(c.retrieval_score)
        assert getattr(c, f"{absent}_rank") is None and getattr(c, f"{absent}_score") is None
    with components.sessions() as session:
        log = session.get(store.RankingLog, result.ranking_id)
        assert log.retrieval_mode == mode
        for row in log.candidates:
            assert getattr(row, f"{ran}_rank") == row.retrieval_rank
            assert getattr(row, f"{absent}_rank") is None and getattr(row, f"{absent}_score") is None


def test_leg_ranks_are_fetched_while_reranking_and_never_fail_an_answer(components, monkeypatch, caplog) -> None:
    """The fused query alone precedes reranking; each leg's ranking is fetched on another thread meanwhile.
    If that fetch fails, the answer still goes out, without per-leg ranks."""
    index = components.retriever.index
    places = index.leg_places
    threads: dict[str, str] = {}
    reranker = components.reranker.get()
    score = reranker.score

    def fetch(*args):
        threads["explain"] = threading.current_thread().name
        return places(*args)

    def rerank(*args, **kwargs):
        threads["rerank"] = threading.current_thread().name
        return score(*args, **kwargs)

    monkeypatch.setattr(index, "leg_places", fetch)
    monkeypatch.setattr(reranker, "score", rerank)
    result = components.answers.ask("SAML single sign-on with Okta")
    assert threads["explain"].startswith("ragbot-explain") and threads["explain"] != threads["rerank"]
    assert result.rerank == "ok" and any(rc.candidate.lexical_rank for rc in result.candidates)

    def broken(*args):
        raise ConnectionError("Qdrant went away")

    monkeypatch.setattr(index, "leg_places", broken)
    with caplog.at_level(logging.WARNING, logger="bot.answering.service"):
        result = components.answers.ask("SAML single sign-on with Okta")
    assert result.status == "ok" and result.ranking_id is not None
    assert all(rc.candidate.dense_rank is None and rc.candidate.lexical_rank is None for rc in result.candidates)
    assert "dense and lexical ranks" in caplog.text


def test_a_legacy_collection_asks_for_rebuild_then_rebuilds(env: Path, capsys, tmp_path: Path) -> None:
    meta_file = env / "qdrant" / "kb" / "collection.json"
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    del meta["lexical_model"]
    meta_file.write_text(json.dumps(meta), encoding="utf-8")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "sso.md").write_text("# SSO\n\nSingle sign-on with SAML 2.0 is on the Business plan.", encoding="utf-8")
    (docs / "fapiao.md").write_text("# 发票\n\n增值税专用发票必须加盖发票专用章。", encoding="utf-8")

    # asking still works, dense only, and says why
    code, out, _ = run_cli(capsys, "ask", "SAML single sign-on", "--json")
    assert code == 0
    retrieval = json.loads(out)["retrieval"]
    assert retrieval["mode"] == "dense" and "--rebuild" in retrieval["note"]

    code, out, err = run_cli(capsys, "ingest", str(docs))
    assert code == 1
    errors = [line for line in err.splitlines() if "Error:" in line]
    assert len(errors) == 1, err
    assert "ragbot ingest" in errors[0] and "--rebuild" in errors[0] and "'kb'" in errors[0]
    assert "Ingested" not in out

    code, out, err = run_cli(capsys, "ingest", str(docs), "--rebuild")
    assert code == 0, err
    assert "Ingested 2 files into 'kb'" in out and "2 added" in out
    assert json.loads(meta_file.read_text(encoding="utf-8"))["lexical_model"]

    code, out, _ = run_cli(capsys, "ask", "SAML single sign-on", "--json")
    data = json.loads(out)
    assert code == 0 and data["retrieval"] == {"mode": "hybrid", "note": None}
    assert len(data["candidates"]) == 2  # only the rebuilt documents are left
    assert {c["title"] for c in data["candidates"]} == {"SSO", "发票"}


def test_demo_rebuilds_an_old_collection_only_when_it_holds_nothing_but_the_sample(
    env: Path, monkeypatch, embedders
) -> None:
    import bot.cli.demo
    from bot.cli.demo import holds_only_the_sample

    meta_file = env / "qdrant" / "kb" / "collection.json"
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    index = EdgeIndex(env / "qdrant")
    try:
        # the test store was ingested from a copy of the sample knowledge base: point the demo at that copy
        some_path = next(iter(index.file_hashes("kb")))
        monkeypatch.setattr(bot.cli.demo, "SAMPLE_KB", Path(some_path.split("/sample_kb/")[0]) / "sample_kb")
        assert not holds_only_the_sample(index, "kb", embedders)  # current: nothing to rebuild
        assert holds_only_the_sample(
            index, "kb", [embedders[0], SimpleNamespace(name="other/model", dimension=8)]
        )  # other models: outdated
        del meta["lexical_model"]
        meta_file.write_text(json.dumps(meta), encoding="utf-8")
        assert holds_only_the_sample(index, "kb", embedders)  # an old demo collection: `ragbot demo` rebuilds it
        assert not holds_only_the_sample(index, "missing", embedders)
        user_file = {"path": "/srv/docs/pricing.md", "file_hash": "x", "chunk_index": 0, "text": "Pricing"}
        index.upsert("kb", [IndexPoint(point_id("/srv/docs/pricing.md", 0), [0.0] * 383 + [1.0], user_file)])
        assert not holds_only_the_sample(index, "kb", embedders)  # the user's own documents: never dropped
    finally:
        index.close()
