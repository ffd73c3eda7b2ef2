"""Evaluation sets: JSONL, one question per line.

    {"question": "How do I set up SAML with Okta?", "relevant": ["sso/saml-okta.md", "https://docs.example/sso"]}
    {"question": "发票要盖什么章？", "preset": "finance", "relevant": [{"source": "billing/fapiao-zh.md", "grade": 2}]}

`relevant` names documents by document id, source (URL) or file path (a path matches when the ingested file's
path ends with it); graded entries carry `grade` (default 1). Optional: `channel` or `preset` (whose preset
reranks this question), `id`. The admin app's label export (`labels.jsonl`) is in this format.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


class EvalSetError(ValueError):
    """The evaluation set cannot be read; the message names the line and what is wrong."""


@dataclass(frozen=True)
class EvalItem:
    question: str
    relevance: dict[str, float]  # document key (id, source or path) -> grade
    channel: str | None = None
    preset: str | None = None
    id: str = ""
    extra: dict = field(default_factory=dict)


def parse_relevant(value: object, where: str) -> dict[str, float]:
    if not isinstance(value, list):
        raise EvalSetError(f"{where}: 'relevant' must be a list of document ids, sources or paths")
    relevance: dict[str, float] = {}
    for entry in value:
        if isinstance(entry, str) and entry.strip():
            relevance[entry.strip()] = max(relevance.get(entry.strip(), 0), 1.0)
        elif isinstance(entry, dict):
            key = entry.get("source") or entry.get("doc_id") or entry.get("path") or entry.get("id")
            grade = entry.get("grade", entry.get("relevance", 1))
            if not isinstance(key, str) or not isinstance(grade, int | float) or grade < 0:
                raise EvalSetError(f"{where}: a graded entry needs 'source' (or 'doc_id'/'path') and a grade >= 0")
            relevance[key] = float(grade)
        else:
            raise EvalSetError(f"{where}: each relevant entry is a string or {{'source': ..., 'grade': ...}}")
    return relevance


def load_eval_set(path: Path) -> list[EvalItem]:
    if not path.is_file():
        raise EvalSetError(f"No such evaluation set: {path}")
    items: list[EvalItem] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path.name} line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalSetError(f"{where}: not JSON ({exc.msg})") from exc
        if not isinstance(row, dict) or not isinstance(row.get("question"), str) or not row["question"].strip():
            raise EvalSetError(f"{where}: needs a non-empty 'question'")
        relevance = parse_relevant(row.get("relevant", []), where)
        if not any(g > 0 for g in relevance.values()):
            raise EvalSetError(f"{where}: needs at least one relevant document")
        items.append(
            EvalItem(
                question=row["question"].strip(),
                relevance=relevance,
                channel=row.get("channel"),
                preset=row.get("preset"),
                id=str(row.get("id", number)),
            )
        )
    if not items:
        raise EvalSetError(f"{path} holds no questions")
    return items
