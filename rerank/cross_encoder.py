"""Classic cross-encoders (e.g. `BAAI/bge-reranker-v2-m3`) through sentence-transformers' `CrossEncoder`.

For machines without a GPU that need speed more than instruction following: a ~0.3-0.6B encoder that reads
query and document together and outputs one relevance logit. Scores come back in input order, each in [0, 1]:

- one-logit heads (the usual rerankers): sigmoid of the raw logit;
- heads with several labels: softmax over the labels, then the probability of the positive one (the label
  named like "relevant" / "positive" / "yes" / "entailment" / "LABEL_1"; for two labels, label 1).

Raw logits are asked from `CrossEncoder.predict` (`activation_fn=Identity`) and the activation is applied here,
in float32: a model's saved configuration may set its own activation (several ship `Identity`, which would
return unbounded logits), so relying on the default would not guarantee [0, 1].

`instruction`: classic cross-encoders have no notion of an instruction, so it is ignored for them. Causal-LM
rerankers that sentence-transformers loads as a CrossEncoder through a reranking chat template (for example
the sentence-transformers packaging of Qwen3-Reranker) get it as their prompt (the template's system turn);
`supports_instruction` says which case a loaded model is.

torch and sentence-transformers are imported lazily, so `import rerank` stays cheap.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rerank.base import RerankerLoadError
from rerank.loading import locate, looks_like_hub_id, short_error
from rerank.truncation import char_budget, longest_token_chars

# A chat template that makes sentence-transformers' CrossEncoder score an original Qwen3-Reranker checkpoint
# with the official recipe (the sentence-transformers packaging of the model ships an equivalent one): the
# system turn carries the instruction (CrossEncoder's `prompt`), the pair's "query" and "document" turns the
# rest. Written as `chat_template.jinja` next to the checkpoint, or passed as
# `CrossEncoder(..., processor_kwargs={"chat_template": QWEN3_RERANKER_CHAT_TEMPLATE})`.
QWEN3_RERANKER_CHAT_TEMPLATE = (
    '{%- set ns = namespace(instruction="Given a web search query, retrieve relevant passages that answer the '
    'query", query="", document="") -%}'
    "{%- for message in messages -%}"
    '{%- set content = message.content if message.content is string else (message.content | map(attribute="text")'
    ' | join("")) -%}'
    '{%- if message.role == "system" -%}{%- set ns.instruction = content -%}'
    '{%- elif message.role == "query" -%}{%- set ns.query = content -%}'
    '{%- elif message.role == "document" -%}{%- set ns.document = content -%}'
    "{%- endif -%}"
    "{%- endfor -%}"
    '{{- "<|im_start|>system\\nJudge whether the Document meets the requirements based on the Query and the Instruct '
    'provided. Note that the answer can only be \\"yes\\" or \\"no\\".<|im_end|>\\n<|im_start|>user\\n" -}}'
    '{{- "<Instruct>: " + ns.instruction + "\\n<Query>: " + ns.query + "\\n<Document>: " + ns.document -}}'
    '{{- "<|im_end|>\\n<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n" -}}'
)

# id2label names that mean "relevant" for a classification head with several labels.
_POSITIVE_LABELS = ("relevant", "positive", "pos", "yes", "true", "entailment", "match", "label_1", "1")


def _load_error(model: str, reason: str, cause: BaseException | None = None) -> RerankerLoadError:
    repo = model if looks_like_hub_id(model) else "BAAI/bge-reranker-v2-m3"
    local = repo.rsplit("/", 1)[-1]
    hint = (
        f"Fix: on a machine with internet run `hf download {repo} --local-dir {local}` "
        f"(or `huggingface-cli download`), copy the folder here, set RERANK_MODEL=/path/to/{local}; "
        "or set RERANK_URL to a /v1/rerank server."
    )
    err = RerankerLoadError(f"Cannot load cross-encoder model {model!r}: {reason}. {hint}")
    err.__cause__ = cause
    return err


def _reason(model: str, exc: BaseException) -> str:
    path = Path(model).expanduser()
    if path.is_dir():
        return f"the folder could not be read as a cross-encoder checkpoint ({short_error(exc, 120)})"
    text = str(exc)
    if "gated" in text.lower() or "401" in text or "403" in text:
        return "the Hugging Face hub refused access (log in with `hf auth login`)"
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return "not a local folder nor in the Hugging Face cache, and HF_HUB_OFFLINE is set"
    if "not a valid model identifier" in text or "RepositoryNotFound" in type(exc).__name__:
        return "no such folder, and no such model on the Hugging Face hub"
    if isinstance(exc, OSError):
        return "not a local folder nor in the Hugging Face cache, and the hub could not be reached"
    return short_error(exc, 120)


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
            f"Cannot load cross-encoder model {model!r} on {device!r}: torch {torch.__version__} sees no CUDA "
            "GPU. Install a CUDA build of torch on a machine with an NVIDIA GPU, or set RERANK_DEVICE=cpu."
        )
    return str(dev)


def _positive_label(model: str, id2label: dict[Any, Any], num_labels: int) -> int:
    names = {int(i): str(name).strip().lower() for i, name in (id2label or {}).items()}
    for wanted in _POSITIVE_LABELS:
        for index, name in sorted(names.items()):
            if name == wanted and 0 <= index < num_labels:
                return index
    if num_labels == 2:
        return 1
    raise _load_error(
        model,
        f"its classification head has {num_labels} labels ({sorted(names.values())}) and none of them names "
        "the relevant class",
    )


class CrossEncoderReranker:
    """A sentence-transformers `CrossEncoder` behind the `Reranker` protocol.

    `model`: Hugging Face id or local folder. `device`: "auto" (CUDA when available, else CPU), "cpu", "cuda".
    `max_length`: token limit of one query + document pair (longer pairs are truncated; None: the model's
    own limit); a long document is cut by characters before it is tokenized (`rerank.truncation`), so it costs
    what `max_length` tokens cost. `batch_size`: pairs per forward pass. Raises `RerankerLoadError` (one short
    message naming the model, the original error as `__cause__`) when the model cannot be loaded.

    `score(query, documents, instruction=None)`: probabilities in [0, 1], in input order. `instruction` is
    ignored by classic cross-encoders (see the module docstring); `supports_instruction` is True only for
    causal-LM rerankers loaded through a chat template, which receive it as their prompt.
    """

    def __init__(self, model: str, device: str = "auto", max_length: int | None = 512, batch_size: int = 32) -> None:
        if max_length is not None and int(max_length) < 8:
            raise ValueError(f"max_length must be None or at least 8, not {max_length!r}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size!r}")
        self.name = model
        self.max_length = None if max_length is None else int(max_length)
        self.batch_size = int(batch_size)
        location = locate(model, _load_error)  # before torch: a model that cannot be had fails in seconds
        self.device = _resolve_device(model, device)
        self._lock = threading.Lock()
        self._model = self._load(model, location)
        self.num_labels = int(self._model.num_labels)
        self._max_document_chars = self._document_char_budget()
        self.supports_instruction = self._is_chat_reranker()
        self._positive = 0
        if self.num_labels > 1:
            config = getattr(self._model, "config", None)
            self._positive = _positive_label(model, getattr(config, "id2label", {}) or {}, self.num_labels)
        # One tiny pair: fails now (not on the first question) if the model cannot score pairs, e.g. a causal
        # LM whose chat template cannot carry a query and a document; on a GPU it also selects the kernels.
        try:
            self.score("warm-up", ["warm-up"])
        except Exception as exc:
            raise _load_error(model, f"scoring a test pair failed ({short_error(exc, 200)})", exc) from exc

    def _load(self, model: str, location: str) -> Any:
        """The CrossEncoder of `model` (the name errors show), read from `location` (`locate`)."""
        try:
            from sentence_transformers import CrossEncoder
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise _load_error(
                model, "sentence-transformers is not installed (pip install sentence-transformers)", exc
            ) from exc

        kwargs: dict[str, Any] = {"device": self.device}
        if self.max_length is not None:
            kwargs["max_length"] = self.max_length
        try:
            encoder = CrossEncoder(location, **kwargs)
        except Exception as exc:
            raise _load_error(model, _reason(location, exc), exc) from exc
        encoder.eval()
        causal = self._causal_lm_modules(encoder)
        architectures = list(getattr(getattr(encoder, "config", None), "architectures", None) or [])
        if not causal and architectures and not any(a.endswith("ForSequenceClassification") for a in architectures):
            # e.g. a bare BertModel / ...ForMaskedLM: sentence-transformers would add a randomly initialised
            # classification head, and its scores would mean nothing.
            raise _load_error(
                model,
                f"it is a {architectures[0]} checkpoint without a trained classification head (not a cross-encoder)",
            )
        if causal and not self._has_message_modality(encoder):
            raise _load_error(
                model,
                "it is a causal language model without a reranking chat template, so sentence-transformers "
                "would score plain text pairs without the model's prompt format (wrong scores). For an original "
                "Qwen3-Reranker checkpoint use RERANK_BACKEND=qwen3",
            )
        return encoder

    def _document_char_budget(self) -> int | None:
        """Characters of a document worth tokenizing: past `char_budget(max_length)` a pair is truncated
        anyway, and the tokenizer would read the whole document first (None: no length limit or no vocabulary
        to bound a token by, documents are passed whole)."""
        limit = self.max_length or getattr(self._model, "max_seq_length", None)
        tokenizer = getattr(self._model, "tokenizer", None)
        if not limit or tokenizer is None or not callable(getattr(tokenizer, "get_vocab", None)):
            return None
        return char_budget(int(limit), longest_token_chars(tokenizer))

    @staticmethod
    def _causal_lm_modules(encoder: Any) -> bool:
        return any(type(module).__name__ == "LogitScore" for module in encoder)

    @staticmethod
    def _has_message_modality(encoder: Any) -> bool:
        first = encoder[0] if len(encoder) else None
        modalities = getattr(first, "modality_config", None) or {}
        return "message" in modalities

    def _is_chat_reranker(self) -> bool:
        return self._causal_lm_modules(self._model) and self._has_message_modality(self._model)

    def score(self, query: str, documents: Sequence[str], instruction: str | None = None) -> list[float]:
        """Relevance of each document to the query, in input order, each in [0, 1].

        `instruction` is ignored by classic cross-encoders; chat-template rerankers get it as their prompt
        (None or blank: the model's default)."""
        import torch

        if isinstance(documents, str):
            raise TypeError("documents must be a sequence of strings, not a single string")
        docs = list(documents)
        if not docs:
            return []
        kwargs: dict[str, Any] = {}
        if self.supports_instruction and instruction and instruction.strip():
            kwargs["prompt"] = instruction
        cut = self._max_document_chars
        pairs = [(query, doc if cut is None else doc[:cut]) for doc in docs]  # tokenizing costs max_length, not size
        with self._lock:  # predict toggles eval()/devices on the shared module; one call at a time
            raw = self._model.predict(
                pairs,
                batch_size=self.batch_size,
                show_progress_bar=False,
                activation_fn=torch.nn.Identity(),
                convert_to_tensor=True,
                **kwargs,
            )
        logits = raw.detach().to("cpu", torch.float32)
        if self.num_labels == 1:
            probs = torch.sigmoid(logits.reshape(len(docs), -1)[:, 0])
        else:
            probs = torch.softmax(logits.reshape(len(docs), self.num_labels), dim=-1)[:, self._positive]
        return [float(p) for p in probs.clamp(0.0, 1.0).tolist()]

    def __repr__(self) -> str:
        return f"CrossEncoderReranker(model={self.name!r}, device={self.device!r}, max_length={self.max_length})"
