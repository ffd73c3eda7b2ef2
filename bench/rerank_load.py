"""Load-test a /v1/rerank server: 1, 8 and 32 concurrent clients, each sending N questions of K documents.

By default it starts `ragbot rerank-server`'s app in this process (uvicorn on a free port) over a random-weight
tiny checkpoint; `--size full` uses Qwen3-Reranker-0.6B's shape (timings real, scores meaningless),
`--checkpoint` a folder of your own, `--url` drives a server that is already running (ours, vLLM, infinity...).

Per concurrency level it prints requests/s, pairs/s, p50/p95 latency and, from the server's /metrics (ours
only), the mean number of requests and pairs per engine batch: with dynamic batching, concurrent clients share
forward passes, so 32 clients should score more pairs per second than 1.

    python bench/rerank_load.py                                   # tiny, in-process, N=4, K=20
    python bench/rerank_load.py --size full --requests 2
    python bench/rerank_load.py --url http://127.0.0.1:8080 --checkpoint /models/Qwen3-Reranker-0.6B
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

CACHE_DIR = REPO / "data" / "bench"

QUESTIONS = [
    "How do I reset my single sign-on password when I am locked out?",
    "What do I need before I can reach the internal wiki from home?",
    "When are expense reports due and what must they include?",
    "How fast does the on-call engineer answer a page?",
    "Who has to approve a production deployment?",
    "如何重置单点登录密码？",
    "出差报销需要准备哪些材料？",
    "How often is the knowledge base rebuilt?",
]

FILLER = [
    "Open the single sign-on portal and click Forgot password to receive a reset link by email.",
    "The reset link expires after thirty minutes, so use it right away or request a new one.",
    "If you are abroad, the VPN client must be connected before the portal accepts your login.",
    "Accounts are locked for fifteen minutes after five failed attempts to sign in.",
    "The IT help desk can unlock an account after checking your identity over a video call.",
    "Expense reports for travel must include the receipts and the purpose of the trip.",
    "The on-call engineer answers pages within fifteen minutes, day and night.",
    "Deployments to production need a second engineer's approval and a green staging run.",
    "The knowledge base is rebuilt every night from the shared drive and the team wiki.",
    "打开单点登录门户，点击“忘记密码”，系统会把重置链接发送到你的邮箱。",
    "在国外出差时，必须先连接虚拟专用网络，门户才会接受你的登录。",
    "差旅报销需要附上发票，并写明出差的目的。",
]


def ensure_checkpoint(size: str, checkpoint: str | None, seed: int = 0) -> Path:
    """The given folder, or a random-weight checkpoint of `size` cached under data/bench (written once)."""
    from rerank.random_checkpoint import build_random_checkpoint, qwen_tokenizer_available

    if checkpoint and (Path(checkpoint) / "config.json").is_file():
        return Path(checkpoint)
    tokenizer = "qwen" if size == "full" and qwen_tokenizer_available() else "trained"
    folder = Path(checkpoint) if checkpoint else CACHE_DIR / f"qwen3-{size}-random-seed{seed}-{tokenizer}"
    if not (folder / "config.json").is_file():
        print(f"checkpoint: writing a random-weight {size} checkpoint to {folder} ...", flush=True)
        build_random_checkpoint(folder, size=size, seed=seed, tokenizer=tokenizer)  # type: ignore[arg-type]
    return folder


def make_documents(count: int, rng: random.Random, n_tokens: Callable[[str], int], low: int, high: int) -> list[str]:
    docs = []
    for _ in range(count):
        target = rng.randint(low, high)
        sentences: list[str] = []
        while n_tokens(" ".join(sentences)) < target:
            sentences.append(rng.choice(FILLER))
        if n_tokens(" ".join(sentences)) > high and len(sentences) > 1:
            sentences.pop()
        docs.append(" ".join(sentences))
    return docs


def token_counter(checkpoint: Path | None) -> tuple[Callable[[str], int], str]:
    if checkpoint is not None:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(checkpoint))
        return (lambda text: len(tok.encode(text, add_special_tokens=False))), "the checkpoint's tokenizer"
    # No tokenizer at hand (--url alone): about 1.3 tokens per English word.
    return (lambda text: int(len(text.split()) * 1.3)), "~1.3 tokens per word"


class InProcessServer:
    """`rerank.server.create_rerank_app` on 127.0.0.1:<free port>, in a thread of this process."""

    def __init__(self, checkpoint: Path, args: argparse.Namespace) -> None:
        import uvicorn

        from rerank.server import create_rerank_app, qwen3_batcher_factory

        factory = qwen3_batcher_factory(
            str(checkpoint),
            device=args.device,
            batch_tokens=args.batch_tokens,
            max_wait_ms=args.max_wait_ms,
            max_queue=args.max_queue,
            max_padding=args.max_padding,
        )
        self.app = create_rerank_app(factory, checkpoint.name)
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"
        service = self.app.state.service
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if not service.wait_ready(600):
                raise RuntimeError(f"the reranker did not load: {service.error}")

    @property
    def engine(self) -> Any:
        return self.app.state.service.batcher.reranker

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def scrape(http: Any, url: str) -> dict[str, float] | None:
    """The server's /metrics as {sample: value}; None when it has none (not our server)."""
    try:
        resp = http.get(url + "/metrics")
    except Exception:
        return None
    if resp.status_code != 200:
        return None
    out: dict[str, float] = {}
    for line in resp.text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                out[key] = float(value)
    return out


@dataclass
class LevelResult:
    concurrency: int
    requests: int
    errors: int
    seconds: float
    latencies: list[float]
    pairs: int
    tokens: int
    req_per_batch: float | None
    pairs_per_batch: float | None

    def row(self) -> list[str]:
        lat = sorted(self.latencies) or [float("nan")]
        p50 = statistics.median(lat)
        p95 = lat[min(len(lat) - 1, max(0, round(0.95 * len(lat)) - 1))]
        fmt = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
        return [
            str(self.concurrency),
            str(self.requests),
            str(self.errors),
            f"{self.requests / self.seconds:.2f}",
            f"{self.pairs / self.seconds:.1f}",
            f"{p50 * 1000:.0f}",
            f"{p95 * 1000:.0f}",
            fmt(self.req_per_batch),
            fmt(self.pairs_per_batch),
        ]


HEADER = ["clients", "requests", "errors", "req/s", "pairs/s", "p50 ms", "p95 ms", "req/batch", "pairs/batch"]


def run_level(
    url: str, concurrency: int, per_client: int, docs_pool: Sequence[str], k: int, seed: int, timeout: float
) -> LevelResult:
    import httpx

    endpoint = url.rstrip("/") + ("" if url.rstrip("/").endswith("/rerank") else "/v1/rerank")
    base = endpoint.rsplit("/v1/rerank", 1)[0] if endpoint.endswith("/v1/rerank") else url.rstrip("/")
    rng = random.Random(seed * 1000 + concurrency)
    jobs = [
        [(f"{rng.choice(QUESTIONS)} (request {c}-{i})", rng.sample(list(docs_pool), k)) for i in range(per_client)]
        for c in range(concurrency)
    ]
    latencies: list[float] = []
    errors = tokens = 0
    lock = threading.Lock()
    barrier = threading.Barrier(concurrency + 1)

    def client(work: list[tuple[str, list[str]]]) -> None:
        nonlocal errors, tokens
        with httpx.Client(timeout=timeout) as http:
            barrier.wait()
            for query, docs in work:
                t0 = time.perf_counter()
                try:
                    resp = http.post(endpoint, json={"query": query, "documents": docs, "top_n": len(docs)})
                    ok = resp.status_code == 200
                    used = (resp.json().get("usage") or {}).get("total_tokens", 0) if ok else 0
                except Exception:
                    ok, used = False, 0
                with lock:
                    if ok:
                        latencies.append(time.perf_counter() - t0)
                        tokens += int(used or 0)
                    else:
                        errors += 1

    with httpx.Client(timeout=10) as http:
        before = scrape(http, base)
        threads = [threading.Thread(target=client, args=(w,), daemon=True) for w in jobs]
        for t in threads:
            t.start()
        barrier.wait()
        started = time.perf_counter()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - started
        after = scrape(http, base)
    req_per_batch = pairs_per_batch = None
    if before is not None and after is not None and "rerank_batch_requests_count" in after:
        batches = after["rerank_batch_requests_count"] - before.get("rerank_batch_requests_count", 0)
        if batches > 0:
            req_per_batch = (after["rerank_batch_requests_sum"] - before.get("rerank_batch_requests_sum", 0)) / batches
            pairs_per_batch = (after["rerank_batch_pairs_sum"] - before.get("rerank_batch_pairs_sum", 0)) / batches
    done = len(latencies)
    return LevelResult(concurrency, done, errors, seconds, latencies, done * k, tokens, req_per_batch, pairs_per_batch)


def print_table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for j, r in enumerate(rows):
        print("  ".join(cell.rjust(w) for cell, w in zip(r, widths, strict=True)))
        if j == 0:
            print("  ".join("-" * w for w in widths))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running /v1/rerank server (default: start one in this process)")
    parser.add_argument("--checkpoint", help="model folder (in-process server; also sizes documents with --url)")
    parser.add_argument("--size", choices=["tiny", "full"], default="tiny", help="random checkpoint size")
    parser.add_argument("--concurrency", default="1,8,32", help="client counts (default 1,8,32)")
    parser.add_argument("--requests", type=int, default=4, help="requests per client (default 4)")
    parser.add_argument("--docs", type=int, default=20, help="documents per request (default 20)")
    parser.add_argument("--min-tokens", type=int, default=150)
    parser.add_argument("--max-tokens", type=int, default=400)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-tokens", type=int, default=16384)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--max-queue", type=int, default=256)
    parser.add_argument(
        "--max-padding", type=float, default=None, help="engine's padding share per pass (default: engine's)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.concurrency.split(",") if x.strip()]

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    server: InProcessServer | None = None
    checkpoint: Path | None = None
    if args.url:
        url = args.url
        checkpoint = Path(args.checkpoint) if args.checkpoint else None
        where = f"server at {url}"
    else:
        checkpoint = ensure_checkpoint(args.size, args.checkpoint, args.seed)
        started = time.perf_counter()
        server = InProcessServer(checkpoint, args)
        url = server.url
        engine = server.engine
        where = (
            f"in-process server, {checkpoint.name} on {engine.device} ({engine.dtype}), "
            f"batch_tokens={engine.batch_tokens}, max_padding={engine.max_padding}, "
            f"max_wait_ms={args.max_wait_ms:g}; loaded in {time.perf_counter() - started:.1f} s"
        )
    try:
        import torch

        n_tokens, how = token_counter(checkpoint)
        pool = make_documents(
            max(args.docs * 4, 40), random.Random(args.seed), n_tokens, args.min_tokens, args.max_tokens
        )
        print(where)
        print(
            f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"{len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()} usable cores"
        )
        print(
            f"each request: 1 question, {args.docs} documents of {args.min_tokens}-{args.max_tokens} tokens ({how}); "
            f"{args.requests} requests per client"
        )
        run_level(url, 1, 1, pool, args.docs, args.seed + 99, args.timeout)  # warm-up
        results = []
        for c in levels:
            results.append(run_level(url, c, args.requests, pool, args.docs, args.seed, args.timeout))
        print()
        print_table([HEADER] + [r.row() for r in results])
        if results and results[0].tokens and results[0].pairs:
            print(f"\nmean tokens per pair (server's usage): {results[0].tokens / results[0].pairs:.0f}")
        errors = sum(r.errors for r in results)
        if errors:
            print(f"\n{errors} requests failed")
        return 1 if errors else 0
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
