"""The lexical leg: which terms a text becomes (`LexicalEncoder`), the BM25 weights a passage stores, and the
IDF that Qdrant multiplies in at query time (both backends)."""

from __future__ import annotations

import math
import re

import pytest

from retrieval.index import IndexPoint, SearchRequest, point_id
from retrieval.lexical import LEXICAL_MODEL, LexicalEncoder, SparseVector, keep_numbers, script_language

K, B, AVG_LEN = 1.2, 0.75, 256  # Qdrant's BM25 defaults, which ragbot keeps


@pytest.fixture(scope="module")
def encoder() -> LexicalEncoder:
    return LexicalEncoder()


def terms(encoder: LexicalEncoder, text: str) -> set[int]:
    return set(encoder.encode_query(text).indices)


def union(encoder: LexicalEncoder, *texts: str) -> set[int]:
    """The terms of each text encoded alone, together."""
    found: set[int] = set()
    for text in texts:
        single = terms(encoder, text)
        assert len(single) == 1, (text, single)  # each piece is one term on its own
        found |= single
    return found


def tf_weight(tf: int, length: int) -> float:
    """BM25's term-frequency part, the value a passage stores for a term."""
    return tf * (K + 1) / (tf + K * (1 - B + B * length / AVG_LEN))


def qdrant_idf(n_docs: int, with_term: int) -> float:
    return math.log(1 + (n_docs - with_term + 0.5) / (with_term + 0.5))


# -- tokenising ---------------------------------------------------------------------------------------------


def test_english_words_are_stemmed(encoder) -> None:
    run = terms(encoder, "run")
    assert len(run) == 1
    assert terms(encoder, "running") == terms(encoder, "runs") == terms(encoder, "Running") == run
    assert terms(encoder, "invoices") == terms(encoder, "invoice")
    assert terms(encoder, "invoice") != run


def test_english_stop_words_yield_no_terms(encoder) -> None:
    for text in ("the", "how", "How is the", "what are the"):
        assert len(encoder.encode_query(text)) == 0, text
    assert terms(encoder, "How is the running?") == terms(encoder, "run")


def test_chinese_is_segmented_into_words(encoder) -> None:
    sso = terms(encoder, "单点登录")
    assert sso == union(encoder, "单点", "登录") and len(sso) == 2
    assert terms(encoder, "发票专用章") == terms(encoder, "发票") | terms(encoder, "专用章")


def test_chinese_stop_words_are_dropped(encoder) -> None:
    assert len(encoder.encode_query("的")) == 0
    assert terms(encoder, "发票的") == terms(encoder, "我的发票") == terms(encoder, "发票")


def test_mixed_chinese_and_english_use_one_tokenizer(encoder) -> None:
    query = encoder.encode_query("SAML单点登录配置")
    assert set(query.indices) == union(encoder, "saml", "单点", "登录", "配置")
    assert len(query) == 4
    # English inside Chinese text is still stemmed, Chinese stop words inside English text still dropped
    assert terms(encoder, "running的发票") == terms(encoder, "run") | terms(encoder, "发票")


def test_numbers_are_kept(encoder) -> None:
    assert terms(encoder, "HTTP 429") == union(encoder, "http", "429")
    assert terms(encoder, "SAML-401") == union(encoder, "saml", "401")
    assert terms(encoder, "429") != terms(encoder, "401") and terms(encoder, "429") != terms(encoder, "n42")
    assert terms(encoder, "错误码 429") == terms(encoder, "错误码") | terms(encoder, "429")
    assert keep_numbers("HTTP 429") == "HTTP n429"
    assert keep_numbers("SAML-401 after 1.2.3") == "SAML-n401 after n1x2x3"
    assert keep_numbers("API v2") == "API v2"  # digits inside a word are the word's


def test_a_number_is_never_split(encoder) -> None:
    """A number that touches a letter (Latin or CJK) must never get the prefix inside it ('abc1n23', '每分钟6n00次'),
    or the question "600" would no longer match the passage: Chinese writes numbers without spaces."""
    for text in ("abc123", "HTTP429", "v1.2.3", "每分钟600次请求", "错误码429", "第429号"):
        assert not re.search(r"\dn\d", keep_numbers(text)), (text, keep_numbers(text))
    assert terms(encoder, "600") <= terms(encoder, "每分钟600次请求")
    assert terms(encoder, "429") <= terms(encoder, "错误码429")


def test_numbers_with_separators_keep_all_their_digits(encoder) -> None:
    """The tokenizer splits at separators and drops bare digit groups: a dotted or grouped number must still be
    one term of all its digits, and a thousands separator must not matter."""
    for a, b in (("1.2.3", "1.2.4"), ("1,500", "1"), ("2026.11", "2026.09"), ("10,000", "10:30")):
        assert terms(encoder, a) != terms(encoder, b), (a, b)
    assert terms(encoder, "1,500 seats") == terms(encoder, "1500 seats")
    assert terms(encoder, "v2.3.1") != terms(encoder, "v2.3.2")


def test_script_language() -> None:
    assert script_language("SAML单点登录配置") == "chinese"
    assert script_language("发票需要盖什么章？") == "chinese"
    assert script_language("How do I configure SAML with Okta?") == "english"
    assert script_language("Set up SAML SSO for the 中国 region") == "english"  # 2 CJK characters, 7 words
    assert script_language("") == script_language("429") == "english"


def test_per_script_variant_stems_only_english_and_drops_chinese_stop_words_only_in_chinese() -> None:
    per_script = LexicalEncoder(per_script=True)
    assert per_script.name != LexicalEncoder().name  # its terms differ, so a collection records which it holds
    assert terms(per_script, "running") == terms(per_script, "run")
    assert terms(per_script, "的发票") == terms(per_script, "发票")
    assert terms(per_script, "running的发票") != terms(per_script, "run的发票")  # Chinese text: no stemming
    assert len(terms(per_script, "Running 的 setup")) == 3  # English text: 的 is not a stop word there


# -- BM25 weights -------------------------------------------------------------------------------------------


def test_query_terms_weigh_one_each_once(encoder) -> None:
    query = encoder.encode_query("refund refund refunds policy")
    assert set(query.indices) == union(encoder, "refund", "policy")
    assert query.values == (1.0, 1.0)
    assert list(query.indices) == sorted(query.indices)


def test_document_weights_are_bm25_term_frequency_parts(encoder) -> None:
    text = "running running running quickly"  # 4 terms: run x3, quick x1
    [doc] = encoder.encode_documents([text])
    weights = dict(zip(doc.indices, doc.values, strict=True))
    [run] = terms(encoder, "run")
    [quick] = terms(encoder, "quick")
    assert set(weights) == {run, quick}
    assert weights[run] == pytest.approx(3 * 2.2 / (3 + 1.2 * (0.25 + 0.75 * 4 / 256)), rel=1e-6)
    assert weights[run] == pytest.approx(1.99151349, rel=1e-6)
    assert weights[quick] == pytest.approx(tf_weight(1, 4), rel=1e-6)
    # stop words are not counted in the length
    [same] = encoder.encode_documents(["The running, the running and the running: quickly!"])
    assert same == doc


def test_document_weights_on_a_longer_mixed_text(encoder) -> None:
    words = ["refund"] * 3 + ["invoice"] * 2 + ["policy", "card", "bank", "transfer", "发票"]  # 10 terms
    [doc] = encoder.encode_documents([" ".join(words)])
    weights = dict(zip(doc.indices, doc.values, strict=True))
    assert len(weights) == 7
    [refund] = terms(encoder, "refund")
    [invoice] = terms(encoder, "invoice")
    [fapiao] = terms(encoder, "发票")
    assert weights[refund] == pytest.approx(tf_weight(3, 10), rel=1e-6)
    assert weights[invoice] == pytest.approx(tf_weight(2, 10), rel=1e-6)
    assert weights[fapiao] == pytest.approx(tf_weight(1, 10), rel=1e-6)
    assert weights[refund] > weights[invoice] > weights[fapiao]
    # a longer passage weighs the same count less
    [long_doc] = encoder.encode_documents([" ".join(words + [f"word{i}x" for i in range(300)])])
    assert dict(zip(long_doc.indices, long_doc.values, strict=True))[refund] < weights[refund]


def test_empty_text_is_an_empty_vector(encoder) -> None:
    assert len(encoder.encode_query("")) == 0
    assert encoder.encode_documents(["", "the"]) == [SparseVector((), ())] * 2


# -- IDF: Qdrant applies it at query time (the collection's sparse vector has the IDF modifier) ---------------

IDF_DOCS = ["invoice invoice refund", "invoice payment", "refund policy", "payment methods card"]


def test_qdrant_multiplies_in_bm25_idf(index, encoder) -> None:
    index.create_collection("lex", 4, "test-model", LEXICAL_MODEL)
    index.upsert(
        "lex",
        [
            IndexPoint(point_id("doc", i), [1.0, 0.0, 0.0, 0.1 * i + 0.1], {"path": "doc", "n": i}, sparse=sparse)
            for i, sparse in enumerate(encoder.encode_documents(IDF_DOCS))
        ],
    )
    index.finish_writes("lex")

    def scores(question: str) -> dict[int, float]:
        request = SearchRequest("lexical", 10, lexical=encoder.encode_query(question), explain=False)
        return {hit.payload["n"]: hit.score for hit in index.query("lex", request)}

    n = len(IDF_DOCS)
    invoice = qdrant_idf(n, 2)  # in 2 of 4 documents
    assert scores("invoice") == pytest.approx({0: invoice * tf_weight(2, 3), 1: invoice * tf_weight(1, 2)}, rel=1e-5)
    card = qdrant_idf(n, 1)
    assert scores("card") == pytest.approx({3: card * tf_weight(1, 3)}, rel=1e-5)
    assert scores("card")[3] == pytest.approx(2.021095, rel=1e-5)  # ln(1 + 3.5/1.5) * 2.2/(1 + 1.2*(0.25 + 2.25/256))
    # a query's terms add up, each with its own IDF
    both = scores("invoice card")
    assert both == pytest.approx(
        {0: invoice * tf_weight(2, 3), 1: invoice * tf_weight(1, 2), 3: card * tf_weight(1, 3)}, rel=1e-5
    )
    assert list(both) == [3, 0, 1]  # the rarer term wins
    assert scores("unknownword") == {}
