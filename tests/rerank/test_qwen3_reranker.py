"""`Qwen3Reranker` against a plain, one-pair-at-a-time implementation of the official recipe.

The reference below is written from the model card, independently of `rerank.qwen3`: its own template
strings, the tokenizer's own truncation, one unpadded forward of the causal LM with full logits, and
log_softmax over [no, yes]. The engine (batched, left-padded, prefix-cached, last position only, yes/no rows
only) must agree with it to 1e-5 in float32 on the tiny random-weight checkpoint."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch

from rerank import DEFAULT_INSTRUCTION, Qwen3Reranker, Reranker, RerankerLoadError

TOL = 1e-5

REF_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
    'Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
REF_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
REF_DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"

QUERY = "How do I reset my SSO password?"
SHORT = "Click Forgot password."
MEDIUM = (
    "Open the single sign-on portal, click 'Forgot password' and follow the link we email to you. "
    "The link expires after thirty minutes; ask the IT help desk if it does not arrive."
)
LONG = " ".join(
    f"Section {i}: the VPN client, the expense policy and the on-call rota are described in the wiki."
    for i in range(40)
)
CHINESE_QUERY = "如何重置单点登录密码？"
CHINESE_DOCS = [
    "打开单点登录门户，点击“忘记密码”，然后按照邮件中的链接操作。",
    "报销单必须在每个月的第五个工作日之前提交。",
    "数据库每小时备份一次，备份保留三十天。" * 12,
]
MIXED_DOCS = [
    "SSO 密码重置: open the portal, 点击“忘记密码”, then follow the email link.",
    "VPN 客户端 must be installed first; 然后 you can reach the wiki. ✅ 🚀",
    "",
    "   ",
    "Tabs\tand\nnewlines\n\n and unicode: café, naïve, Straße, 東京.",
]


class Reference:
    """The official recipe, one document per forward pass, full logits, nothing clever."""

    def __init__(self, folder: Path) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.model = AutoModelForCausalLM.from_pretrained(
            str(folder), dtype=torch.float32, attn_implementation="eager"
        ).eval()
        self.yes = self.tokenizer.convert_tokens_to_ids("yes")
        self.no = self.tokenizer.convert_tokens_to_ids("no")

    def input_ids(self, query: str, doc: str, instruction: str | None, max_length: int = 8192) -> list[int]:
        if instruction is None:
            instruction = REF_DEFAULT_INSTRUCTION
        prefix = self.tokenizer.encode(REF_PREFIX, add_special_tokens=False)
        suffix = self.tokenizer.encode(REF_SUFFIX, add_special_tokens=False)
        body_text = f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}"
        body = self.tokenizer(
            body_text,
            add_special_tokens=False,
            truncation="longest_first",
            max_length=max_length - len(prefix) - len(suffix),
        )["input_ids"]
        return prefix + body + suffix

    @torch.inference_mode()
    def score(self, query: str, doc: str, instruction: str | None = None, max_length: int = 8192) -> float:
        ids = torch.tensor([self.input_ids(query, doc, instruction, max_length)])
        logits = self.model(input_ids=ids).logits[0, -1, :]
        pair = torch.stack([logits[self.no], logits[self.yes]]).to(torch.float32)
        return torch.log_softmax(pair, dim=0)[1].exp().item()

    def scores(self, query: str, docs: Sequence[str], instruction: str | None = None, **kw: Any) -> list[float]:
        return [self.score(query, d, instruction, **kw) for d in docs]


@pytest.fixture(scope="module")
def ref(tiny_checkpoint: Path) -> Reference:
    return Reference(tiny_checkpoint)


def assert_close(got: Sequence[float], want: Sequence[float], tol: float = TOL) -> None:
    assert len(got) == len(want)
    worst = max((abs(g - w) for g, w in zip(got, want, strict=True)), default=0.0)
    assert worst <= tol, f"max |engine - reference| = {worst:.3g}\nengine:    {list(got)}\nreference: {list(want)}"


def spy_batches(reranker: Qwen3Reranker, monkeypatch: pytest.MonkeyPatch) -> tuple[list[list[int]], list[int]]:
    """Records the row lengths and the shared-prefix offset of every forward pass the engine makes."""
    seen: list[list[int]] = []
    offsets: list[int] = []
    real = reranker._forward

    def forward(rows: list[list[int]], cache: Any, offset: int) -> list[float]:
        seen.append([len(r) for r in rows])
        offsets.append(offset)
        return real(rows, cache, offset)

    monkeypatch.setattr(reranker, "_forward", forward)
    return seen, offsets


# -- agreement with the reference ----------------------------------------------------------------------


@pytest.mark.parametrize("prefix_cache", [True, False], ids=["prefix-cache", "no-prefix-cache"])
def test_documents_of_very_different_lengths_in_several_padded_batches(
    make_reranker: Callable[..., Qwen3Reranker],
    ref: Reference,
    monkeypatch: pytest.MonkeyPatch,
    prefix_cache: bool,
) -> None:
    docs = [MEDIUM, SHORT, LONG, MEDIUM[:60], SHORT + " " + MEDIUM, LONG[:900], "ok", LONG[:400]]
    reranker = make_reranker(batch_tokens=1024, max_padding=1.0, prefix_cache=prefix_cache)
    batches, offsets = spy_batches(reranker, monkeypatch)

    got = reranker.score(QUERY, docs)

    assert_close(got, ref.scores(QUERY, docs))
    assert len(batches) > 1, "a small batch_tokens must split the documents into several forward passes"
    assert any(len(set(b)) > 1 for b in batches), "some batch must mix lengths, i.e. carry left padding"
    assert sum(len(b) for b in batches) == len(docs)
    for lengths in batches:
        assert len(lengths) == 1 or max(lengths) * len(lengths) <= 1024
    # With the prefix cache, system prompt + instruction + query run once and every batch starts after them.
    assert all(o > 50 for o in offsets) if prefix_cache else all(o == 0 for o in offsets)


def test_default_batching_matches_reference(reranker: Qwen3Reranker, ref: Reference) -> None:
    docs = [LONG, SHORT, MEDIUM, *CHINESE_DOCS, *MIXED_DOCS]
    assert_close(reranker.score(QUERY, docs), ref.scores(QUERY, docs))


def test_document_longer_than_max_length_keeps_the_suffix(
    make_reranker: Callable[..., Qwen3Reranker], ref: Reference
) -> None:
    max_length = 160  # the template + instruction + query alone take ~135 tiny-tokenizer tokens
    reranker = make_reranker(max_length=max_length, max_padding=1.0)
    docs = [LONG, SHORT, LONG[::-1]]
    ids = reranker.tokenize(QUERY, docs)
    suffix = ref.tokenizer.encode(REF_SUFFIX, add_special_tokens=False)
    prefix = ref.tokenizer.encode(REF_PREFIX, add_special_tokens=False)

    assert len(ref.input_ids(QUERY, LONG, None)) > max_length, "the long document must really be too long"
    assert len(ref.input_ids(QUERY, SHORT, None)) < max_length, "the short one must fit"
    for seq in (ids[0], ids[2]):
        assert len(seq) == max_length
        assert seq[: len(prefix)] == prefix
        assert seq[-len(suffix) :] == suffix
    assert ids[1] == ref.input_ids(QUERY, SHORT, None)
    assert ids[0] == ref.input_ids(QUERY, LONG, None, max_length=max_length)
    assert_close(reranker.score(QUERY, docs), ref.scores(QUERY, docs, max_length=max_length))


@pytest.mark.parametrize("blank", [None, "", "   ", "\n\t"])
def test_missing_or_blank_instruction_means_the_default(
    reranker: Qwen3Reranker, ref: Reference, blank: str | None
) -> None:
    assert DEFAULT_INSTRUCTION == REF_DEFAULT_INSTRUCTION
    docs = [SHORT, MEDIUM]
    got = reranker.score(QUERY, docs, instruction=blank)
    assert_close(got, reranker.score(QUERY, docs, instruction=DEFAULT_INSTRUCTION), tol=0.0)
    assert_close(got, ref.scores(QUERY, docs, REF_DEFAULT_INSTRUCTION))


def test_chinese(reranker: Qwen3Reranker, ref: Reference) -> None:
    instruction = "给定一个问题，检索能回答该问题的内部文档段落"
    assert_close(reranker.score(CHINESE_QUERY, CHINESE_DOCS), ref.scores(CHINESE_QUERY, CHINESE_DOCS))
    assert_close(
        reranker.score(CHINESE_QUERY, CHINESE_DOCS, instruction),
        ref.scores(CHINESE_QUERY, CHINESE_DOCS, instruction),
    )


def test_mixed_languages_empty_and_odd_documents(reranker: Qwen3Reranker, ref: Reference) -> None:
    query = "VPN 怎么装? how do I install it"
    assert_close(reranker.score(query, MIXED_DOCS), ref.scores(query, MIXED_DOCS))


def test_identical_documents_and_a_single_document(reranker: Qwen3Reranker, ref: Reference) -> None:
    # Identical documents share every token: the shared-prefix pass must still leave one token to run.
    same = reranker.score(QUERY, [MEDIUM, MEDIUM, MEDIUM])
    assert same[0] == pytest.approx(same[1], abs=TOL) and same[1] == pytest.approx(same[2], abs=TOL)
    assert_close(same, ref.scores(QUERY, [MEDIUM] * 3))
    assert_close(reranker.score(QUERY, [SHORT]), ref.scores(QUERY, [SHORT]))


# -- contract ------------------------------------------------------------------------------------------


def test_protocol_name_and_device(reranker: Qwen3Reranker, tiny_checkpoint: Path) -> None:
    assert isinstance(reranker, Reranker)
    assert reranker.name == str(tiny_checkpoint)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert reranker.device == expected
    assert reranker.dtype == (torch.float32 if expected == "cpu" else reranker.dtype)


def test_scores_are_probabilities_in_input_order(reranker: Qwen3Reranker) -> None:
    docs = [SHORT, MEDIUM, LONG, *CHINESE_DOCS, *MIXED_DOCS]
    scores = reranker.score(QUERY, docs)
    assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in scores)
    assert len(set(scores)) > len(docs) // 2, "random weights still give distinct scores"

    perm = list(range(len(docs)))
    random.Random(7).shuffle(perm)
    permuted = reranker.score(QUERY, [docs[i] for i in perm])
    assert_close(permuted, [scores[i] for i in perm])
    # A tuple or any other sequence works too.
    assert_close(reranker.score(QUERY, tuple(docs)), scores)


def test_empty_document_list(reranker: Qwen3Reranker) -> None:
    assert reranker.score(QUERY, []) == []
    assert reranker.score(QUERY, ()) == []


def test_a_single_string_is_not_a_document_list(reranker: Qwen3Reranker) -> None:
    with pytest.raises(TypeError):
        reranker.score(QUERY, "one document")  # type: ignore[arg-type]


def test_different_instructions_give_different_scores(reranker: Qwen3Reranker) -> None:
    docs = [SHORT, MEDIUM]
    a = reranker.score(QUERY, docs, "Given a question, retrieve passages from the IT runbooks")
    b = reranker.score(QUERY, docs, "Given a question, retrieve Slack threads that answer it")
    assert all(abs(x - y) > 1e-6 for x, y in zip(a, b, strict=True))


def test_the_full_vocabulary_head_is_never_computed(
    make_reranker: Callable[..., Qwen3Reranker], monkeypatch: pytest.MonkeyPatch
) -> None:
    reranker = make_reranker(batch_tokens=256, max_padding=1.0)
    head_calls: list[tuple[int, ...]] = []
    head = reranker._model.get_output_embeddings()
    handle = head.register_forward_hook(lambda _m, _i, out: head_calls.append(tuple(out.shape)))
    try:
        monkeypatch.setattr(
            type(reranker._model),
            "forward",
            lambda *a, **k: pytest.fail("the causal-LM forward (full logits) must not run"),
        )
        scores = reranker.score(QUERY, [SHORT, MEDIUM, LONG, *CHINESE_DOCS])
    finally:
        handle.remove()
    assert len(scores) == 6
    assert head_calls == [], f"lm_head ran with outputs {head_calls}"


# -- device, warnings, loading errors ------------------------------------------------------------------


def test_cpu_warning_is_emitted_once_per_process(
    tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch, recwarn: pytest.WarningsRecorder
) -> None:
    import rerank.qwen3 as qwen3

    monkeypatch.setattr(qwen3, "_cpu_warned", False)
    Qwen3Reranker(str(tiny_checkpoint), device="cpu")
    Qwen3Reranker(str(tiny_checkpoint), device="cpu")
    messages = [str(w.message) for w in recwarn if "CPU" in str(w.message)]
    assert len(messages) == 1
    assert "RERANK_DEVICE=cuda" in messages[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_asking_for_cuda_without_cuda_is_a_clear_load_error(tiny_checkpoint: Path) -> None:
    with pytest.raises(RerankerLoadError, match="CUDA"):
        Qwen3Reranker(str(tiny_checkpoint), device="cuda")


def _assert_short_clear_error(err: RerankerLoadError, model: str) -> None:
    message = str(err)
    assert model in message
    assert "RERANK_MODEL=" in message and "download" in message
    assert "\n" not in message and len(message) < 500
    assert "Traceback" not in message


def test_missing_folder_is_a_load_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(RerankerLoadError) as info:
        Qwen3Reranker(model=missing)
    _assert_short_clear_error(info.value, missing)
    assert "no such folder" in str(info.value)
    assert info.value.__cause__ is not None


def test_unreachable_hub_id_is_a_load_error() -> None:
    # HF_HUB_OFFLINE=1 (conftest): nothing is fetched, the id is not in the cache.
    model = "Qwen/Qwen3-Reranker-0.6B-not-in-any-cache"
    with pytest.raises(RerankerLoadError) as info:
        Qwen3Reranker(model=model)
    _assert_short_clear_error(info.value, model)
    assert "hf download Qwen/Qwen3-Reranker-0.6B-not-in-any-cache" in str(info.value)
    assert info.value.__cause__ is not None


@pytest.mark.parametrize("case", ["no-config", "no-weights", "bert", "seq-cls", "garbage-weights"])
def test_broken_or_foreign_folders_are_load_errors(tiny_checkpoint: Path, tmp_path: Path, case: str) -> None:
    import shutil

    folder = tmp_path / case
    shutil.copytree(tiny_checkpoint, folder)
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    if case == "no-config":
        config_path.unlink()
    elif case == "no-weights":
        (folder / "model.safetensors").unlink()
    elif case == "bert":
        config["model_type"] = "bert"
        config_path.write_text(json.dumps(config))
    elif case == "seq-cls":
        config["architectures"] = ["Qwen3ForSequenceClassification"]
        config_path.write_text(json.dumps(config))
    elif case == "garbage-weights":
        (folder / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(RerankerLoadError) as info:
        Qwen3Reranker(model=str(folder))
    _assert_short_clear_error(info.value, str(folder))


def test_a_tokenizer_without_yes_no_tokens_is_a_load_error(tiny_checkpoint: Path, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "no-yes"
    shutil.copytree(tiny_checkpoint, folder)
    tok_path = folder / "tokenizer.json"
    tok = json.loads(tok_path.read_text(encoding="utf-8"))
    vocab = tok["model"]["vocab"]
    vocab["yes_renamed"] = vocab.pop("yes")
    tok["model"]["merges"] = [m for m in tok["model"]["merges"] if "yes" not in (*m, "".join(m))]
    tok_path.write_text(json.dumps(tok, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(RerankerLoadError, match="'yes'") as info:
        Qwen3Reranker(model=str(folder))
    _assert_short_clear_error(info.value, str(folder))


def test_batch_plan_respects_the_token_budget(make_reranker: Callable[..., Qwen3Reranker]) -> None:
    reranker = make_reranker(batch_tokens=1000, max_padding=1.0)
    rng = random.Random(3)
    lengths = [rng.randint(1, 700) for _ in range(50)] + [2500]
    batches = reranker._plan_batches(lengths)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        assert batch, "no empty batch"
        padded = max(lengths[i] for i in batch) * len(batch)
        assert len(batch) == 1 or padded <= 1000
    tight = make_reranker(batch_tokens=10**6, max_padding=0.1)._plan_batches(lengths)
    for batch in tight:
        padded = max(lengths[i] for i in batch) * len(batch)
        assert 1 - sum(lengths[i] for i in batch) / padded <= 0.1 + 1e-9
