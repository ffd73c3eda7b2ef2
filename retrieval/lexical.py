"""The lexical leg: BM25 term weights as a sparse vector, made by Qdrant's own BM25 model (`qdrant_edge.Bm25`).

Qdrant keeps the statistics: the collection's sparse vector has the IDF modifier, so a point stores only the term
frequency part (k=1.2, b=0.75) and the query sends each unique term with weight 1. The same encoder serves the
embedded store and a server, so both index exactly the same terms.

One tokenizer for every text, whatever its language: Qdrant's multilingual tokenizer segments Chinese into words
and English by word boundaries; stop words of both languages are dropped and English words are stemmed. Query and
passage therefore always produce the same terms even when they mix languages ("SAML单点登录配置", a Chinese page
quoting English setting names). A per-text language (Chinese stop words only on Chinese text, stemming only on
English text) was measured against it in `bench/retrieval_eval.py`: see the README's retrieval section.

Numbers are kept: the multilingual tokenizer drops tokens made only of digits ("429", "SAML-401") and splits
"1.2.3" at its dots, yet numbers are exactly what product questions quote: `keep_numbers` rewrites each number
into one term before tokenizing, in passages and questions alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import qdrant_edge as qe

# Stored with each collection: a different value means the stored terms no longer match the query's.
LEXICAL_MODEL = "qdrant-bm25-multilingual-en-zh-v2"

# A number, with the letters glued before it ("v2.3.1", "abc123") and its inner separators ("1.2.3", "10:30").
_NUMBER = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]*)(\d+(?:[.,:]\d+)*)(?![A-Za-z0-9])")
_SEPARATOR = re.compile(r"[.,:]")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_NUMBER_PREFIX = "n"
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")


@dataclass(frozen=True)
class SparseVector:
    """Term ids (Qdrant's token hashes) and their weights, sorted by id."""

    indices: tuple[int, ...]
    values: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.indices)

    @classmethod
    def from_qdrant(cls, vector: qe.SparseVector) -> SparseVector:
        pairs = sorted(zip(vector.indices, vector.values, strict=True))
        return cls(tuple(int(i) for i, _ in pairs), tuple(float(v) for _, v in pairs))


def script_language(text: str) -> str:
    """'chinese' when CJK characters make up most of the letters, else 'english'."""
    cjk = len(_CJK.findall(text))
    latin_words = len(re.findall(r"[A-Za-z]+", text))
    return "chinese" if cjk and cjk >= latin_words else "english"


def keep_numbers(text: str) -> str:
    """Make every number one term the tokenizer keeps: a letter before a bare number ('HTTP 429' -> 'HTTP n429',
    '每分钟600次' -> '每分钟n600次') and no separator inside it ('1.2.3' -> 'n1x2x3', 'v2.3.1' -> 'v2x3x1',
    '1,500' -> 'n1500'), since the tokenizer drops digit-only tokens and splits at dots."""

    def one_term(match: re.Match[str]) -> str:
        letters, number = match.group(1), match.group(2)
        return (letters or _NUMBER_PREFIX) + _SEPARATOR.sub("x", number)

    return _NUMBER.sub(one_term, _THOUSANDS.sub("", text))


def _config(stopwords: set[qe.Language], stem_english: bool) -> qe.Bm25Config:
    return qe.Bm25Config(
        tokenizer=qe.TokenizerType.Multilingual,
        language="english",
        stopwords=qe.StopwordsSet(languages=stopwords),
        stemmer=qe.SnowballParams(qe.SnowballLanguage.English) if stem_english else qe.DisabledStemmer(),
    )


def cjk_bigrams(text: str) -> list[str]:
    """Overlapping pairs of CJK characters, each marked so it never collides with a word token."""
    runs = re.findall(f"(?:{_CJK.pattern})+", text)
    return [f"~{run[i : i + 2]}" for run in runs for i in range(len(run) - 1)]


class LexicalEncoder:
    """Text -> BM25 sparse vector.

    Variants kept for `bench/retrieval_eval.py`'s comparison (the default measured best, README "Retrieval"):
    `per_script` picks stop words and stemming per text by its script; `bigrams` adds CJK character bigrams
    as a second field (its own BM25 term weights, summed with the words')."""

    def __init__(self, per_script: bool = False, bigrams: bool = False) -> None:
        self.per_script = per_script
        self.bigrams = bigrams
        self.name = LEXICAL_MODEL + ("-per-script" if per_script else "") + ("-bigrams" if bigrams else "")
        self._both = qe.Bm25(_config({qe.Language.English, qe.Language.Chinese}, stem_english=True))
        self._english = qe.Bm25(_config({qe.Language.English}, stem_english=True))
        self._chinese = qe.Bm25(_config({qe.Language.Chinese}, stem_english=False))
        self._pairs = qe.Bm25(
            qe.Bm25Config(
                tokenizer=qe.TokenizerType.Whitespace,
                stopwords=qe.StopwordsSet(),
                stemmer=qe.DisabledStemmer(),
                lowercase=False,
            )
        )

    def _model(self, text: str) -> qe.Bm25:
        if not self.per_script:
            return self._both
        return self._chinese if script_language(text) == "chinese" else self._english

    def encode_documents(self, texts: Iterable[str]) -> list[SparseVector]:
        vectors = []
        for text in texts:
            words = self._model(text).embed_document(keep_numbers(text))
            pairs = self._pairs.embed_document(" ".join(cjk_bigrams(text))) if self.bigrams else None
            vectors.append(_merge(words, pairs))
        return vectors

    def encode_query(self, text: str) -> SparseVector:
        words = self._model(text).embed_query(keep_numbers(text))
        pairs = self._pairs.embed_query(" ".join(cjk_bigrams(text))) if self.bigrams else None
        return _merge(words, pairs)


def _merge(words: qe.SparseVector, pairs: qe.SparseVector | None) -> SparseVector:
    if pairs is None or not pairs.indices:
        return SparseVector.from_qdrant(words)
    weights = dict(zip(words.indices, words.values, strict=True))
    for index, value in zip(pairs.indices, pairs.values, strict=True):
        weights[index] = weights.get(index, 0.0) + value
    ordered = sorted(weights.items())
    return SparseVector(tuple(i for i, _ in ordered), tuple(v for _, v in ordered))
