"""In-process Qwen3-Reranker: the official yes/no recipe, batched, last position only.

The reranker is a causal LM asked whether a document meets the query; score = P("yes") against "no" at the
last position. This engine keeps the recipe's exact token sequences (prefix / truncated body / suffix, left
padding) and makes it cheap:

- length-sorted batches under a token budget, one forward pass per batch;
- only the last position's hidden state is projected, and only onto the "yes" and "no" rows of the LM head
  (never 151,669 logits at every position);
- the token prefix all documents share (system prompt + instruction + query) runs once; its key/value cache
  is reused by every batch.

torch and transformers are imported lazily, so `import rerank` stays cheap for the other backends.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rerank.base import DEFAULT_INSTRUCTION, RerankerLoadError
from rerank.loading import locate, looks_like_hub_id, short_error
from rerank.truncation import SLACK_TOKENS, char_budget, longest_token_chars

if TYPE_CHECKING:
    import torch

DEFAULT_MODEL = "Qwen/Qwen3-Reranker-0.6B"

PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
    'Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"

# Below this many shared tokens a separate prefix pass is not worth its overhead.
_MIN_SHARED_PREFIX = 16

# A long document is first cut to this many characters per token of room (prose takes about 4, CJK 1-2);
# only documents that yield too few tokens are read further.
_CHARS_PER_TOKEN_GUESS = 6
# Characters per tokenizer call: bounds the tokenizer's transient memory for a request of many documents.
_CHARS_PER_TOKENIZER_CALL = 1 << 18

_CPU_WARNING = (
    "Qwen3Reranker is running on the CPU, which is slow (seconds per question for a few dozen passages). "
    "For speed run it on a GPU: set RERANK_DEVICE=cuda on a machine with a CUDA build of torch, "
    "or use a remote reranker service."
)
_cpu_warned = False
_cpu_warned_lock = threading.Lock()


def _warn_cpu_once() -> None:
    global _cpu_warned
    with _cpu_warned_lock:
        if _cpu_warned:
            return
        _cpu_warned = True
    warnings.warn(_CPU_WARNING, RuntimeWarning, stacklevel=3)


def format_body(instruction: str, query: str, document: str) -> str:
    """The user-turn body of the official template (the part that gets truncated)."""
    return f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}"


def effective_instruction(instruction: str | None) -> str:
    """None, empty or blank instructions fall back to the model card's default."""
    return instruction if instruction and instruction.strip() else DEFAULT_INSTRUCTION


def _fix_hint(model: str, suggest_default: bool = False) -> str:
    repo = model if looks_like_hub_id(model) and not suggest_default else DEFAULT_MODEL
    local = repo.rsplit("/", 1)[-1]
    return (
        f"Fix: on a machine with internet run `hf download {repo} --local-dir {local}` "
        f"(or `huggingface-cli download`), copy the folder here, set RERANK_MODEL=/path/to/{local}; "
        "or set RERANK_URL to a /v1/rerank server."
    )


def _load_error(
    model: str, reason: str, cause: BaseException | None = None, *, suggest_default: bool = False
) -> RerankerLoadError:
    hint = _fix_hint(model, suggest_default)
    err = RerankerLoadError(f"Cannot load reranker model {model!r}: {reason}. {hint}")
    err.__cause__ = cause
    return err


def _resolve_device(model: str, device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise _load_error(model, f"invalid device {device!r}", exc) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RerankerLoadError(
            f"Cannot load reranker model {model!r} on {device!r}: torch {torch.__version__} sees no CUDA GPU. "
            "Install a CUDA build of torch on a machine with an NVIDIA GPU, or set RERANK_DEVICE=cpu."
        )
    return str(dev)


def cpu_bf16_support() -> str | None:
    """The bfloat16 matrix instructions of this CPU ("amx_bf16, avx512_bf16"), or None when it has none.

    Without them torch emulates bfloat16 matrix products on the CPU, which is slower than float32. Asks torch
    first (x86 builds expose the checks it dispatches on), then /proc/cpuinfo."""
    import torch

    found: list[str] = []
    cpu = getattr(torch, "cpu", None)
    for flag, check in (("amx_bf16", "_is_amx_tile_supported"), ("avx512_bf16", "_is_avx512_bf16_supported")):
        fn = getattr(cpu, check, None)
        try:
            if fn is not None and fn():
                found.append(flag)
        except Exception:  # pragma: no cover - a build without the check
            pass
    if not found:
        try:
            text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        flags: set[str] = set()
        for line in text.splitlines():
            if line.startswith("flags"):
                flags.update(line.split(":", 1)[1].split())
                break
        found = [f for f in ("amx_bf16", "avx512_bf16") if f in flags]
    return ", ".join(found) or None


def _resolve_dtype(dtype: str, device: str) -> torch.dtype:
    import torch

    if dtype == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        # float32 on the CPU, even where bfloat16 matrix instructions make it faster: bfloat16 can swap
        # near-tied documents (see the class docstring).
        return torch.float32
    names = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
        "float16": torch.float16,
        "fp16": torch.float16,
    }
    if dtype not in names:
        raise ValueError(f"dtype must be 'auto' or one of {sorted(names)}, not {dtype!r}")
    return names[dtype]


class Qwen3Reranker:
    """Qwen3-Reranker (0.6B/4B/8B, original causal-LM checkpoints) scored in-process with torch.

    `model` is a Hugging Face id or a local folder. Scores come back in input order, each in [0, 1].
    Raises `RerankerLoadError` (one short message, the original error as `__cause__`) if it cannot load.

    `dtype`: "auto" is bfloat16 on a GPU (float16 where it has no bfloat16) and float32 on the CPU; "float32",
    "bfloat16" or "float16" force one. The two "yes"/"no" logits are always computed in float32.
    On a CPU with bfloat16 matrix instructions (`cpu_bf16_support()`: AMX or AVX512-BF16), dtype="bfloat16"
    (RERANK_DTYPE=bfloat16) is much faster than float32 (`bench/rerank_bench.py` measures it; README,
    "Configuration") but not the CPU default: its scores differ from float32's in the third decimal, enough
    to swap near-tied documents. Without those instructions bfloat16 is emulated and slower than float32 (a
    warning says so).
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        device: str = "auto",
        dtype: str = "auto",
        max_length: int = 8192,
        batch_tokens: int = 16384,
        *,
        prefix_cache: bool = True,
        max_padding: float | None = None,
    ) -> None:
        self.name = model
        location = locate(model, _load_error)  # before torch: a model that cannot be had fails in seconds
        import torch

        self.max_length = int(max_length)
        self.batch_tokens = int(batch_tokens)
        self.prefix_cache = prefix_cache
        self.device = _resolve_device(model, device)
        # Share of padding a batch may carry before it is split. On a CPU padded batches are slower than one
        # document per pass (bench/rerank_bench.py), so only equal lengths share a pass there; on a GPU larger
        # batches are worth some padding.
        self.max_padding = max_padding if max_padding is not None else (0.0 if self.device == "cpu" else 0.3)
        self.dtype = _resolve_dtype(dtype, self.device)
        if self.device == "cpu" and self.dtype == torch.bfloat16 and cpu_bf16_support() is None:
            warnings.warn(
                "dtype=bfloat16 on a CPU without bfloat16 matrix instructions (AMX / AVX512-BF16): torch emulates "
                "them, which is slower than float32. Use dtype='float32' (RERANK_DTYPE=float32) on this machine.",
                RuntimeWarning,
                stacklevel=2,
            )
        self._tokenizer, self._model = self._load(model, location)
        tok = self._tokenizer

        yes_id = tok.convert_tokens_to_ids("yes")
        no_id = tok.convert_tokens_to_ids("no")
        vocab_rows = self._model.get_output_embeddings().weight.shape[0]
        for token, tid in (("yes", yes_id), ("no", no_id)):
            if not isinstance(tid, int) or tid == tok.unk_token_id or not 0 <= tid < vocab_rows:
                raise _load_error(
                    model,
                    f"its tokenizer has no single {token!r} token (not a Qwen3 reranker)",
                    suggest_default=True,
                )
        self.yes_id, self.no_id = yes_id, no_id
        for token in ("<|im_start|>", "<|im_end|>"):
            if len(tok.encode(token, add_special_tokens=False)) != 1:
                raise _load_error(
                    model, f"its tokenizer has no {token} token (not a Qwen chat model)", suggest_default=True
                )

        pad_id = tok.pad_token_id
        if pad_id is None:
            # Qwen's pad is <|endoftext|>; converted checkpoints sometimes lose it.
            pad_id = tok.convert_tokens_to_ids("<|endoftext|>")
            if not isinstance(pad_id, int) or pad_id == tok.unk_token_id:
                pad_id = tok.eos_token_id
        if pad_id is None:
            raise _load_error(model, "its tokenizer has no pad, <|endoftext|> or eos token")
        self.pad_id = int(pad_id)

        self._longest_token = longest_token_chars(tok)
        self.prefix_ids: list[int] = tok.encode(PREFIX, add_special_tokens=False)
        self.suffix_ids: list[int] = tok.encode(SUFFIX, add_special_tokens=False)
        if self.max_length <= len(self.prefix_ids) + len(self.suffix_ids):
            raise ValueError(
                f"max_length={self.max_length} leaves no room for the document: the template alone takes "
                f"{len(self.prefix_ids) + len(self.suffix_ids)} tokens"
            )

        self._base = self._model.get_decoder() if hasattr(self._model, "get_decoder") else self._model.model
        head = self._model.get_output_embeddings()
        with torch.no_grad():
            rows = head.weight[[yes_id, no_id]].detach().to(self.device, torch.float32)
            # score = sigmoid(logit_yes - logit_no) = sigmoid(h . (W_yes - W_no) + (b_yes - b_no))
            self._w_diff = (rows[0] - rows[1]).contiguous()
            bias = getattr(head, "bias", None)
            self._b_diff = float(bias[yes_id] - bias[no_id]) if bias is not None else 0.0

        if self.device.startswith("cuda"):
            self.score("warm-up", ["warm-up"])  # kernel selection happens here, not on the first question
        elif self.device == "cpu":
            _warn_cpu_once()

    # -- loading -----------------------------------------------------------------------------------------

    def _load(self, model: str, location: str) -> tuple[Any, Any]:
        """The tokenizer and model of `model` (the name errors show), read from `location` (`locate`)."""
        import transformers
        from packaging.version import Version
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        try:
            config = AutoConfig.from_pretrained(location)
        except Exception as exc:
            raise _load_error(model, self._hub_reason(location, exc), exc) from exc
        model_type = getattr(config, "model_type", None)
        if model_type != "qwen3":
            raise _load_error(
                model, f"model_type is {model_type!r}, not a Qwen3 reranker ('qwen3')", suggest_default=True
            )
        architectures = getattr(config, "architectures", None) or []
        if architectures and not any(a.endswith("ForCausalLM") for a in architectures):
            raise _load_error(
                model,
                f"it is a {architectures[0]} conversion; this engine needs the original causal-LM "
                "Qwen3-Reranker checkpoint",
                suggest_default=True,
            )

        dtype_kw = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"
        kwargs: dict[str, Any] = {dtype_kw: self.dtype, "output_loading_info": True}
        try:
            tokenizer = AutoTokenizer.from_pretrained(location, padding_side="left")
            try:
                lm, info = AutoModelForCausalLM.from_pretrained(location, attn_implementation="sdpa", **kwargs)
            except (ValueError, ImportError):  # a build without SDPA support for this model
                lm, info = AutoModelForCausalLM.from_pretrained(location, **kwargs)
        except Exception as exc:
            raise _load_error(model, self._hub_reason(location, exc), exc) from exc
        missing = list(info.get("missing_keys") or [])
        if missing:
            raise _load_error(model, f"the checkpoint lacks {len(missing)} weights (e.g. {missing[0]})")
        tokenizer.padding_side = "left"
        tokenizer.model_max_length = 1 << 30  # we truncate ourselves; silence "sequence too long" warnings
        try:
            lm = lm.to(self.device).eval()
        except Exception as exc:  # e.g. out of GPU memory
            raise _load_error(model, f"moving it to {self.device} failed ({short_error(exc)})", exc) from exc
        return tokenizer, lm

    @staticmethod
    def _hub_reason(model: str, exc: BaseException) -> str:
        if Path(model).expanduser().is_dir():
            return f"the folder could not be read as a checkpoint ({short_error(exc, 120)})"
        text = str(exc)
        if "not a valid model identifier" in text or "RepositoryNotFound" in type(exc).__name__:
            return "no such folder, and no such model on the Hugging Face hub"
        if "gated" in text.lower() or "401" in text or "403" in text:
            return "the Hugging Face hub refused access (log in with `hf auth login`)"
        if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
            return "not a local folder nor in the Hugging Face cache, and HF_HUB_OFFLINE is set"
        if isinstance(exc, OSError):
            return "not a local folder nor in the Hugging Face cache, and the hub could not be reached"
        return short_error(exc, 120)

    # -- scoring -----------------------------------------------------------------------------------------

    def tokenize(self, query: str, documents: Sequence[str], instruction: str | None = None) -> list[list[int]]:
        """The exact token ids scored for each document: prefix + body (truncated) + suffix.

        The body is truncated to the room the template leaves in `max_length`. A long document is cut by
        characters before it is tokenized (a few characters per token of room first, more only where that
        yields too few tokens, never more than `rerank.truncation.char_budget`), so what it costs follows
        `max_length`, not its size; the tokens kept are the ones the whole document would give."""
        if isinstance(documents, str):
            raise TypeError("documents must be a sequence of strings, not a single string")
        inst = effective_instruction(instruction)
        room = self.max_length - len(self.prefix_ids) - len(self.suffix_ids)
        wanted = room + SLACK_TOKENS  # tokens that prove a cut document kept its first `room`
        budget = char_budget(room, self._longest_token)
        bodies: list[list[int]] = [[] for _ in documents]
        todo = list(range(len(documents)))
        chars = min(wanted * _CHARS_PER_TOKEN_GUESS, budget)
        while todo:
            encoded = self._encode([format_body(inst, query, documents[i][:chars]) for i in todo])
            short = []
            for i, ids in zip(todo, encoded, strict=True):
                if len(documents[i]) <= chars or len(ids) > wanted or chars >= budget:
                    bodies[i] = list(ids[:room])
                else:  # cut, and too few tokens to know the first `room` are final: read more
                    short.append(i)
            todo, chars = short, min(chars * 4, budget)
        return [self.prefix_ids + body + self.suffix_ids for body in bodies]

    def _encode(self, texts: list[str]) -> list[list[int]]:
        """Token ids of `texts`, a bounded number of characters per tokenizer call (its transient memory is a
        few hundred bytes per character)."""
        out: list[list[int]] = []
        start = 0
        while start < len(texts):
            end, size = start, 0
            while end < len(texts) and (end == start or size + len(texts[end]) <= _CHARS_PER_TOKENIZER_CALL):
                size += len(texts[end])
                end += 1
            batch = self._tokenizer(texts[start:end], add_special_tokens=False, return_attention_mask=False)
            out.extend(batch["input_ids"])
            start = end
        return out

    def score(self, query: str, documents: Sequence[str], instruction: str | None = None) -> list[float]:
        """Relevance of each document to the query, in input order, each in [0, 1]."""
        import torch

        sequences = self.tokenize(query, documents, instruction)
        if not sequences:
            return []
        with torch.inference_mode():
            return self.score_token_ids(sequences)

    def score_token_ids(self, sequences: Sequence[Sequence[int]]) -> list[float]:
        """Score already-templated token sequences (see `tokenize`), in input order."""
        import torch

        n = len(sequences)
        if n == 0:
            return []
        shared = self._shared_prefix_len(sequences) if self.prefix_cache and n > 1 else 0
        cache = self._prefix_kv(sequences[0][:shared]) if shared >= _MIN_SHARED_PREFIX else None
        if cache is None:
            shared = 0
        tails = [list(seq[shared:]) for seq in sequences]
        out = [0.0] * n
        with torch.inference_mode():
            for batch in self._plan_batches([len(t) for t in tails]):
                scores = self._forward([tails[i] for i in batch], cache, shared)
                for i, s in zip(batch, scores, strict=True):
                    out[i] = s
        return out

    @staticmethod
    def _shared_prefix_len(sequences: Sequence[Sequence[int]]) -> int:
        first = sequences[0]
        shared = min(len(s) for s in sequences) - 1  # every sequence keeps at least one token to run
        for seq in sequences[1:]:
            k = 0
            limit = min(shared, len(seq))
            while k < limit and seq[k] == first[k]:
                k += 1
            shared = k
            if shared == 0:
                break
        return max(shared, 0)

    def _plan_batches(self, lengths: Sequence[int]) -> list[list[int]]:
        """Longest first; a batch closes when padded length x size would pass the token budget, or when its
        padding would pass `max_padding` of it. At least one document per batch."""
        order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
        batches: list[list[int]] = []
        current: list[int] = []
        longest = real = 0
        for i in order:
            length = lengths[i]
            if current:
                area = longest * (len(current) + 1)
                if area > self.batch_tokens or 1 - (real + length) / area > self.max_padding:
                    batches.append(current)
                    current, longest, real = [], 0, 0
            if not current:
                longest = length
            current.append(i)
            real += length
        if current:
            batches.append(current)
        return batches

    def _prefix_kv(self, prefix: Sequence[int]) -> Any:
        import torch

        ids = torch.tensor([list(prefix)], dtype=torch.long, device=self.device)
        out = self._base(input_ids=ids, use_cache=True)
        return out.past_key_values

    def _forward(self, rows: list[list[int]], cache: Any, offset: int) -> list[float]:
        import torch

        batch, width = len(rows), max(len(r) for r in rows)
        input_ids = torch.full((batch, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((batch, width), dtype=torch.long)
        for j, row in enumerate(rows):
            input_ids[j, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[j, width - len(row) :] = 1
        # Left padding: real tokens get the positions they would have unpadded, so a padded row scores
        # exactly as it would alone.
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0) + offset
        kwargs: dict[str, Any] = {"use_cache": False}
        if cache is not None:
            # The prefix cache is used in place, not copied: the forward appends this batch's keys/values
            # (a new tensor per layer, the prefix tensors are never written), and `_restore_prefix` cuts them
            # off again afterwards. A deep copy per batch would copy the whole prefix cache per document.
            if batch > 1:
                cache.batch_repeat_interleave(batch)
            mask = torch.cat([torch.ones((batch, offset), dtype=torch.long), mask], dim=1)
            kwargs = {"use_cache": True, "past_key_values": cache}
        try:
            hidden = self._base(
                input_ids=input_ids.to(self.device),
                attention_mask=mask.to(self.device),
                position_ids=position_ids.to(self.device),
                **kwargs,
            ).last_hidden_state[:, -1, :]
        finally:
            if cache is not None:
                self._restore_prefix(cache, offset, batch)
        logit_diff = hidden.to(torch.float32) @ self._w_diff + self._b_diff
        return torch.sigmoid(logit_diff).tolist()

    def _restore_prefix(self, cache: Any, offset: int, batch: int) -> None:
        """Back to the prefix alone, batch 1: drop the tokens a batch appended and its repeated rows (all copies
        of row 0). The values left are the prefix's own, bit for bit."""
        import torch

        extra = cache.get_seq_length() - offset
        if extra > 0:
            cache.crop(-extra)  # negative: "remove this many" (transformers 4.x and 5.x alike)
        if batch > 1:
            cache.batch_select_indices(torch.tensor([0], device=self.device))
        if cache.get_seq_length() != offset:  # pragma: no cover - a cache class that cannot crop
            raise RuntimeError(f"prefix cache holds {cache.get_seq_length()} tokens after a batch, not {offset}")

    def __repr__(self) -> str:
        return f"Qwen3Reranker(model={self.name!r}, device={self.device!r}, dtype={self.dtype})"
