"""`ragbot eval` end to end: the sample knowledge base, the bundled embedder, a tiny reranker on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

import store
from evaluation.compare import bootstrap_ci, sign_test
from evaluation.dataset import EvalSetError, load_eval_set
from tests.conftest import SAMPLE_KB
from tests.e2e.test_cli import run_cli

EVAL_SET = SAMPLE_KB / "questions.jsonl"


def test_eval_prints_the_table_json_and_report(env: Path, capsys, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    code, out, err = run_cli(
        capsys,
        "eval",
        str(EVAL_SET),
        "--preset",
        "default",
        "--instruction",
        "Retrieve billing passages",
        "--report",
        str(report),
        "--json",
    )
    assert code == 0, err
    data = json.loads(out)
    names = [c["name"] for c in data["configurations"]]
    assert names == ["retrieval only", "preset default v1", "instruction: Retrieve billing passages"]
    n = len(load_eval_set(EVAL_SET))
    assert len(data["questions"]) == n
    for config in data["configurations"]:
        for metric in ("hit@1", "hit@3", "hit@5", "hit@10", "MRR@10", "nDCG@10", "recall"):
            assert 0.0 <= config[metric] <= 1.0
        assert config["hit@1"] <= config["hit@3"] <= config["hit@5"] <= config["hit@10"]
    baseline, reranked = data["configurations"][0], data["configurations"][1]
    assert baseline["recall"] == reranked["recall"]  # same candidates: reranking cannot change the ceiling
    assert baseline["rerank_p50_ms"] == 0 and reranked["rerank_p50_ms"] > 0
    assert baseline["recall"] > 0.5  # retrieval finds most relevant documents of the sample set
    [vs_base, _, head_to_head] = data["comparisons"]
    assert (vs_base["a"], vs_base["b"]) == ("retrieval only", "preset default v1")
    assert (
        0.0 <= vs_base["sign_test_p"] <= 1.0 and vs_base["ci_low"] <= vs_base["mean_difference"] <= vs_base["ci_high"]
    )
    assert head_to_head["a"] == "preset default v1"
    html = report.read_text(encoding="utf-8")
    assert "<svg" in html and "nDCG@10" in html and "http" not in html.split("<body>")[0].replace("https://", "")

    code, out, _ = run_cli(capsys, "eval", str(EVAL_SET), "--no-rerank")
    assert code == 0 and "retrieval" in out and "hit@1" in out and "MRR@10" in out


def test_replay_from_logs_reranks_labeled_questions(env: Path, capsys, components) -> None:
    result = components.answers.ask("How do I fix SAML-401 signature validation failed?", channel="C1")
    with components.sessions.begin() as session:
        rows = session.scalars(
            select(store.LoggedCandidate).where(store.LoggedCandidate.ranking_id == result.ranking_id)
        ).all()
        target = next(r for r in rows if "troubleshooting" in r.source or "SAML-401" in r.text)
        session.add(
            store.CandidateLabel(candidate_id=target.id, ranking_id=result.ranking_id, reviewer="rita", relevant=True)
        )
    components.close()
    code, out, err = run_cli(
        capsys, "eval", "--from-logs", "--since", "1d", "--instruction", "Troubleshooting first", "--json"
    )
    assert code == 0, err
    data = json.loads(out)
    assert len(data["questions"]) == 1
    names = [c["name"] for c in data["configurations"]]
    assert names[0] == "retrieval only" and "as answered (logged rerank)" in names
    assert data["configurations"][0]["recall"] == 1.0


@pytest.mark.parametrize("since", ["7", "1y", "0d", "seven days"])
def test_a_since_that_is_not_a_span_is_said_before_anything_loads(capsys, since: str) -> None:
    code, _, err = run_cli(capsys, "eval", "--from-logs", "--since", since)
    assert code == 2 and "--since" in err and "e.g. 90d" in " ".join(err.split())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json\n", "line 1: not JSON"),
        ('{"relevant": ["a.md"]}\n', "needs a non-empty 'question'"),
        ('{"question": "q", "relevant": []}\n', "at least one relevant document"),
        ('{"question": "q", "relevant": [{"grade": 2}]}\n', "graded entry needs 'source'"),
    ],
)
def test_bad_evaluation_sets_name_the_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(EvalSetError, match=message):
        load_eval_set(path)


def test_eval_without_a_set_or_with_a_missing_file_is_a_clear_error(env: Path, capsys) -> None:
    code, _, err = run_cli(capsys, "eval")
    assert code == 1 and "Give an evaluation set" in err
    code, _, err = run_cli(capsys, "eval", "nope.jsonl")
    assert code == 1 and "No such evaluation set" in err


def test_sign_test_and_bootstrap_by_hand() -> None:
    assert sign_test(0, 0) == 1.0
    assert sign_test(5, 0) == pytest.approx(2 / 32)  # two-sided: 2 * (1/2)^5
    assert sign_test(3, 3) == 1.0
    low, high = bootstrap_ci([0.5] * 10)
    assert low == high == 0.5
    low, high = bootstrap_ci([-1.0, 1.0] * 20)
    assert low < 0 < high


def test_the_admin_label_export_is_an_evaluation_set(env: Path, components, tmp_path: Path) -> None:
    from admin.rankings import label_lines, parse_filter

    result = components.answers.ask("What is the API rate limit on the Business plan?", channel="C1")
    with components.sessions.begin() as session:
        first, second = session.scalars(
            select(store.LoggedCandidate).where(store.LoggedCandidate.ranking_id == result.ranking_id).limit(2)
        ).all()
        session.add(
            store.CandidateLabel(candidate_id=first.id, ranking_id=result.ranking_id, reviewer="r", relevant=True)
        )
        session.add(
            store.CandidateLabel(candidate_id=second.id, ranking_id=result.ranking_id, reviewer="r", relevant=False)
        )
        expected_source = first.source
    with components.sessions() as session:
        exported = "".join(label_lines(session, parse_filter({})))
    path = tmp_path / "labels.jsonl"
    path.write_text(exported, encoding="utf-8")
    [item] = load_eval_set(path)
    assert item.question == "What is the API rate limit on the Business plan?" and item.channel == "C1"
    assert item.relevance == {expected_source: 1.0}
