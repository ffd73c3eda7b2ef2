"""Calibrate the "not found" floors of the retrieval relevance gate (bot/answering/relevance.py).

On-topic questions: the sample knowledge base's questions and `ragbot demo`'s, and the Debian FAQ sets' (English
and Chinese, built by `bench/faq_sets.py`). Off-topic questions: `OFF_TOPIC` below, in English and Chinese, asked
of every set's collection (what a user of that knowledge base might stray into).

Each question is searched as the answer service searches it (default hybrid, 20 candidates, per-leg scores), and
both signals are measured: dense similarity (questions in a language the embedder is trusted in) and term match
(the others). For each candidate floor the table prints the share of on-topic questions still answered and the
share of off-topic questions turned to "not found", per set and signal; `*` marks the defaults in
`RelevanceFloors`.

    python bench/not_found_calibration.py [--data bench/data] [--sets sample-kb ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from retrieval_eval import ROOT, cached_embedders, eval_sets

from bot.answering.relevance import RelevanceFloors, dense_similarity, term_match
from bot.cli.demo import DEMO_QUESTIONS
from evaluation.dataset import load_eval_set
from retrieval import Retriever, ingest_path
from retrieval.edge_index import EdgeIndex
from retrieval.fusion import embedder_languages
from retrieval.lexical import script_language

CANDIDATES_K = 20  # the default preset's candidates_k

OFF_TOPIC = (
    "What is the capital of France?",
    "How do I bake sourdough bread at home?",
    "Who won the 2018 FIFA World Cup?",
    "What is the best recipe for chocolate chip cookies?",
    "How tall is Mount Everest?",
    "Can you recommend a good science fiction novel?",
    "What time does the sun set in Tokyo in December?",
    "How many players are on a basketball team?",
    "What is the boiling point of water at high altitude?",
    "Who painted the Mona Lisa?",
    "How do I train my puppy to sit?",
    "What are the rules of cricket?",
    "Which wine goes well with grilled salmon?",
    "How long should I boil an egg?",
    "What is the population of Brazil?",
    "法国的首都是哪里？",
    "怎么在家做红烧肉？",
    "2018年世界杯冠军是哪个国家？",
    "珠穆朗玛峰有多高？",
    "推荐一本好看的科幻小说。",
    "篮球比赛每队有几名球员？",
    "怎样训练小狗坐下？",
    "今天北京的天气怎么样？",
    "蒙娜丽莎是谁画的？",
    "如何煮出好吃的米饭？",
    "长城有多长？",
    "周末去哪里爬山比较好？",
    "感冒了应该吃什么药？",
    "李白最有名的诗是哪一首？",
    "熊猫主要吃什么？",
)

DENSE_FLOORS = (0.20, 0.25, 0.30, 0.35, 0.40, 0.45, 0.50, 0.55)
TERM_FLOORS = (0.25, 0.34, 0.40, 0.50, 0.60, 0.67, 0.75, 1.00)


@dataclass(frozen=True)
class Measured:
    set_name: str
    question: str
    on_topic: bool
    signal: str  # "dense" or "terms": the one the gate uses for this question
    score: float


def measure(retriever: Retriever, collection: str, question: str) -> tuple[str, float]:
    found = retriever.search(question, collection, CANDIDATES_K, mode="hybrid", explain=True).candidates
    dense = dense_similarity(found) if script_language(question) in retriever.dense_languages else None
    if dense is not None:
        return "dense", dense
    return "terms", term_match(question, found, retriever.lexical)


def table(rows: list[Measured], signal: str, floors: tuple[float, ...], default: float) -> None:
    chosen = [r for r in rows if r.signal == signal]
    sets = list(dict.fromkeys(r.set_name for r in chosen))
    print(f"\n{signal} signal: on-topic answered / off-topic not found, per set (n on / n off)")
    header = "floor  " + "  ".join(f"{s:>22}" for s in [*sets, "all"])
    print(header)
    counts = "       " + "  ".join(f"{'({} / {})'.format(*_counts(chosen, s)):>22}" for s in [*sets, None])
    print(counts)
    for floor in floors:
        cells = []
        for s in [*sets, None]:
            on = [r.score for r in chosen if r.on_topic and (s is None or r.set_name == s)]
            off = [r.score for r in chosen if not r.on_topic and (s is None or r.set_name == s)]
            kept = sum(x >= floor for x in on) / len(on) if on else float("nan")
            refused = sum(x < floor for x in off) / len(off) if off else float("nan")
            cells.append(f"{kept:10.1%} / {refused:8.1%}")
        mark = "*" if abs(floor - default) < 1e-9 else " "
        print(f"{floor:4.2f}{mark}  " + "  ".join(f"{c:>22}" for c in cells))


def _counts(rows: list[Measured], set_name: str | None) -> tuple[int, int]:
    chosen = [r for r in rows if set_name is None or r.set_name == set_name]
    return sum(r.on_topic for r in chosen), sum(not r.on_topic for r in chosen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / "data", help="where the FAQ sets live")
    parser.add_argument("--sets", nargs="*", help="only these sets (sample-kb, debian-faq-en, debian-faq-zh)")
    parser.add_argument("--show", action="store_true", help="print every question's signal and score")
    args = parser.parse_args()

    embedders = cached_embedders("", args.data)  # the default embedders, as a ragbot process loads them
    languages = embedder_languages(embedders[0].name)
    rows: list[Measured] = []
    with tempfile.TemporaryDirectory(prefix="ragbot-notfound-") as tmp:
        index = EdgeIndex(Path(tmp))
        retriever = Retriever(index, embedders, dense_languages=languages)
        for eval_set in [s for s in eval_sets(args.data) if not args.sets or s.name in args.sets]:
            ingest_path(eval_set.docs, index, embedders, eval_set.name)
            for embedder in embedders:
                embedder.save()
            questions = [item.question for item in load_eval_set(eval_set.questions)]
            if eval_set.name == "sample-kb":
                questions += [q for q in DEMO_QUESTIONS if q not in questions]
            for question, on_topic in [*((q, True) for q in questions), *((q, False) for q in OFF_TOPIC)]:
                signal, score = measure(retriever, eval_set.name, question)
                rows.append(Measured(eval_set.name, question, on_topic, signal, score))
        index.close()

    if args.show:
        for r in sorted(rows, key=lambda r: (r.set_name, r.signal, r.on_topic, r.score)):
            print(f"{r.set_name:<14} {r.signal:<6} {'on ' if r.on_topic else 'off'} {r.score:5.2f}  {r.question[:70]}")
    defaults = RelevanceFloors()
    table(rows, "dense", DENSE_FLOORS, defaults.dense)
    table(rows, "terms", TERM_FLOORS, defaults.terms)


if __name__ == "__main__":
    main()
