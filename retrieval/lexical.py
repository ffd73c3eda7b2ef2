"""The lexical channel: BM25 term weights as a sparse vector, made by Qdrant's own BM25 model (`qdrant_edge.Bm25`).

Qdrant keeps the statistics: the collection's sparse vector has the IDF modifier, so a point stores only the term
frequency part (k=1.2, b=0.75) and the query sends each unique term with weight 1. The same encoder serves the
embedded store and a server, so both index exactly the same terms.

One tokenizer for every text, whatever its language: Qdrant's multilingual tokenizer segments Chinese into words
and English by word boundaries; stop words of both languages are dropped and English words are stemmed. Query and
passage therefore always produce the same terms even when they mix languages ("SAML单点登录配置", a Chinese page
quoting English setting names). A per-text language (Chinese stop words only on Chinese text, stemming only on
English text) was measured against it in `bench/retrieval_eval.py`: see the README's retrieval section.

Numbers are kept: the multilingual tokenizer drops tokens made only of digits ("429", "SAML-401", "1.2.3"),
which are exactly what product questions quote, so digits get a letter prefix before tokenizing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import qdrant_edge as qe

# Stored with each collection: a different value means the stored terms no longer match the query's.
LEXICAL_MODEL = "qdrant-bm25-multilingual-en-zh-v1"

_NUMBER = re.compile(r"(?<![^\W\d_])(\d+(?:[.,:]\d+)*)(?![^\W\d_])")
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
    """Prefix standalone numbers so the tokenizer keeps them: 'HTTP 429' -> 'HTTP n429'."""
    return _NUMBER.sub(lambda m: _NUMBER_PREFIX + m.group(1), text)


def _config(stopwords: set[qe.Language], stem_english: bool) -> qe.Bm25Config:
    return qe.Bm25Config(
        tokenizer=qe.TokenizerType.Multilingual,
        language="english",
        stopwords=qe.StopwordsSet(languages=stopwords),
        stemmer=qe.SnowballParams(qe.SnowballLanguage.English) if stem_english else qe.DisabledStemmer(),
    )


class LexicalEncoder:
    """Text -> BM25 sparse vector. `per_script=True` picks stop words and stemming per text by its script
    (kept for the benchmark's comparison; the default, one tokenizer for all text, measured better)."""

    def __init__(self, per_script: bool = False) -> None:
        self.per_script = per_script
        self.name = LEXICAL_MODEL if not per_script else LEXICAL_MODEL + "-per-script"
        self._both = qe.Bm25(_config({qe.Language.English, qe.Language.Chinese}, stem_english=True))
        self._english = qe.Bm25(_config({qe.Language.English}, stem_english=True))
        self._chinese = qe.Bm25(_config({qe.Language.Chinese}, stem_english=False))

    def _model(self, text: str) -> qe.Bm25:
        if not self.per_script:
            return self._both
        return self._chinese if script_language(text) == "chinese" else self._english

    def encode_documents(self, texts: Iterable[str]) -> list[SparseVector]:
        return [SparseVector.from_qdrant(self._model(t).embed_document(keep_numbers(t))) for t in texts]

    def encode_query(self, text: str) -> SparseVector:
        return SparseVector.from_qdrant(self._model(text).embed_query(keep_numbers(text)))
