"""The overview's numbers over the ranking log, and the small server-side SVG bar charts that show them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

import numpy as np
from markupsafe import Markup, escape
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from store import Feedback, LoggedCandidate, RankingLog, SlackRefusal

DEFAULT_DAYS = 30
MAX_DAYS = 365
LATENCY_SAMPLE = 5000
STAGES = ("embed", "search", "rerank", "answer", "total")
BINS = 10
REFUSAL_DAYS = 30
REFUSAL_ROWS = 20


@dataclass(frozen=True)
class PresetFeedback:
    preset: str
    up: int
    down: int

    @property
    def votes(self) -> int:
        return self.up + self.down

    @property
    def up_share(self) -> float:
        return self.up / self.votes if self.votes else 0.0

    @property
    def down_share(self) -> float:
        return self.down / self.votes if self.votes else 0.0


@dataclass(frozen=True)
class ScoreBin:
    low: float
    high: float
    used: int
    unused: int


@dataclass(frozen=True)
class StageLatency:
    stage: str
    p50: float
    p95: float
    samples: int


@dataclass(frozen=True)
class Overview:
    days: int
    since: date
    per_day: list[tuple[date, int]]
    feedback: list[PresetFeedback]
    scores: list[ScoreBin]
    latency: list[StageLatency]
    totals: dict[str, int]

    @property
    def used_total(self) -> int:
        return sum(b.used for b in self.scores)

    @property
    def unused_total(self) -> int:
        return sum(b.unused for b in self.scores)


@dataclass(frozen=True)
class Refusals:
    """Slack questions ragbot declined (e.g. external users in Slack Connect channels): how many in the last
    `days` days, and the latest rows, so admins see who is turned away before they complain."""

    days: int
    count: int
    latest: list[SlackRefusal]


def recent_refusals(
    session: Session, now: datetime | None = None, days: int = REFUSAL_DAYS, limit: int = REFUSAL_ROWS
) -> Refusals:
    """The refusals of the last `days` days (count) and the latest `limit` of them, newest first."""
    since = (now or datetime.now(timezone.utc)) - timedelta(days=days)
    count = session.scalar(select(func.count(SlackRefusal.id)).where(SlackRefusal.created_at >= since)) or 0
    latest = session.scalars(
        select(SlackRefusal).order_by(SlackRefusal.created_at.desc(), SlackRefusal.id.desc()).limit(limit)
    ).all()
    return Refusals(days, count, list(latest))


def parse_days(value: str | None) -> int:
    """`?days=`: a whole number of days, clamped to 1-365; anything else means the default."""
    try:
        days = int(value) if value else DEFAULT_DAYS
    except ValueError:
        return DEFAULT_DAYS
    return max(1, min(MAX_DAYS, days))


def _day(column, dialect: str):
    """The UTC calendar day of a timestamp column, in SQL."""
    if dialect == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)  # SQLite stores UTC text


def build_overview(session: Session, days: int = DEFAULT_DAYS, now: datetime | None = None) -> Overview:
    """The overview of the last `days` days, today (UTC) included."""
    today = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, time.min, tzinfo=timezone.utc)
    in_window = RankingLog.created_at >= since

    day = _day(RankingLog.created_at, session.get_bind().dialect.name)
    # Grouped by label: PostgreSQL would not match the bound parameters of a repeated expression.
    by_day = select(day.label("day"), func.count()).where(in_window).group_by("day")
    counts = {str(d)[:10]: n for d, n in session.execute(by_day)}
    per_day = [(first + timedelta(i), counts.get((first + timedelta(i)).isoformat(), 0)) for i in range(days)]

    statuses = dict(
        session.execute(select(RankingLog.status, func.count()).where(in_window).group_by(RankingLog.status)).all()
    )
    up = func.sum(case((Feedback.value > 0, 1), else_=0))
    down = func.sum(case((Feedback.value < 0, 1), else_=0))
    feedback = [
        PresetFeedback(name, int(u or 0), int(d or 0))
        for name, u, d in session.execute(
            select(RankingLog.preset_name, up, down).join(Feedback).where(in_window).group_by(RankingLog.preset_name)
        )
    ]
    feedback.sort(key=lambda f: (-f.votes, f.preset))

    score = LoggedCandidate.rerank_score
    bin_of = case(*((score < (i + 1) / BINS, i) for i in range(BINS - 1)), else_=BINS - 1)
    binned = session.execute(
        select(bin_of.label("bin"), LoggedCandidate.used, func.count())
        .select_from(LoggedCandidate)
        .join(RankingLog)
        .where(in_window, score.is_not(None))
        .group_by("bin", LoggedCandidate.used)
    )
    used = [0] * BINS
    unused = [0] * BINS
    for index, was_used, n in binned:
        (used if was_used else unused)[int(index)] += n
    scores = [ScoreBin(i / BINS, (i + 1) / BINS, used[i], unused[i]) for i in range(BINS)]

    # Percentiles in Python over the latest answered questions (failed ones stop part-way).
    timings = session.scalars(
        select(RankingLog.timings_ms)
        .where(in_window, RankingLog.status != "error")
        .order_by(RankingLog.created_at.desc())
        .limit(LATENCY_SAMPLE)
    ).all()
    latency = []
    for stage in STAGES:
        values = [float(t[stage]) for t in timings if isinstance(t, dict) and t.get(stage) is not None]
        if values:
            p50, p95 = np.percentile(values, [50, 95])  # linear interpolation
            latency.append(StageLatency(stage, float(p50), float(p95), len(values)))

    totals = {
        "questions": sum(statuses.values()),
        "ok": statuses.get("ok", 0),
        "no_answer": statuses.get("no_answer", 0),
        "error": statuses.get("error", 0),
        "up": sum(f.up for f in feedback),
        "down": sum(f.down for f in feedback),
        "ever": session.scalar(select(func.count()).select_from(RankingLog)) or 0,
    }
    return Overview(days, first, per_day, feedback, scores, latency, totals)


# -- charts: small SVG strings, every bar with a <title> tooltip --------------------------------------------------

WIDTH = 600


def _svg(chart_id: str, label: str, height: int, parts: list[str]) -> Markup:
    return Markup(
        f'<svg id="{chart_id}" role="img" aria-label="{escape(label)}" viewBox="0 0 {WIDTH} {height}" '
        f'xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>'
    )


def _bar(x: float, y: float, w: float, h: float, cls: str, title: str) -> str:
    return (
        f'<rect class="{cls}" x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}">'
        f"<title>{escape(title)}</title></rect>"
    )


def _text(x: float, y: float, text: str, anchor: str = "middle") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}">{escape(text)}</text>'


def _nice_max(value: float) -> float:
    """A round axis maximum at or above `value` (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= value)


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:.3g}"


Bar = tuple[float, str, str, str]  # value, css class, tooltip, label drawn after the bar ("" for none)


def column_chart(chart_id: str, label: str, groups: list[tuple[str, list[Bar]]], unit: str = "") -> Markup:
    """Vertical bars: `groups` of (x label, bars) side by side, a y axis with 0, half and max, and x labels
    thinned out so they never overlap."""
    height, left, bottom, top = 220, 48, 24, 10
    plot_w, plot_h = WIDTH - left - 8, height - top - bottom
    top_value = _nice_max(max((bar[0] for _, bars in groups for bar in bars), default=0))
    parts = []
    for tick in (0, top_value / 2, top_value):
        y = top + plot_h - tick / top_value * plot_h
        parts.append(f'<line class="grid-line" x1="{left}" x2="{WIDTH - 8}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(_text(left - 4, y + 4, _fmt(tick) + unit, "end"))
    slot = plot_w / max(len(groups), 1)
    every = math.ceil(len(groups) / 12)
    for i, (name, bars) in enumerate(groups):
        width = slot * 0.8 / max(len(bars), 1)
        for j, (value, cls, title, _) in enumerate(bars):
            h = value / top_value * plot_h
            parts.append(_bar(left + i * slot + slot * 0.1 + j * width, top + plot_h - h, width, h, cls, title))
        if i % every == 0:
            parts.append(_text(left + (i + 0.5) * slot, height - 6, name))
    parts.append(f'<line class="axis" x1="{left}" x2="{WIDTH - 8}" y1="{top + plot_h}" y2="{top + plot_h}"/>')
    return _svg(chart_id, label, height, parts)


def row_chart(chart_id: str, label: str, rows: list[tuple[str, list[Bar]]], scale: float, stacked: bool) -> Markup:
    """Horizontal bars, one row per (label, bars): stacked end to end, or one under the other. `scale` is the
    value of a full-width bar."""
    left, row_h, gap = 110, 30, 10
    plot_w = WIDTH - left - 110
    height = max(len(rows), 1) * (row_h + gap) + gap
    parts = []
    for i, (name, bars) in enumerate(rows):
        y = gap + i * (row_h + gap)
        parts.append(_text(left - 6, y + row_h / 2 + 4, name if len(name) <= 14 else name[:13] + "…", "end"))
        x = float(left)
        h = row_h if stacked else row_h / len(bars)
        for j, (value, cls, title, text) in enumerate(bars):
            w = value / scale * plot_w if scale else 0.0
            top = y if stacked else y + j * h
            parts.append(_bar(x, top, w, h - (0 if stacked else 1), cls, title))
            end = x + w
            x = end if stacked else x
            if text:
                parts.append(_text(end + 4, top + h / 2 + 4, text, "start"))
    parts.append(f'<line class="axis" x1="{left}" x2="{left}" y1="0" y2="{height}"/>')
    return _svg(chart_id, label, height, parts)


def charts(view: Overview) -> dict[str, Markup]:
    questions = column_chart(
        "chart-questions",
        f"Questions per day over the last {view.days} days: {view.totals['questions']} in all",
        [
            (d.strftime("%m-%d"), [(n, "bar", f"{d.isoformat()}: {n} question{'s' * (n != 1)}", "")])
            for d, n in view.per_day
        ],
    )
    feedback = row_chart(
        "chart-feedback",
        "Share of 👍 and 👎 per preset: " + "; ".join(f"{f.preset} {f.up_share:.0%} 👍" for f in view.feedback),
        [
            (
                f.preset,
                [
                    (f.up_share, "bar-up", f"{f.preset}: {f.up} 👍 ({f.up_share:.0%})", ""),
                    (
                        f.down_share,
                        "bar-down",
                        f"{f.preset}: {f.down} 👎 ({f.down_share:.0%})",
                        f"{f.up_share:.0%} of {f.votes}",
                    ),
                ],
            )
            for f in view.feedback
        ],
        scale=1.0,
        stacked=True,
    )
    used_n, unused_n = max(view.used_total, 1), max(view.unused_total, 1)
    scores = column_chart(
        "chart-scores",
        "Rerank score distribution, share of used and of unused candidates per score bin",
        [
            (
                f"{b.low:.1f}",
                [
                    (
                        100 * b.used / used_n,
                        "bar-used",
                        f"{b.low:.1f}-{b.high:.1f}: {b.used} used ({b.used / used_n:.0%})",
                        "",
                    ),
                    (
                        100 * b.unused / unused_n,
                        "bar-unused",
                        f"{b.low:.1f}-{b.high:.1f}: {b.unused} unused ({b.unused / unused_n:.0%})",
                        "",
                    ),
                ],
            )
            for b in view.scores
        ],
        unit="%",
    )
    slowest = max((s.p95 for s in view.latency), default=0)
    latency = row_chart(
        "chart-latency",
        "p50 and p95 latency per stage: " + "; ".join(f"{s.stage} {s.p50:.0f}/{s.p95:.0f} ms" for s in view.latency),
        [
            (
                s.stage,
                [
                    (s.p50, "bar-p50", f"{s.stage} p50: {s.p50:,.0f} ms", f"{s.p50:,.0f} ms"),
                    (s.p95, "bar-p95", f"{s.stage} p95: {s.p95:,.0f} ms", f"{s.p95:,.0f} ms"),
                ],
            )
            for s in view.latency
        ],
        scale=slowest,
        stacked=False,
    )
    return {"questions": questions, "feedback": feedback, "scores": scores, "latency": latency}
