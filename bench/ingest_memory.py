"""Peak memory and time of ingesting one large generated .txt file, for this checkout ("after") and an earlier
commit ("before", default: the last commit before streamed ingestion, issue 17).

Each measurement is a fresh process: it loads the embedder, embeds a few texts (so the model's own working memory
is in the baseline), then ingests the file into an embedded Qdrant Edge folder and prints one JSON object: the
file's size, the chunks written, the seconds, the peak resident memory after loading the model, and the growth of
the peak during ingestion (`ru_maxrss`, so the growth is what ingestion itself needed at its worst).

    python bench/ingest_memory.py                          # 3 MB, bundled embedder, before and after
    python bench/ingest_memory.py --before none --size-mb 6
    python bench/ingest_memory.py --model /path/to/model   # any sentence-transformers folder (EMBED_MODEL)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BEFORE = "606bd9d"  # the last commit that embedded a whole file at once
WORDS = (
    "the customer asked how to export all data from the helpdesk and configure single sign on for the sales team "
    "before the renewal while support checked the integration logs and the api limits of each workspace"
).split()


def write_text(path: Path, size_mb: float, seed: int = 0) -> int:
    """A .txt of paragraphs of 30-120 words, about `size_mb` MB; returns its size in bytes."""
    rng = random.Random(seed)
    target = int(size_mb * 1_000_000)
    with path.open("w", encoding="utf-8") as stream:
        written = 0
        while written < target:
            paragraph = " ".join(rng.choice(WORDS) for _ in range(rng.randint(30, 120))) + ".\n\n"
            stream.write(paragraph)
            written += len(paragraph)
    return path.stat().st_size


def measure(size_mb: float, model: str, batch: int | None) -> dict[str, float]:
    """Ingest one generated file in this process and report time and memory (see the module docstring)."""
    import resource
    import time

    from retrieval import SentenceTransformerEmbedder, ingest_path, open_index

    embedder = SentenceTransformerEmbedder(model)
    embedder.encode(["warm up " * 200] * 64)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "big.txt"
        size = write_text(file, size_mb)
        extra = {"batch_chunks": batch} if batch else {}
        with open_index(None, str(Path(folder) / "qdrant")) as index:
            started = time.perf_counter()
            summary = ingest_path(file, index, embedder, "kb", **extra)
            seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "file_mb": round(size / 1_000_000, 2),
        "chunks": summary.chunks,
        "seconds": round(seconds, 1),
        "baseline_mb": round(baseline),
        "peak_mb": round(peak),
        "growth_mb": round(peak - baseline),
    }


def run_child(tree: Path, size_mb: float, model: str, batch: int | None) -> dict[str, float]:
    """`measure` in a fresh process importing `retrieval` from `tree`."""
    args = [sys.executable, str(Path(__file__).resolve()), "--child", "--size-mb", str(size_mb), "--model", model]
    if batch:
        args += ["--batch", str(batch)]
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tree, check=False)
    if result.returncode:
        raise SystemExit(f"measurement in {tree} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=float, default=3.0)
    parser.add_argument("--model", default="", help="sentence-transformers folder; empty = bundled all-MiniLM-L6-v2")
    parser.add_argument("--before", default=BEFORE, help="git ref to compare with, or 'none'")
    parser.add_argument("--batch", type=int, default=0, help="chunks per batch (after only; 0 = the default)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.size_mb, args.model, args.batch or None)))
        return
    rows = {"after": run_child(REPO, args.size_mb, args.model, args.batch or None)}
    if args.before != "none":
        with tempfile.TemporaryDirectory() as folder:
            tree = Path(folder) / "before"
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), args.before], check=True)
            try:
                rows["before"] = run_child(tree, args.size_mb, args.model, None)
            finally:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=True)
    for name, row in rows.items():
        print(f"{name:>6}: " + ", ".join(f"{key} {value}" for key, value in row.items()))


if __name__ == "__main__":
    main()
