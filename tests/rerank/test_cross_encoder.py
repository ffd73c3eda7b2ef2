"""`CrossEncoderReranker` on a tiny randomly initialised BERT cross-encoder written on the spot (no download).

The reference is a direct transformers forward of the same folder (`BertForSequenceClassification` on the
tokenized pair) followed by a sigmoid: the reranker must agree with it, in input order, in [0, 1]."""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch

from rerank import Reranker, RerankerLoadError
from rerank.cross_encoder import CrossEncoderReranker

TOL = 1e-5

WORDS = (
    "how do i reset my sso password the portal click forgot link we email to you vpn client must be installed "
    "before can reach wiki from home expense reports are due on fifth business day of every month on-call "
    "engineer answers pages within fifteen minutes database backups taken hour and kept for thirty days"
).split()

QUERY = "how do I reset my SSO password?"
DOCS = [
    "Open the portal, click forgot password and follow the link we email to you.",
    "The VPN client must be installed before you can reach the wiki from home.",
    "Expense reports are due on the fifth business day of every month.",
    "",
    "The on-call engineer answers pages within fifteen minutes.",
    "Database backups are taken every hour and kept for thirty days. " * 6,
    "Zebra quixotic 東京 café!",
]


def _vocab() -> list[str]:
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789.,?!'-")
    pieces = [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    words = list(dict.fromkeys(WORDS))
    return special + words + chars + pieces


def write_tiny_bert_cross_encoder(folder: Path, num_labels: int = 1, seed: int = 0) -> Path:
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab_file = folder / "vocab.txt"
    vocab_file.write_text("\n".join(_vocab()) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab=str(vocab_file), do_lower_case=True)
    config = BertConfig(
        vocab_size=len(_vocab()),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=num_labels,
        initializer_range=0.5,  # wider than 0.02 so that random scores spread away from 0.5
        architectures=["BertForSequenceClassification"],
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertForSequenceClassification(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_bert_cross_encoder(tmp_path_factory.mktemp("tiny-bert-ce"))


@pytest.fixture(scope="module")
def reranker(bert_folder: Path) -> CrossEncoderReranker:
    return CrossEncoderReranker(str(bert_folder), device="cpu", max_length=64, batch_size=3)


def direct_scores(folder: Path, query: str, docs: Sequence[str], max_length: int = 64) -> list[float]:
    """One pair per transformers forward, no padding, then the sigmoid of the single logit."""
    from transformers import AutoTokenizer, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = BertForSequenceClassification.from_pretrained(str(folder), dtype=torch.float32).eval()
    out = []
    with torch.inference_mode():
        for doc in docs:
            # Lists, not bare strings: a bare "" as text_pair would be taken for "no second segment".
            enc = tokenizer([query], [doc], truncation="longest_first", max_length=max_length, return_tensors="pt")
            logit = model(**enc).logits[0, 0].float()
            out.append(torch.sigmoid(logit).item())
    return out


def assert_close(got: Sequence[float], want: Sequence[float], tol: float = TOL) -> None:
    assert len(got) == len(want)
    worst = max((abs(g - w) for g, w in zip(got, want, strict=True)), default=0.0)
    assert worst <= tol, f"max |reranker - direct| = {worst:.3g}\nreranker: {list(got)}\ndirect:   {list(want)}"


def test_scores_are_probabilities_and_match_a_direct_forward_with_sigmoid(
    reranker: CrossEncoderReranker, bert_folder: Path
) -> None:
    scores = reranker.score(QUERY, DOCS)
    assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in scores)
    assert len({round(s, 6) for s in scores}) > len(DOCS) // 2, "random weights still give distinct scores"
    assert max(scores) - min(scores) > 0.01, "scores should spread away from 0.5"
    assert_close(scores, direct_scores(bert_folder, QUERY, DOCS))


def test_input_order_is_kept_under_permutation(reranker: CrossEncoderReranker) -> None:
    scores = reranker.score(QUERY, DOCS)
    for seed in (1, 2, 3):
        perm = list(range(len(DOCS)))
        random.Random(seed).shuffle(perm)
        permuted = reranker.score(QUERY, [DOCS[i] for i in perm])
        assert_close(permuted, [scores[i] for i in perm])
    assert_close(reranker.score(QUERY, tuple(DOCS)), scores)


def test_empty_list_and_single_string(reranker: CrossEncoderReranker) -> None:
    assert reranker.score(QUERY, []) == []
    assert reranker.score(QUERY, ()) == []
    with pytest.raises(TypeError):
        reranker.score(QUERY, "one document")  # type: ignore[arg-type]


def test_instruction_is_ignored_by_a_classic_cross_encoder(reranker: CrossEncoderReranker) -> None:
    assert reranker.supports_instruction is False
    plain = reranker.score(QUERY, DOCS[:3])
    assert reranker.score(QUERY, DOCS[:3], instruction="Retrieve Slack threads about passwords") == plain


def test_protocol_name_and_repr(reranker: CrossEncoderReranker, bert_folder: Path) -> None:
    assert isinstance(reranker, Reranker)
    assert reranker.name == str(bert_folder)
    assert reranker.device == "cpu"
    assert "CrossEncoderReranker" in repr(reranker)


def test_long_documents_are_truncated_to_max_length(bert_folder: Path) -> None:
    short = CrossEncoderReranker(str(bert_folder), device="cpu", max_length=24)
    long_doc = "the portal link we email to you " * 40
    assert_close(short.score(QUERY, [long_doc]), direct_scores(bert_folder, QUERY, [long_doc], max_length=24))


def test_two_label_head_uses_the_positive_class_probability(tmp_path: Path) -> None:
    folder = write_tiny_bert_cross_encoder(tmp_path / "two-labels", num_labels=2, seed=1)
    reranker = CrossEncoderReranker(str(folder), device="cpu", max_length=64)
    from transformers import AutoTokenizer, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = BertForSequenceClassification.from_pretrained(str(folder)).eval()
    with torch.inference_mode():
        want = [
            torch.softmax(model(**tokenizer([QUERY], [d], return_tensors="pt")).logits[0].float(), -1)[1].item()
            for d in DOCS[:4]
        ]
    got = reranker.score(QUERY, DOCS[:4])
    assert all(0.0 <= s <= 1.0 for s in got)
    assert_close(got, want)


# -- loading errors ------------------------------------------------------------------------------------


def _assert_clear(err: RerankerLoadError, model: str, caused: bool = True) -> None:
    message = str(err)
    assert model in message
    assert "RERANK_MODEL=" in message and "download" in message
    assert "\n" not in message and len(message) < 600
    assert "Traceback" not in message
    if caused:
        assert err.__cause__ is not None, "the original error is kept as __cause__"


def test_missing_folder_is_a_load_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-cross-encoder")
    with pytest.raises(RerankerLoadError) as info:
        CrossEncoderReranker(missing)
    _assert_clear(info.value, missing)
    assert "no such folder" in str(info.value)


def test_unreachable_hub_id_is_a_load_error() -> None:
    model = "BAAI/bge-reranker-v2-m3-not-in-any-cache"  # HF_HUB_OFFLINE=1 (conftest): nothing is fetched
    with pytest.raises(RerankerLoadError) as info:
        CrossEncoderReranker(model)
    _assert_clear(info.value, model)
    assert f"hf download {model}" in str(info.value)


@pytest.mark.parametrize("case", ["no-config", "no-weights", "garbage-weights", "bare-encoder"])
def test_broken_folders_are_load_errors(bert_folder: Path, tmp_path: Path, case: str) -> None:
    folder = tmp_path / case
    shutil.copytree(bert_folder, folder)
    if case == "no-config":
        (folder / "config.json").unlink()
    elif case == "no-weights":
        (folder / "model.safetensors").unlink()
    elif case == "garbage-weights":
        (folder / "model.safetensors").write_bytes(b"not a safetensors file")
    elif case == "bare-encoder":
        config = json.loads((folder / "config.json").read_text())
        config["architectures"] = ["BertModel"]
        (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(RerankerLoadError) as info:
        CrossEncoderReranker(str(folder))
    _assert_clear(info.value, str(folder), caused=case != "bare-encoder")


def test_cuda_without_cuda_is_a_load_error(bert_folder: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("checks the error on a machine without CUDA")
    with pytest.raises(RerankerLoadError, match="CUDA"):
        CrossEncoderReranker(str(bert_folder), device="cuda")


def test_a_causal_lm_without_a_reranking_template_is_refused(tiny_checkpoint: Path) -> None:
    # The original Qwen3-Reranker layout (no chat template): sentence-transformers would score bare text pairs.
    with pytest.raises(RerankerLoadError, match="RERANK_BACKEND=qwen3") as info:
        CrossEncoderReranker(str(tiny_checkpoint), device="cpu")
    _assert_clear(info.value, str(tiny_checkpoint), caused=False)


def test_a_causal_lm_reranker_with_a_chat_template_takes_the_instruction(
    tiny_checkpoint: Path, tmp_path: Path, make_reranker: Callable[..., Any]
) -> None:
    # The sentence-transformers packaging of Qwen3-Reranker: the same weights plus a reranking chat template.
    from rerank.cross_encoder import QWEN3_RERANKER_CHAT_TEMPLATE

    folder = tmp_path / "qwen3-with-template"
    shutil.copytree(tiny_checkpoint, folder)
    (folder / "chat_template.jinja").write_text(QWEN3_RERANKER_CHAT_TEMPLATE, encoding="utf-8")
    reranker = CrossEncoderReranker(str(folder), device="cpu", max_length=None)
    engine = make_reranker()
    assert reranker.supports_instruction is True
    docs = DOCS[:5]
    assert_close(reranker.score(QUERY, docs), engine.score(QUERY, docs))
    instruction = "Given a question, retrieve the IT runbook passages that answer it"
    assert_close(reranker.score(QUERY, docs, instruction), engine.score(QUERY, docs, instruction))
