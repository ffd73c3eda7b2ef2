"""The evaluation as one self-contained HTML file (inline CSS and SVG, no external asset) and as JSON."""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timezone

from evaluation.compare import Comparison
from evaluation.runner import BASELINE, METRICS, ConfigSummary, QuestionRun

LABELS = {
    "hit_at_1": "hit@1",
    "hit_at_3": "hit@3",
    "hit_at_5": "hit@5",
    "hit_at_10": "hit@10",
    "mrr_at_10": "MRR@10",
    "ndcg_at_10": "nDCG@10",
    "recall": "recall",
}
COLORS = ("#9aa5b1", "#1264a3", "#e8912d", "#2e7d32", "#8e44ad", "#c0392b")


def to_json(summaries: Sequence[ConfigSummary], comparisons: Sequence[Comparison], runs: Sequence[QuestionRun]) -> dict:
    return {
        "configurations": [
            {
                "name": s.name,
                **{LABELS[m]: round(v, 4) for m, v in s.means.items()},
                "rerank_p50_ms": round(s.rerank_p50_ms, 1),
                "rerank_p95_ms": round(s.rerank_p95_ms, 1),
            }
            for s in summaries
        ],
        "comparisons": [
            {k: v for k, v in asdict(c).items() if k not in ("better", "worse")}
            | {"better": [asdict(x) for x in c.better], "worse": [asdict(x) for x in c.worse]}
            for c in comparisons
        ],
        "questions": [
            {
                "question": run.item.question,
                "candidates": len(run.candidates),
                "first_relevant_rank": {name: r.metrics.first_relevant_rank for name, r in run.by_config.items()},
                "top3": {name: run.top(name) for name in run.by_config},
            }
            for run in runs
        ],
    }


def _metric_chart(summaries: Sequence[ConfigSummary]) -> str:
    width, height, left, bottom = 720, 260, 40, 40
    group = (width - left - 10) / len(METRICS)
    bar = min(28.0, (group - 12) / max(1, len(summaries)))
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="Metric per configuration">']
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        y = height - bottom - tick * (height - bottom - 20)
        parts.append(f'<line x1="{left}" x2="{width}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:.2f}</text>')
    for g, metric in enumerate(METRICS):
        x0 = left + g * group + 6
        for i, summary in enumerate(summaries):
            value = summary.means[metric]
            h = value * (height - bottom - 20)
            x = x0 + i * bar
            color = COLORS[i % len(COLORS)]
            parts.append(
                f'<rect x="{x:.1f}" y="{height - bottom - h:.1f}" width="{bar - 2:.1f}" height="{h:.1f}" '
                f'fill="{color}"><title>{html.escape(summary.name)}: {LABELS[metric]} {value:.3f}</title></rect>'
            )
        parts.append(
            f'<text x="{x0 + len(summaries) * bar / 2:.1f}" y="{height - bottom + 16}" '
            f'text-anchor="middle">{LABELS[metric]}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


QUESTION_LABEL_WIDTH = 40  # in half-width characters: a CJK character counts two


def question_label(question: str, width: int = QUESTION_LABEL_WIDTH) -> str:
    """The question on one line, cut at `width` half-width characters (CJK counts two) with an ellipsis."""
    text = " ".join(question.split())
    widths = [2 if unicodedata.east_asian_width(char) in ("W", "F") else 1 for char in text]
    if sum(widths) <= width:
        return text
    used = 0
    for i, w in enumerate(widths):
        if used + w > width - 1:  # keep one place for the ellipsis
            return text[:i].rstrip() + "…"
        used += w
    return text


def rank_chart_title(before: str, after: str) -> str:
    """The rank chart's heading: one configuration is named alone; two read 'before (grey) → after (blue)'."""
    if before == after:
        return f"Rank of the first relevant document: {before}"
    return f"Rank of the first relevant document: {before} (grey) → {after} (blue)"


def _rank_chart(runs: Sequence[QuestionRun], before: str, after: str) -> str:
    """Per question (labelled at the left): the first relevant rank before (grey) and after (blue) reranking, one
    dot when both are the same configuration; 'none' at the right."""
    k = max((len(r.candidates) for r in runs), default=1)
    row, left, width = 22, 260, 720
    height = 40 + row * len(runs)
    scale = (width - left - 60) / max(1, k)
    configs = [(before, "#9aa5b1")] if before == after else [(before, "#9aa5b1"), (after, "#1264a3")]
    title = html.escape(rank_chart_title(before, after))
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{title}">']
    for tick in sorted({1, 3, 5, 10, k}):
        x = left + tick * scale
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="20" y2="{height - 10}" class="grid"/>')
        parts.append(f'<text x="{x:.1f}" y="14" text-anchor="middle">{tick}</text>')
    parts.append(f'<text x="{width - 20}" y="14" text-anchor="middle">none</text>')
    for i, run in enumerate(runs):
        y = 30 + i * row
        question = html.escape(run.item.question)
        parts.append(
            f'<text x="{left - 8}" y="{y + 4}" text-anchor="end" class="question">'
            f"<title>{question}</title>{html.escape(question_label(run.item.question))}</text>"
        )
        ranks = [run.by_config[name].metrics.first_relevant_rank for name, _ in configs]
        xs = [left + r * scale if r else width - 20 for r in ranks]
        if len(xs) == 2:
            parts.append(f'<line x1="{xs[0]:.1f}" x2="{xs[1]:.1f}" y1="{y}" y2="{y}" stroke="#bbb"/>')
        for x, (name, color), rank in zip(xs, configs, ranks, strict=True):
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y}" r="5" fill="{color}"><title>{question} — '
                f"{html.escape(name)}: {rank or 'not found'}</title></circle>"
            )
    parts.append("</svg>")
    return "".join(parts)


def render_html(
    summaries: Sequence[ConfigSummary], comparisons: Sequence[Comparison], runs: Sequence[QuestionRun], title: str
) -> str:
    e = html.escape
    rows = "".join(
        "<tr><td>"
        + e(s.name)
        + "</td>"
        + "".join(f"<td>{s.means[m]:.3f}</td>" for m in METRICS)
        + f"<td>{s.rerank_p50_ms:.0f}</td><td>{s.rerank_p95_ms:.0f}</td></tr>"
        for s in summaries
    )
    legend = " ".join(
        f'<span class="key" style="background:{COLORS[i % len(COLORS)]}"></span>{e(s.name)}'
        for i, s in enumerate(summaries)
    )
    sections = []
    for c in comparisons:
        changes = "".join(
            f"<tr><td>{e(x.question)}</td><td>{x.before:.2f} → {x.after:.2f}</td>"
            f"<td>{'<br>'.join(map(e, x.top_before))}</td><td>{'<br>'.join(map(e, x.top_after))}</td></tr>"
            for x in [*c.better, *c.worse]
        )
        sections.append(
            f"<h2>{e(c.b)} vs {e(c.a)}</h2><p>{LABELS[c.metric]}: mean difference <b>{c.mean_difference:+.3f}</b> "
            f"(95% paired bootstrap interval {c.ci_low:+.3f} to {c.ci_high:+.3f}); {len(c.better)} better, "
            f"{len(c.worse)} worse, {c.ties} unchanged; sign test p = {c.sign_test_p:.3g}.</p>"
            + (
                f"<table><tr><th>Question</th><th>{LABELS[c.metric]}</th><th>Top 3: {e(c.a)}</th>"
                f"<th>Top 3: {e(c.b)}</th></tr>{changes}</table>"
                if changes
                else ""
            )
        )
    after = next((s.name for s in summaries if s.name != BASELINE), BASELINE)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1000px;margin:2rem auto;padding:0 1rem;color:#1d1c1d}}
table{{border-collapse:collapse;width:100%;margin:1rem 0}}td,th{{border-bottom:1px solid #ddd;padding:.3rem .5rem;
text-align:left;vertical-align:top}}svg{{width:100%;height:auto}}svg text{{font-size:11px;fill:#555}}
.grid{{stroke:#eee}}.key{{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 1rem}}</style></head>
<body><h1>{e(title)}</h1><p>{len(runs)} questions · generated {generated}</p>
<table><tr><th>Configuration</th>{"".join(f"<th>{LABELS[m]}</th>" for m in METRICS)}
<th>rerank p50 ms</th><th>rerank p95 ms</th></tr>{rows}</table>
<h2>Metric per configuration</h2><p>{legend}</p>{_metric_chart(summaries)}
<h2>{e(rank_chart_title(BASELINE, after))}</h2>
{_rank_chart(runs, BASELINE, after)}
{"".join(sections)}
</body></html>"""
