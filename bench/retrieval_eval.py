"""Retrieval quality of dense, lexical and hybrid search: hit@1, hit@5 and MRR@10 per evaluation set.

Sets:
- `sample-kb`: the bundled sample knowledge base and its 12 questions (English and Chinese);
- `debian-faq-en` / `debian-faq-zh`: real public documentation with its own FAQ (the Debian FAQ and the Debian
  Reference, English and Simplified Chinese; built by `bench/faq_sets.py` from Debian's packages): each FAQ
  answer is a document without its question, the question is the query, ~150 manual sections are distractors.

Every set is ingested once per embedder (chunked as `ragbot ingest` does) into a temporary Qdrant Edge store;
each configuration then queries the same collection. A configuration is a retrieval mode plus, for hybrid, a
fusion (RRF with weights, or DBSF) and the lexical tokenizer variant. The default configuration is marked `*`.

    python bench/retrieval_eval.py                      # all sets, the main configurations
    python bench/retrieval_eval.py --sweep               # also the fusion weight sweep and tokenizer variants
    python bench/retrieval_eval.py --embed-model BAAI/bge-m3   # another embedder (needs it downloaded)

Metrics are over chunks in retrieval order: hit@k = a chunk of a relevant document is in the first k.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation.dataset import EvalItem, load_eval_set
from evaluation.metrics import hit_at, mrr_at
from evaluation.runner import doc_key
from retrieval import Retriever, SentenceTransformerEmbedder, ingest_path
from retrieval.edge_index import EdgeIndex
from retrieval.fusion import embedder_languages, hybrid_fusion
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
    mode: str
    fusion: Callable[[str], Fusion] | None = None  # question -> fusion (None: the default policy)
    lexical: str = "default"  # "default", "per-script" or "bigrams"


def eval_sets(data: Path) -> list[EvalSet]:
    sets = [EvalSet("sample-kb", ROOT / "sample_kb", ROOT / "sample_kb" / "questions.jsonl")]
    if not (data / "debian-faq-en" / "questions.jsonl").exists():
        print("building the Debian FAQ sets (bench/faq_sets.py)…", file=sys.stderr)
        sys.path.insert(0, str(ROOT / "bench"))
        from faq_sets import build

        build(data)
    for language in ("en", "zh"):
        folder = data / f"debian-faq-{language}"
        sets.append(EvalSet(folder.name, folder / "docs", folder / "questions.jsonl"))
    return sets


def configs(sweep: bool, dense_languages: frozenset[str]) -> list[Config]:
    def fixed(fusion: Fusion) -> Callable[[str], Fusion]:
        return lambda _question: fusion

    main = [
        Config("dense", "dense"),
        Config("lexical", "lexical"),
        Config("hybrid rrf 1:1", "hybrid", fixed(Fusion("rrf", 60, (1.0, 1.0)))),
        Config("hybrid dbsf", "hybrid", fixed(Fusion("dbsf"))),
        Config("hybrid *", "hybrid", lambda q: hybrid_fusion(q, dense_languages)),
    ]
    if not sweep:
        return main
    extra = [
        Config("lexical per-script", "lexical", lexical="per-script"),
        Config("hybrid * per-script", "hybrid", lambda q: hybrid_fusion(q, dense_languages), lexical="per-script"),
        Config("lexical +bigrams", "lexical", lexical="bigrams"),
        Config("hybrid * +bigrams", "hybrid", lambda q: hybrid_fusion(q, dense_languages), lexical="bigrams"),
    ]
    # Qdrant's weighted RRF: sum over legs of 1 / (k - 1 + rank / weight), rank 1-based; a weight below 1
    # stretches that leg's ranks (its later hits fade faster), so k and the weights act together.
    for k in (2, 10, 60):
        for weights in ((1.0, 1.0), (0.2, 1.0), (0.05, 1.0), (0.01, 1.0), (1.0, 0.2), (1.0, 0.05), (1.0, 0.01)):
            name = f"hybrid rrf k={k} {weights[0]:g}:{weights[1]:g}"
            extra.append(Config(name, "hybrid", fixed(Fusion("rrf", k, weights))))
    return main + extra


def score(retriever: Retriever, collection: str, items: Sequence[EvalItem], config: Config) -> dict[str, float]:
    hits1 = hits5 = mrr = 0.0
    started = time.perf_counter()
    for item in items:
        fusion = config.fusion(item.question) if config.fusion else None
        result = retriever.search(item.question, collection, DEPTH, mode=config.mode, fusion=fusion)
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


class CachedEmbedder(SentenceTransformerEmbedder):
    """Embeds each text once: the tokenizer variants re-ingest the same chunks, and runs after the first reuse
    the vectors saved in the data folder (keyed by model and text)."""

    def __init__(self, model: str, cache_file: Path) -> None:
        super().__init__(model)
        self.cache_file = cache_file
        self._cache: dict[str, np.ndarray] = {}
        if cache_file.exists():
            with np.load(cache_file) as saved:
                self._cache = dict(zip(saved["texts"].tolist(), saved["vectors"], strict=True))

    def save(self) -> None:
        if self._cache:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            np.savez(self.cache_file, texts=np.array(list(self._cache)), vectors=np.stack(list(self._cache.values())))

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            self._cache.update(zip(missing, super().encode(missing, batch_size), strict=True))
        return np.stack([self._cache[t] for t in texts]) if texts else super().encode(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / "data", help="where the FAQ sets live")
    parser.add_argument("--embed-model", default="", help="sentence-transformers model (default: bundled MiniLM)")
    parser.add_argument("--sets", nargs="*", help="only these sets (names as printed)")
    parser.add_argument("--sweep", action="store_true", help="also sweep fusion weights and tokenizer variants")
    args = parser.parse_args()

    slug = "".join(ch if ch.isalnum() else "-" for ch in (args.embed_model or "bundled-minilm"))
    embedder = CachedEmbedder(args.embed_model, args.data / f"embeddings-{slug}.npz")
    dense_languages = embedder_languages(embedder.name)
    print(f"embedder: {embedder.name} (trusted for hybrid in: {', '.join(sorted(dense_languages))})")
    chosen = [s for s in eval_sets(args.data) if not args.sets or s.name in args.sets]
    rows: list[tuple[str, str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="ragbot-eval-") as tmp:
        for eval_set in chosen:
            items = load_eval_set(eval_set.questions)
            languages = sorted({script_language(i.question) for i in items})
            for variant in ("default", "per-script", "bigrams") if args.sweep else ("default",):
                lexical = LexicalEncoder(per_script=variant == "per-script", bigrams=variant == "bigrams")
                index = EdgeIndex(Path(tmp) / variant)
                started = time.perf_counter()
                summary = ingest_path(eval_set.docs, index, embedder, eval_set.name, lexical=lexical)
                embedder.save()
                print(
                    f"{eval_set.name} [{variant} tokenizer]: {summary.files} files, {summary.chunks} chunks, "
                    f"{len(items)} questions ({'/'.join(languages)}), "
                    f"ingested in {time.perf_counter() - started:.0f} s",
                    file=sys.stderr,
                )
                retriever = Retriever(index, embedder, lexical=lexical, dense_languages=dense_languages)
                for config in [c for c in configs(args.sweep, dense_languages) if c.lexical == variant]:
                    rows.append((eval_set.name, config.name, score(retriever, eval_set.name, items, config)))
                index.close()

    print(f"\n{'set':<16} {'configuration':<24} {'hit@1':>6} {'hit@5':>6} {'MRR@10':>7} {'ms/q':>6}")
    for set_name, config_name, m in rows:
        print(f"{set_name:<16} {config_name:<24} {m['hit@1']:6.3f} {m['hit@5']:6.3f} {m['mrr@10']:7.3f} {m['ms']:6.1f}")
    print("\n* = the default (hybrid, weighted RRF by the question's language; see retrieval/fusion.py)")
    for set_name in dict.fromkeys(r[0] for r in rows):
        by_name = {name: m for s, name, m in rows if s == set_name}
        best_single = max(by_name["dense"]["hit@5"], by_name["lexical"]["hit@5"])
        default = by_name["hybrid *"]["hit@5"]
        verdict = "PASS" if default >= best_single else "FAIL"
        print(f"{set_name}: default hybrid hit@5 {default:.3f} vs best single leg {best_single:.3f}: {verdict}")


if __name__ == "__main__":
    main()
