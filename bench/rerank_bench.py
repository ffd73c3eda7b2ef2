"""Time Qwen3-Reranker scoring on the CPU: the tutorial way against `rerank.Qwen3Reranker`.

(a) tutorial: one document per forward pass of the causal LM, full-vocabulary logits at every position, then
    the "yes"/"no" logits of the last one (the official example's scoring, unbatched).
(b) engine: `Qwen3Reranker.score` (length-sorted batches, shared prefix computed once, last position only,
    yes/no rows only).

The checkpoint has random weights with Qwen3-Reranker-0.6B's shape and compute (28 layers, hidden 1024,
vocab 151,669): the timings are real, the scores mean nothing. Both paths must give the same scores.

    python bench/rerank_bench.py                 # full size, 10 documents, 3 repeats
    python bench/rerank_bench.py --size tiny --docs 5 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

CACHE_DIR = REPO / "data" / "bench"
AGREEMENT_TOL = 1e-4

QUESTION = "How do I reset my single sign-on password when I am locked out while travelling abroad?"

FILLER = [
    "Open the single sign-on portal and click Forgot password to receive a reset link by email.",
    "The reset link expires after thirty minutes, so use it right away or request a new one.",
    "If you are abroad, the VPN client must be connected before the portal accepts your login.",
    "Accounts are locked for fifteen minutes after five failed attempts to sign in.",
    "The IT help desk can unlock an account after checking your identity over a video call.",
    "Two-factor authentication codes are sent to the phone number registered in the HR portal.",
    "Expense reports for travel must include the receipts and the purpose of the trip.",
    "The on-call engineer answers pages within fifteen minutes, day and night.",
    "Deployments to production need a second engineer's approval and a green staging run.",
    "The knowledge base is rebuilt every night from the shared drive and the team wiki.",
    "打开单点登录门户，点击“忘记密码”，系统会把重置链接发送到你的邮箱。",
    "重置链接三十分钟后失效，请尽快使用，或者重新申请一个新的链接。",
    "在国外出差时，必须先连接虚拟专用网络，门户才会接受你的登录。",
    "连续五次登录失败后，账户会被锁定十五分钟。",
    "信息技术服务台可以在视频通话核实身份之后为你解锁账户。",
    "双重认证的验证码会发送到人力资源系统中登记的手机号码。",
    "差旅报销需要附上发票，并写明出差的目的。",
    "知识库每天晚上从共享盘和团队维基重新构建。",
]


def machine_description() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (
        f"{platform.system()} {platform.machine()}, CPU: {cpu}, {usable} usable cores; "
        f"torch {torch.__version__} (threads={torch.get_num_threads()}); CUDA GPU: {cuda}"
    )


def ensure_checkpoint(size: str, seed: int, checkpoint: str | None) -> Path:
    """Reuse a checkpoint written earlier (the marker file says how), else write one."""
    from rerank.random_checkpoint import build_random_checkpoint, qwen_tokenizer_available

    tokenizer = "qwen" if size == "full" and qwen_tokenizer_available() else "trained"
    folder = Path(checkpoint) if checkpoint else CACHE_DIR / f"qwen3-{size}-random-seed{seed}-{tokenizer}"
    marker = folder / "ragbot_random_checkpoint.json"
    if (folder / "config.json").is_file() and (not marker.is_file() or _marker_matches(marker, size, seed)):
        print(f"checkpoint: reusing {folder}")
        return folder
    print(f"checkpoint: writing a random-weight {size} checkpoint to {folder} (tokenizer: {tokenizer}) ...")
    start = time.perf_counter()
    build_random_checkpoint(folder, size=size, seed=seed, tokenizer=tokenizer)  # type: ignore[arg-type]
    print(f"checkpoint: written in {time.perf_counter() - start:.1f} s")
    return folder


def _marker_matches(marker: Path, size: str, seed: int) -> bool:
    meta = json.loads(marker.read_text(encoding="utf-8"))
    return meta.get("size") == size and meta.get("seed") == seed


def make_documents(tokenizer: Any, count: int, seed: int, low: int = 150, high: int = 400) -> list[str]:
    """`count` documents of `low`..`high` tokens (counted with the checkpoint's tokenizer)."""
    rng = random.Random(seed)

    def n_tokens(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False))

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


class Tutorial:
    """The official example's recipe, one document per forward pass, full logits at every position."""

    def __init__(self, folder: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from rerank.qwen3 import PREFIX, SUFFIX

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), padding_side="left")
        self.model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
        self.prefix = self.tokenizer.encode(PREFIX, add_special_tokens=False)
        self.suffix = self.tokenizer.encode(SUFFIX, add_special_tokens=False)
        self.yes = self.tokenizer.convert_tokens_to_ids("yes")
        self.no = self.tokenizer.convert_tokens_to_ids("no")
        self.max_length = 8192
        self.logits_shape: tuple[int, ...] = ()

    def score(self, query: str, documents: Sequence[str], instruction: str) -> list[float]:
        torch = self.torch
        scores = []
        with torch.no_grad():
            for doc in documents:
                body = f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}"
                ids = self.tokenizer(
                    body,
                    add_special_tokens=False,
                    truncation="longest_first",
                    max_length=self.max_length - len(self.prefix) - len(self.suffix),
                )["input_ids"]
                inputs = {
                    "input_ids": torch.tensor([self.prefix + ids + self.suffix]),
                    "attention_mask": torch.ones((1, len(self.prefix) + len(ids) + len(self.suffix)), dtype=torch.long),
                }
                logits = self.model(**inputs).logits  # [1, seq_len, vocab]: every position, every token
                self.logits_shape = tuple(logits.shape)
                last = logits[:, -1, :]
                pair = torch.stack([last[:, self.no], last[:, self.yes]], dim=1).float()
                scores.append(torch.log_softmax(pair, dim=1)[0, 1].exp().item())
        return scores


def timed(fn: Callable[[], list[float]], repeats: int) -> tuple[list[float], list[float]]:
    fn()  # warm-up
    times, result = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10, help="number of documents (default 10)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after one warm-up (default 3)")
    parser.add_argument("--size", choices=["full", "tiny"], default="full")
    parser.add_argument("--checkpoint", help=f"checkpoint folder to use or write (default: under {CACHE_DIR})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-tokens", type=int, default=16384)
    parser.add_argument(
        "--ablation",
        action="store_true",
        help="also time the engine without the shared-prefix cache, and with padded batches",
    )
    args = parser.parse_args(argv)
    if args.docs < 1 or args.repeats < 1:
        parser.error("--docs and --repeats must be at least 1")

    from rerank import DEFAULT_INSTRUCTION, Qwen3Reranker

    print(f"machine: {machine_description()}")
    print("device: cpu, dtype: float32 (both paths)")
    folder = ensure_checkpoint(args.size, args.seed, args.checkpoint)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    print(
        f"model: random weights, {config['num_hidden_layers']} layers, hidden {config['hidden_size']}, "
        f"vocab {config['vocab_size']} (Qwen3-Reranker-0.6B has 28 / 1024 / 151669)"
    )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "the CPU is slow": we know, we are measuring it
        engine = Qwen3Reranker(str(folder), device="cpu", dtype="float32", batch_tokens=args.batch_tokens)
    tutorial = Tutorial(folder)

    docs = make_documents(engine._tokenizer, args.docs, args.seed)
    doc_tokens = [len(engine._tokenizer.encode(d, add_special_tokens=False)) for d in docs]
    sequences = engine.tokenize(QUESTION, docs)
    seq_tokens = [len(s) for s in sequences]
    shared = engine._shared_prefix_len(sequences) if len(sequences) > 1 else 0
    print(
        f"input: 1 question, {len(docs)} documents of {min(doc_tokens)}-{max(doc_tokens)} tokens "
        f"(mean {statistics.mean(doc_tokens):.0f}); scored sequences {min(seq_tokens)}-{max(seq_tokens)} "
        f"tokens, {sum(seq_tokens)} in all, {shared} shared by all (template + instruction + question)"
    )
    batches = engine._plan_batches([n - shared for n in seq_tokens])
    print(f"engine plan: {len(batches)} forward pass(es), batch sizes {[len(b) for b in batches]}")

    results: dict[str, tuple[list[float], list[float]]] = {}
    print(f"timing: 1 warm-up + {args.repeats} timed runs each ...", flush=True)
    results["tutorial"] = timed(lambda: tutorial.score(QUESTION, docs, DEFAULT_INSTRUCTION), args.repeats)
    results["engine"] = timed(lambda: engine.score(QUESTION, docs), args.repeats)
    if args.ablation:
        engine.prefix_cache = False
        results["engine, no prefix cache"] = timed(lambda: engine.score(QUESTION, docs), args.repeats)
        engine.prefix_cache = True
        default_padding, engine.max_padding = engine.max_padding, 0.3
        results["engine, padded batches (GPU setting)"] = timed(lambda: engine.score(QUESTION, docs), args.repeats)
        engine.max_padding = default_padding

    tutorial_median = statistics.median(results["tutorial"][0])
    print()
    print(f"tutorial logits per document (last one): {list(tutorial.logits_shape)} floats of [1, seq, vocab]")
    for name, (times, _scores) in results.items():
        median = statistics.median(times)
        label = {"tutorial": "(a) tutorial", "engine": "(b) Qwen3Reranker.score"}.get(name, f"    {name}")
        runs = ", ".join(f"{t:.2f}" for t in times)
        print(
            f"{label:<42} median {median:7.2f} s  ({median / len(docs) * 1000:6.0f} ms/doc; runs: {runs}); "
            f"tutorial/this = {tutorial_median / median:.2f}x"
        )
    ref_scores = results["tutorial"][1]
    worst = 0.0
    for name, (_times, scores) in results.items():
        diff = max(abs(a - b) for a, b in zip(ref_scores, scores, strict=True))
        worst = max(worst, diff)
        if name != "tutorial":
            print(f"max |score difference| {name} vs tutorial: {diff:.2e}")
    ok = worst <= AGREEMENT_TOL
    print(f"agreement within {AGREEMENT_TOL:g}: {'OK' if ok else 'FAILED'}")
    print("scores (random weights, meaningless): " + ", ".join(f"{s:.4f}" for s in results["engine"][1]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
