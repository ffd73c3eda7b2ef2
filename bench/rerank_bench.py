"""Time Qwen3-Reranker scoring of one question on the CPU: the tutorial way against `rerank.Qwen3Reranker`.

On one machine, in one run, for one question with 10 and with 50 candidates of 150-400 tokens each:

(a) tutorial: one document per forward pass of the causal LM, full-vocabulary logits at every position, then
    the "yes"/"no" logits of the last one (the official example's scoring, unbatched), float32;
(b) the engine (`Qwen3Reranker.score`) without prefix reuse: length-sorted batches, last position only,
    yes/no rows only, float32;
(c) the engine with prefix reuse: the prefix every candidate shares (system prompt + instruction + question)
    runs once and its key/value cache serves every document, float32;
(d) sentence-transformers' `CrossEncoder` on the same checkpoint (its native causal-LM reranker support, with
    the Qwen3-Reranker chat template), float32, where it can load it;
(e) the engine with prefix reuse in bfloat16, where the CPU has bfloat16 matrix instructions (`--bf16`).

Each row: median time per question, its ratio to the tutorial way, the largest |score difference| from the
tutorial (float32 rows must agree within 1e-4), and for bfloat16 the largest difference from float32 and
whether the ranking of the candidates stays the same. The prefix is realistic: the system prompt, an
instruction of about 40 tokens and a question of about 20.

The checkpoint has random weights with Qwen3-Reranker-0.6B's shape and compute (28 layers, hidden 1024,
vocab 151,669): the timings are real, the scores mean nothing (and crowd together, so rankings of random
scores are fragile). Timings need a quiet machine: the load average is printed at the start and the end.

    python bench/rerank_bench.py                                   # full size, 10 and 50 candidates
    python bench/rerank_bench.py --docs 10,50 --repeats 2,1 --bf16 auto
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
TARGET_AT_50 = 1.6  # the engine with prefix reuse, float32, against the tutorial way, at 50 candidates

# About 40 tokens (Qwen tokenizer): a channel-specific instruction as ragbot's presets write them.
INSTRUCTION = (
    "Given a question that an employee asked in the company Slack workspace, retrieve the internal "
    "knowledge-base passages, such as IT runbooks, HR policies and team wiki pages, that answer it with "
    "concrete steps"
)
# About 20 tokens.
QUESTION = "How do I reset my single sign-on password when I am locked out of my laptop while travelling abroad?"

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


class Row:
    """One way of scoring, its timings and its last scores."""

    def __init__(
        self, key: str, label: str, fn: Callable[[Sequence[str]], list[float]], dtype: str = "float32"
    ) -> None:
        self.key, self.label, self.fn, self.dtype = key, label, fn, dtype
        self.times: list[float] = []
        self.scores: list[float] = []


def bf16_support_line() -> tuple[str | None, str]:
    import torch

    from rerank.qwen3 import cpu_bf16_support

    flags = cpu_bf16_support()
    capability = torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, "cpu") else "?"
    onednn = "yes" if torch.backends.mkldnn.is_available() else "no"
    what = flags or "none (bfloat16 matrix products would be emulated, slower than float32)"
    return flags, f"bfloat16 matrix instructions: {what}; torch CPU capability {capability}, oneDNN {onednn}"


def load_cross_encoder(folder: Path) -> tuple[Any | None, str]:
    """sentence-transformers' CrossEncoder on the checkpoint, float32, or None and why not."""
    try:
        import sentence_transformers
        import torch
        from sentence_transformers import CrossEncoder
    except ImportError as exc:
        return None, f"sentence-transformers is not installed ({exc})"
    from rerank.cross_encoder import QWEN3_RERANKER_CHAT_TEMPLATE

    version = sentence_transformers.__version__
    tok_config_path = folder / "tokenizer_config.json"
    tok_config = json.loads(tok_config_path.read_text(encoding="utf-8")) if tok_config_path.is_file() else {}
    has_template = bool(tok_config.get("chat_template")) or (folder / "chat_template.jinja").is_file()
    note = "its own chat template"
    processor_kwargs: dict[str, Any] = {}
    if not has_template:
        # Without a template CrossEncoder would score bare "query document" text pairs (no error, wrong
        # scores); sentence-transformers' packaging of Qwen3-Reranker adds this template to the same weights.
        processor_kwargs["chat_template"] = QWEN3_RERANKER_CHAT_TEMPLATE
        note = "the checkpoint has no chat template (original layout), so the Qwen3-Reranker one was supplied"
    kwargs: dict[str, Any] = {"device": "cpu", "model_kwargs": {"dtype": torch.float32}}
    try:
        try:
            encoder = CrossEncoder(str(folder), processor_kwargs=processor_kwargs or None, **kwargs)
        except TypeError:  # sentence-transformers 5.x calls them tokenizer_kwargs
            encoder = CrossEncoder(str(folder), tokenizer_kwargs=processor_kwargs or None, **kwargs)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        return None, f"sentence-transformers {version} cannot load it: {type(exc).__name__}: {first}"
    modules = [type(m).__name__ for m in encoder]
    if "LogitScore" not in modules:
        return None, f"sentence-transformers {version} loaded it as {modules}, not as a causal-LM reranker"
    dtype = next(encoder.parameters()).dtype
    if dtype != torch.float32:
        encoder = encoder.float()
    return encoder, f"sentence-transformers {version}, modules {modules}, {note}"


def parse_counts(text: str, name: str) -> list[int]:
    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{name}: comma-separated integers, not {text!r}") from exc
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"{name}: integers of at least 1, not {text!r}")
    return values


def ranking(scores: Sequence[float]) -> list[int]:
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def ranking_report(reference: Sequence[float], other: Sequence[float]) -> str:
    want, got = ranking(reference), ranking(other)
    if want == got:
        return f"ranking of the {len(want)} identical to float32's: yes"
    moved = sum(1 for a, b in zip(want, got, strict=True) if a != b)
    flipped = [
        (i, j)
        for i in range(len(reference))
        for j in range(len(reference))
        if reference[i] > reference[j] and other[i] < other[j]
    ]
    widest = max(reference[i] - reference[j] for i, j in flipped) if flipped else 0.0
    top = min(5, len(want))
    return (
        f"ranking of the {len(want)} identical to float32's: NO ({moved} positions differ, {len(flipped)} pairs "
        f"swapped, the widest float32 gap swapped {widest:.1e}; top {top} identical: "
        f"{'yes' if want[:top] == got[:top] else 'no'})"
    )


def load_line() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "load average: unknown"
    return f"load average (1/5/15 min): {one:.2f} / {five:.2f} / {fifteen:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", default="10,50", help="candidate counts, comma-separated (default 10,50)")
    parser.add_argument(
        "--repeats", default="3,1", help="timed runs per count after the warm-up: one value or one per count (3,1)"
    )
    parser.add_argument("--size", choices=["full", "tiny"], default="full")
    parser.add_argument("--checkpoint", help=f"checkpoint folder to use or write (default: under {CACHE_DIR})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-tokens", type=int, default=16384)
    parser.add_argument(
        "--bf16",
        choices=["auto", "on", "off"],
        default="auto",
        help="the bfloat16 row: auto = where the CPU has bfloat16 matrix instructions (default)",
    )
    parser.add_argument("--no-cross-encoder", action="store_true", help="skip sentence-transformers' row")
    parser.add_argument(
        "--ablation", action="store_true", help="also time the engine with prefix reuse and padded batches"
    )
    args = parser.parse_args(argv)
    try:
        counts = parse_counts(args.docs, "--docs")
        repeats = parse_counts(args.repeats, "--repeats")
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    if len(repeats) == 1:
        repeats = repeats * len(counts)
    if len(repeats) != len(counts):
        parser.error("--repeats takes one value, or one per --docs count")

    import torch

    from rerank import Qwen3Reranker

    print(f"machine: {machine_description()}")
    flags, bf16_line = bf16_support_line()
    print(bf16_line)
    print(f"at start: {load_line()}")
    folder = ensure_checkpoint(args.size, args.seed, args.checkpoint)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    print(
        f"model: random weights, {config['num_hidden_layers']} layers, hidden {config['hidden_size']}, "
        f"vocab {config['vocab_size']} (Qwen3-Reranker-0.6B has 28 / 1024 / 151669)"
    )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "the CPU is slow": we know, we are measuring it
        engine = Qwen3Reranker(str(folder), device="cpu", dtype="float32", batch_tokens=args.batch_tokens)
        run_bf16 = args.bf16 == "on" or (args.bf16 == "auto" and flags is not None)
        engine16 = (
            Qwen3Reranker(str(folder), device="cpu", dtype="bfloat16", batch_tokens=args.batch_tokens)
            if run_bf16
            else None
        )
    tutorial = Tutorial(folder)
    cross_encoder, ce_note = (None, "skipped (--no-cross-encoder)")
    if not args.no_cross_encoder:
        cross_encoder, ce_note = load_cross_encoder(folder)
    print(f"sentence-transformers CrossEncoder: {ce_note}")
    if engine16 is None:
        print(f"bfloat16 row: skipped (--bf16 {args.bf16}; {'no bfloat16 matrix instructions' if not flags else ''})")
    elif not flags:
        print("bfloat16 row: forced on (--bf16 on) without bfloat16 matrix instructions: expect it to be slow")

    def engine_fn(reuse_prefix: bool, padded: bool = False) -> Callable[[Sequence[str]], list[float]]:
        def run(docs: Sequence[str]) -> list[float]:
            engine.prefix_cache = reuse_prefix
            default_padding = engine.max_padding
            if padded:
                engine.max_padding = 0.3
            try:
                return engine.score(QUESTION, docs, INSTRUCTION)
            finally:
                engine.prefix_cache, engine.max_padding = True, default_padding

        return run

    rows = [
        Row("tutorial", "(a) tutorial: 1 doc/pass, full logits", lambda d: tutorial.score(QUESTION, d, INSTRUCTION)),
        Row("no-prefix", "(b) Qwen3Reranker.score, no prefix reuse", engine_fn(False)),
        Row("prefix", "(c) Qwen3Reranker.score, prefix reuse", engine_fn(True)),
    ]
    if args.ablation:
        rows.append(Row("padded", "(c') prefix reuse, padded batches (GPU)", engine_fn(True, padded=True)))
    if cross_encoder is not None:
        ce = cross_encoder

        def st_fn(docs: Sequence[str]) -> list[float]:
            pairs = [(QUESTION, d) for d in docs]
            out = ce.predict(pairs, prompt=INSTRUCTION, show_progress_bar=False, activation_fn=torch.nn.Sigmoid())
            return [float(x) for x in out]

        rows.append(Row("st", "(d) sentence-transformers CrossEncoder", st_fn))
    if engine16 is not None:
        e16 = engine16
        rows.append(
            Row(
                "bf16",
                "(e) Qwen3Reranker.score, prefix reuse",
                lambda d: e16.score(QUESTION, d, INSTRUCTION),
                dtype="bfloat16",
            )
        )

    tok = engine._tokenizer
    n_instruction = len(tok.encode(INSTRUCTION, add_special_tokens=False))
    n_question = len(tok.encode(QUESTION, add_special_tokens=False))
    all_docs = make_documents(tok, max(counts), args.seed)  # the 10 are the first 10 of the 50
    print(
        f"prefix: system prompt {len(engine.prefix_ids)} tokens, instruction {n_instruction}, question "
        f"{n_question}; suffix {len(engine.suffix_ids)} tokens"
    )
    print(f"torch threads: {torch.get_num_threads()} (interop {torch.get_num_interop_threads()})")

    print("warm-up: each row scores 2 documents once ...", flush=True)
    for row in rows:
        row.fn(all_docs[:2])

    worst_fp32 = 0.0
    summary: list[str] = []
    for count, reps in zip(counts, repeats, strict=True):
        docs = all_docs[:count]
        doc_tokens = [len(tok.encode(d, add_special_tokens=False)) for d in docs]
        sequences = engine.tokenize(QUESTION, docs, INSTRUCTION)
        seq_tokens = [len(s) for s in sequences]
        shared = engine._shared_prefix_len(sequences) if len(sequences) > 1 else 0
        tails = [n - shared for n in seq_tokens]
        print()
        print(
            f"== 1 question, {count} candidates of {min(doc_tokens)}-{max(doc_tokens)} tokens (mean "
            f"{statistics.mean(doc_tokens):.0f}); scored sequences {min(seq_tokens)}-{max(seq_tokens)} tokens, "
            f"{sum(seq_tokens)} in all; shared prefix {shared} tokens (system prompt + instruction + question), "
            f"run once with prefix reuse; per document {min(tails)}-{max(tails)} tokens after it =="
        )
        plan_reuse = engine._plan_batches(tails)
        plan_plain = engine._plan_batches(seq_tokens)
        print(
            f"engine plan: {len(plan_plain)} forward pass(es) without prefix reuse, {len(plan_reuse)} + 1 with it "
            f"(max_padding={engine.max_padding:g} on the CPU: only equal lengths share a pass)"
        )
        for row in rows:
            row.times, row.scores = [], []
        print(f"timing: {reps} timed run(s) per row, rows interleaved ...", flush=True)
        for _ in range(reps):
            for row in rows:
                start = time.perf_counter()
                row.scores = row.fn(docs)
                row.times.append(time.perf_counter() - start)

        ref = rows[0].scores
        f32 = next(r for r in rows if r.key == "prefix").scores
        base = statistics.median(rows[0].times)
        print(
            f"{'row':<44} {'dtype':<9} {'s/question':>10} {'ms/doc':>7} {'tutorial/this':>13} "
            f"{'max|diff| vs (a)':>16}  runs (s)"
        )
        for row in rows:
            median = statistics.median(row.times)
            diff = max(abs(a - b) for a, b in zip(ref, row.scores, strict=True))
            if row.dtype == "float32":
                worst_fp32 = max(worst_fp32, diff)
            runs = ", ".join(f"{t:.2f}" for t in row.times)
            print(
                f"{row.label:<44} {row.dtype:<9} {median:10.2f} {median / count * 1000:7.0f} "
                f"{base / median:12.2f}x {diff:16.1e}  {runs}"
            )
        prefix_ratio = base / statistics.median(next(r for r in rows if r.key == "prefix").times)
        summary.append(f"{count} candidates: engine with prefix reuse, float32: {prefix_ratio:.2f}x the tutorial way")
        if count == 50 and args.size == "full":
            verdict = "met" if prefix_ratio >= TARGET_AT_50 else "NOT met"
            summary[-1] += f" (target >= {TARGET_AT_50}x: {verdict})"
        bf16_row = next((r for r in rows if r.key == "bf16"), None)
        if bf16_row is not None:
            diff16 = max(abs(a - b) for a, b in zip(f32, bf16_row.scores, strict=True))
            speed = statistics.median(next(r for r in rows if r.key == "prefix").times) / statistics.median(
                bf16_row.times
            )
            line = (
                f"bfloat16 vs float32 (engine, prefix reuse): {speed:.2f}x the speed, max |score difference| "
                f"{diff16:.1e}; {ranking_report(f32, bf16_row.scores)}"
            )
            print(line)
            summary.append(f"{count} candidates: {line}")

    print()
    ok = worst_fp32 <= AGREEMENT_TOL
    print(f"float32 rows: max |score difference| vs the tutorial way {worst_fp32:.1e}")
    print(f"agreement within {AGREEMENT_TOL:g}: {'OK' if ok else 'FAILED'}")
    for line in summary:
        print(f"summary: {line}")
    print(f"at end: {load_line()} (includes this benchmark's own {torch.get_num_threads()} busy threads)")
    print("scores (random weights, meaningless), engine float32: " + ", ".join(f"{s:.4f}" for s in f32[:10]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
