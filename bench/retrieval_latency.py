"""Query latency of the retrieval index: dense, lexical and hybrid, at 10k and 100k chunks, on both backends.

What it measures, per backend and collection size, after the collection is built and optimised (`finish_writes`:
Qdrant Edge builds the HNSW graph there):

- `dense`: nearest neighbours of the question vector (HNSW on Edge);
- `lexical`: BM25 over the sparse `lexical` vector (IDF modifier);
- `hybrid`: the fused query (a prefetch per leg + weighted RRF, `explain=False`): what the pipeline runs
  before reranking, the answer's critical path;
- `leg ranks`: each leg's own ranking without payloads (`Index.leg_places`), which the pipeline
  fetches on another thread while the reranker works, for the per-leg ranks in the log and `ask --json`;
- `hybrid+ranks`: both in one call (`explain=True`, what the evaluation and the admin's comparison use).

Each mode is timed per query (p50, p95, mean in ms), the modes taking turns query by query so that load from
other processes falls on all of them alike. The index timings hold only the `Index.query` call: encoding the
question into BM25 terms (`LexicalEncoder.encode_query`) is timed on its own line, and the dense question vector
is given. Build times (upsert, `finish_writes`) are reported too.

The data has no embedding model behind it, on purpose (embedding 100k chunks takes over an hour on a CPU):

- chunk texts are real words: ~500-character chunks of the English and Chinese Debian reference pages under
  `bench/data/`, the `sample_kb/` pages and the licence texts in /usr/share/common-licenses, topped up to the
  requested size with pseudo-documents whose sentences are sampled from one source's neighbourhood (plus the odd
  sentence from another source), so the BM25 vocabulary and term statistics are those of real text;
- dense vectors are random 384-d unit vectors with cluster structure (a topic per source file, chunks spread
  around it); a question vector lies near the vector of the chunk its text was sampled from. The dense ranking
  therefore means nothing: only the timing of the index is real.

Reading the numbers: on a shared CPU the absolute milliseconds hold only for the machine and the moment measured
(the load average is printed at the start and the end); compare the ratios, which are taken within one run:
`hybrid/dense` is how much a hybrid question costs over a dense-only one (p50 over p50). The goal line checks
the hybrid query on the embedded store at 100k: within 1.5x of dense and under 10 ms (both at p50).

The server backend is qdrant-client's local mode (`QdrantServerIndex.connect(":memory:")`), the same client API
as a real Qdrant server, which cannot run here. Local mode is pure Python with brute-force search and no HNSW,
so it is seconds per hybrid question at 100k: it gets only a handful of questions there (`--server-queries`,
scaled up at smaller sizes), and its figures say nothing about a real server's speed.

    python bench/retrieval_latency.py
    python bench/retrieval_latency.py --sizes 10000 --backends edge --queries 100
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evaluation.metrics import percentile
from retrieval.chunking import split_sentences
from retrieval.edge_index import EdgeIndex
from retrieval.fusion import hybrid_fusion
from retrieval.index import (
    Fusion,
    Index,
    IndexPoint,
    SearchRequest,
    point_id,
)
from retrieval.lexical import LexicalEncoder, SparseVector, script_language
from retrieval.server_index import QdrantServerIndex

REPO = Path(__file__).resolve().parent.parent
DIMENSION = 384
CHUNK_CHARS = 500
COLLECTION = "latency"
EMBED_MODEL = "random-unit-vectors-384"
DENSE_LANGUAGES = frozenset({"english"})  # as for the bundled all-MiniLM-L6-v2: Chinese questions weight lexical
UPSERT_BATCH = 1000
WARMUP = 20
GOAL_RATIO = 1.5
GOAL_MS = 10.0
GOAL_SIZE = 100_000
N_TOPICS = 32
_TAG = re.compile(r"<[^>]+>")
_WORD_CHAR = re.compile(r"\w")


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} CPUs"


# -- data ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    path: str
    sentences: list[str]


@dataclass(frozen=True)
class Chunk:
    path: str
    index: int
    source: int  # position in the source list: its topic for the dense vectors
    text: str


@dataclass(frozen=True)
class Question:
    text: str
    dense: list[float]
    lexical: SparseVector
    fusion: Fusion  # the app's language-aware default, chosen before timing (like the encoding)
    target: int  # the chunk it was sampled from


def source_files() -> list[Path]:
    files: list[Path] = []
    for pattern in ("**/*.md", "**/*.txt", "**/*.html"):
        files += sorted((REPO / "sample_kb").glob(pattern))
    files += sorted((REPO / "bench" / "data").glob("debian-faq-*/docs/**/*.md"))
    licenses = Path("/usr/share/common-licenses")
    if licenses.is_dir():
        files += sorted(p for p in licenses.iterdir() if p.is_file() and not p.is_symlink())
    return files


def load_sources() -> list[Source]:
    sources = []
    for file in source_files():
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if file.suffix == ".html":
            text = _TAG.sub(" ", text)
        sentences = [s[:400] for s in split_sentences(text) if len(_WORD_CHAR.findall(s)) >= 3]
        if sentences:
            label = str(file.relative_to(REPO)) if file.is_relative_to(REPO) else str(file)
            sources.append(Source(label, sentences))
    if not sources:
        raise SystemExit("No text found under sample_kb/, bench/data/ or /usr/share/common-licenses.")
    return sources


def pack(sentences: Sequence[str], limit: int) -> Iterator[str]:
    """Consecutive sentences joined into chunks of about `limit` characters."""
    current: list[str] = []
    size = 0
    for sentence in sentences:
        if current and size + len(sentence) > limit:
            yield " ".join(current)
            current, size = [], 0
        current.append(sentence)
        size += len(sentence) + 1
    if current:
        yield " ".join(current)


def build_chunks(sources: Sequence[Source], count: int, rng: np.random.Generator) -> list[Chunk]:
    """The real chunks of every source first, then pseudo-documents up to `count`: sentences sampled from a
    window of one source (so a chunk keeps a topic) with one in ten from another source, about 500 characters."""
    chunks: list[Chunk] = []
    for number, source in enumerate(sources):
        for index, text in enumerate(pack(source.sentences, CHUNK_CHARS)):
            chunks.append(Chunk(source.path, index, number, text))
    chunks = chunks[:count]
    weights = np.array([len(s.sentences) for s in sources], dtype=float)
    weights /= weights.sum()
    made = [0] * len(sources)
    while len(chunks) < count:
        number = int(rng.choice(len(sources), p=weights))
        sentences = sources[number].sentences
        start = int(rng.integers(max(1, len(sentences) - 30)))
        window = sentences[start : start + 30]
        target = int(rng.integers(350, 650))
        picked: list[str] = []
        size = 0
        while size < target:
            if rng.random() < 0.1:
                other = sources[int(rng.integers(len(sources)))].sentences
                sentence = other[int(rng.integers(len(other)))]
            else:
                sentence = window[int(rng.integers(len(window)))]
            picked.append(sentence)
            size += len(sentence) + 1
        chunks.append(Chunk(f"synthetic/{sources[number].path}", made[number], number, " ".join(picked)))
        made[number] += 1
    return chunks


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def chunk_vectors(chunks: Sequence[Chunk], n_sources: int, rng: np.random.Generator) -> np.ndarray:
    """Random unit vectors with structure: N_TOPICS topics, a centre per source near its topic, chunks around
    their source's centre (cosine about 0.7 to it)."""
    topics = unit(rng.standard_normal((N_TOPICS, DIMENSION)))
    centres = unit(
        topics[rng.integers(N_TOPICS, size=n_sources)] + 0.8 * unit(rng.standard_normal((n_sources, DIMENSION)))
    )
    owners = np.array([c.source for c in chunks])
    noise = unit(rng.standard_normal((len(chunks), DIMENSION)))
    return unit(centres[owners] + noise).astype(np.float32)


def question_text(chunk: Chunk, rng: np.random.Generator) -> str:
    """A question-sized piece of one sentence of the chunk: 6-14 words, or 10-30 characters of Chinese."""
    sentences = [s for s in split_sentences(chunk.text) if len(s) >= 12] or [chunk.text]
    sentence = sentences[int(rng.integers(len(sentences)))]
    if script_language(sentence) == "chinese":
        length = int(rng.integers(10, 31))
        start = int(rng.integers(max(1, len(sentence) - length)))
        return sentence[start : start + length]
    words = sentence.split()
    length = int(rng.integers(6, 15))
    start = int(rng.integers(max(1, len(words) - length)))
    return " ".join(words[start : start + length])


def make_questions(
    chunks: Sequence[Chunk],
    vectors: np.ndarray,
    size: int,
    count: int,
    encoder: LexicalEncoder,
    rng: np.random.Generator,
) -> tuple[list[Question], list[float]]:
    """`count` questions about chunks among the first `size`, and the time of each `encode_query` in ms."""
    targets = rng.choice(size, size=count, replace=False)
    questions, encode_ms = [], []
    for target in targets:
        text = question_text(chunks[target], rng)
        vector = unit(vectors[target] + 0.6 * unit(rng.standard_normal(DIMENSION)))
        started = time.perf_counter()
        lexical = encoder.encode_query(text)
        encode_ms.append((time.perf_counter() - started) * 1000)
        fusion = hybrid_fusion(text, DENSE_LANGUAGES)
        questions.append(Question(text, [float(x) for x in vector], lexical, fusion, int(target)))
    return questions, encode_ms


def index_points(
    chunks: Sequence[Chunk], vectors: np.ndarray, sparse: Sequence[SparseVector], start: int, stop: int
) -> list[IndexPoint]:
    points = []
    for i in range(start, stop):
        chunk = chunks[i]
        digest = hashlib.sha256(chunk.text.encode("utf-8")).hexdigest()[:16]
        points.append(
            IndexPoint(
                id=point_id(chunk.path, chunk.index),
                vector=vectors[i].tolist(),
                sparse=sparse[i],
                payload={
                    "doc_id": chunk.path,
                    "path": chunk.path,
                    "title": Path(chunk.path).stem,
                    "source": chunk.path,
                    "section": "",
                    "text": chunk.text,
                    "chunk_index": chunk.index,
                    "content_hash": digest,
                    "file_hash": digest,
                },
            )
        )
    return points


# -- queries ---------------------------------------------------------------------------------------------------


def request(question: Question, mode: str, limit: int, explain: bool) -> SearchRequest:
    return SearchRequest(
        mode,  # type: ignore[arg-type]
        limit,
        dense=question.dense if mode != "lexical" else None,
        lexical=question.lexical if mode != "dense" else None,
        fusion=question.fusion,
        explain=explain,
    )


def runners(index: Index, backend: str, limit: int) -> dict[str, Callable[[Question], object]]:
    modes: dict[str, Callable[[Question], object]] = {
        "dense": lambda q: index.query(COLLECTION, request(q, "dense", limit, False)),
        "lexical": lambda q: index.query(COLLECTION, request(q, "lexical", limit, False)),
        "hybrid": lambda q: index.query(COLLECTION, request(q, "hybrid", limit, False)),
        "leg ranks": lambda q: index.leg_places(COLLECTION, request(q, "hybrid", limit, False)),
        "hybrid+ranks": lambda q: index.query(COLLECTION, request(q, "hybrid", limit, True)),
    }
    return modes


def measure(modes: dict[str, Callable[[Question], object]], questions: Sequence[Question], warmup: int) -> dict:
    """Milliseconds per query and mode; the modes take turns, in a rotating order, question by question."""
    names = list(modes)
    for question in questions[:warmup]:
        for name in names:
            modes[name](question)
    times: dict[str, list[float]] = {name: [] for name in names}
    for number, question in enumerate(questions):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            modes[name](question)
            times[name].append((time.perf_counter() - started) * 1000)
    return times


@dataclass(frozen=True)
class Summary:
    count: int
    p50: float
    p95: float
    mean: float


def summarise(values: Sequence[float]) -> Summary:
    return Summary(len(values), percentile(values, 50), percentile(values, 95), statistics.fmean(values))


def fmt_ms(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


# -- one backend at one size ---------------------------------------------------------------------------------


@dataclass
class Run:
    backend: str
    size: int
    upsert_s: float
    finish_s: float
    questions: int
    modes: dict[str, Summary]


def open_backend(backend: str, folder: Path) -> Index:
    if backend == "edge":
        return EdgeIndex(folder / "edge")
    return QdrantServerIndex.connect(":memory:")


def server_question_count(args: argparse.Namespace, size: int) -> int:
    """A handful at 100k, proportionally more at smaller sizes (local mode's query time grows with the size)."""
    return min(args.queries, max(args.server_queries, round(args.server_queries * GOAL_SIZE / size)))


def run_backend(
    backend: str,
    size: int,
    chunks: Sequence[Chunk],
    vectors: np.ndarray,
    sparse: Sequence[SparseVector],
    questions: Sequence[Question],
    args: argparse.Namespace,
    folder: Path,
) -> Run:
    index = open_backend(backend, folder)
    try:
        index.create_collection(COLLECTION, DIMENSION, EMBED_MODEL, LexicalEncoder().name)
        progress(f"{backend} {size:,}: upserting")
        upsert_s = 0.0
        with warnings.catch_warnings():  # local mode warns past 20,000 points: this benchmark knows
            warnings.filterwarnings("ignore", "Local mode is not recommended", UserWarning)
            for start in range(0, size, UPSERT_BATCH):
                points = index_points(chunks, vectors, sparse, start, min(size, start + UPSERT_BATCH))
                started = time.perf_counter()
                index.upsert(COLLECTION, points)
                upsert_s += time.perf_counter() - started
        progress(f"{backend} {size:,}: upserted in {upsert_s:.1f} s; finish_writes (optimise, HNSW)")
        started = time.perf_counter()
        index.finish_writes(COLLECTION)
        finish_s = time.perf_counter() - started
        info = index.collection_info(COLLECTION)
        if info is None or info.points != size:
            raise SystemExit(f"{backend}: expected {size} points, found {info.points if info else 'no collection'}")
        count = len(questions) if backend == "edge" else server_question_count(args, size)
        warmup = min(WARMUP, count) if backend == "edge" else 1
        progress(f"{backend} {size:,}: finish_writes {finish_s:.1f} s; {warmup} warm-up + {count} timed questions")
        times = measure(runners(index, backend, args.limit), questions[:count], warmup)
        return Run(backend, size, upsert_s, finish_s, count, {name: summarise(v) for name, v in times.items()})
    finally:
        index.close()
        shutil.rmtree(folder / "edge", ignore_errors=True)
        gc.collect()


# -- report ----------------------------------------------------------------------------------------------------


def ratio(run: Run, mode: str) -> float:
    return run.modes[mode].p50 / run.modes["dense"].p50


def report(runs: Sequence[Run], encode: Summary, setup: dict[str, float]) -> None:
    print()
    print("Timings (ms per Index.query call, question encoding excluded)")
    print(f"{'backend':<8} {'chunks':>8} {'mode':<16} {'n':>4} {'p50':>9} {'p95':>9} {'mean':>9}  hybrid/dense p50")
    for run in runs:
        for mode, summary in run.modes.items():
            versus = f"{ratio(run, mode):.2f}x" if mode != "dense" else ""
            print(
                f"{run.backend:<8} {run.size:>8,} {mode:<16} {summary.count:>4} {fmt_ms(summary.p50):>9} "
                f"{fmt_ms(summary.p95):>9} {fmt_ms(summary.mean):>9}  {versus}"
            )
    print()
    print("Build (after BM25 encoding of the chunks, which is not included)")
    for run in runs:
        finish = "no-op in local mode (no HNSW)" if run.backend == "server" else f"{run.finish_s:.1f} s"
        print(
            f"  {run.backend:<7} {run.size:>8,} chunks: upsert {run.upsert_s:.1f} s "
            f"(batches of {UPSERT_BATCH}), finish_writes {finish}"
        )
    print()
    print(
        f"Question encoding, LexicalEncoder.encode_query (separate from the index timings): p50 "
        f"{fmt_ms(encode.p50)} ms, p95 {fmt_ms(encode.p95)} ms, mean {fmt_ms(encode.mean)} ms over {encode.count}"
    )
    print(
        f"Data preparation: {setup['sources']:.0f} source files, {setup['base']:,.0f} real chunks + "
        f"{setup['synthetic']:,.0f} pseudo-documents; BM25 document encoding {setup['encode_s']:.1f} s for "
        f"{setup['chunks']:,.0f} chunks"
    )
    print()
    print("Ratios hybrid/dense (p50 over p50, same run):")
    for run in runs:
        parts = [f"{mode} {ratio(run, mode):.2f}x" for mode in run.modes if mode != "dense"]
        print(f"  {run.backend:<7} {run.size:>8,}: " + ", ".join(parts))
    print()
    goal = next((r for r in runs if r.backend == "edge" and r.size == GOAL_SIZE), None)
    title = f"hybrid (embedded, the answer's critical path) within {GOAL_RATIO}x of dense and under {GOAL_MS:.0f} ms"
    if goal is None:
        print(f"{title} at 100k: NOT MEASURED (needs --sizes 100000 and --backends edge)")
    else:
        hybrid, dense = goal.modes["hybrid"], goal.modes["dense"]
        passed = hybrid.p50 <= GOAL_RATIO * dense.p50 and hybrid.p50 < GOAL_MS
        print(
            f"{title} at 100k: {'PASS' if passed else 'FAIL'} (p50 hybrid {fmt_ms(hybrid.p50)} ms vs dense "
            f"{fmt_ms(dense.p50)} ms = {hybrid.p50 / dense.p50:.2f}x; "
            f"p95 {fmt_ms(hybrid.p95)} vs {fmt_ms(dense.p95)} ms)"
        )
        ranks = goal.modes["leg ranks"]
        print(
            f"  leg ranks (fetched on another thread while the reranker works): p50 {fmt_ms(ranks.p50)} ms; "
            f"both in one call (hybrid+ranks): p50 {fmt_ms(goal.modes['hybrid+ranks'].p50)} ms"
        )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="collection sizes")
    parser.add_argument("--queries", type=int, default=200, help="timed questions per size on Edge")
    parser.add_argument(
        "--server-queries", type=int, default=5, help="timed questions at 100k in local mode (more when smaller)"
    )
    parser.add_argument("--backends", nargs="+", choices=["edge", "server"], default=["edge", "server"])
    parser.add_argument("--limit", type=int, default=20, help="hits per question (a preset's candidates_k)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if min(args.sizes) < args.queries:
        parser.error("every size must be at least --queries")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    print("Retrieval latency: Qdrant Edge (embedded) and qdrant-client local mode (server API stand-in)")
    print(f"Start: {load_average()}")
    print(
        f"Dense vectors are random {DIMENSION}-d unit vectors with cluster structure (no embedding model): "
        "the timings are the index's only. Chunk texts are real English/Chinese text (see the docstring)."
    )
    print(
        f"Server backend = qdrant-client local mode (brute force, pure Python, no HNSW): "
        f"{', '.join(f'{server_question_count(args, s)} questions at {s:,}' for s in args.sizes)} "
        "(each hybrid question takes seconds at 100k); its numbers do not predict a real Qdrant server."
    )
    depth = max(args.limit, 50)
    print(f"limit {args.limit}, leg depth {depth}, {WARMUP} warm-up questions on Edge, seed {args.seed}")
    rng = np.random.default_rng(args.seed)
    progress("loading source texts")
    sources = load_sources()
    largest = max(args.sizes)
    chunks = build_chunks(sources, largest, rng)
    base = sum(1 for c in chunks if not c.path.startswith("synthetic/"))
    progress(f"{len(sources)} sources, {base:,} real chunks, {len(chunks) - base:,} pseudo-documents; vectors")
    vectors = chunk_vectors(chunks, len(sources), rng)
    encoder = LexicalEncoder()
    progress(f"BM25 encoding of {len(chunks):,} chunks")
    started = time.perf_counter()
    sparse = encoder.encode_documents(c.text for c in chunks)
    encode_docs_s = time.perf_counter() - started
    setup = {
        "sources": len(sources),
        "base": base,
        "synthetic": len(chunks) - base,
        "encode_s": encode_docs_s,
        "chunks": len(chunks),
    }
    runs: list[Run] = []
    encode_ms: list[float] = []
    with tempfile.TemporaryDirectory(prefix="retrieval-latency-") as temp:
        for size in sorted(args.sizes):
            questions, encoded = make_questions(chunks, vectors, size, args.queries, encoder, rng)
            encode_ms += encoded
            for backend in args.backends:
                runs.append(run_backend(backend, size, chunks, vectors, sparse, questions, args, Path(temp)))
    report(runs, summarise(encode_ms), setup)
    print()
    print(f"End: {load_average()}")


if __name__ == "__main__":
    main()
