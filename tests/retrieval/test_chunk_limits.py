"""No chunk is longer than a model that embeds it reads (issue 18): chunks are counted in the embedders' own tokens,
title and heading path included, so nothing is dropped silently past all-MiniLM-L6-v2's 256 word pieces. Checked on
the sample knowledge base and on documents built to be hard: long paragraphs without punctuation, a 400-line code
block, big Markdown and HTML tables, Chinese without punctuation, deep headings with very long titles."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from retrieval.chunking import chunk_document, estimate_tokens
from retrieval.documents import Chunk, LoadedDocument
from retrieval.ingest import discover_files
from retrieval.loaders import load_document
from tests.conftest import SAMPLE_KB

WORDS = "single sign on exports billing invoice workspace admin token rotation audit log retention policy".split()
CODE_LINES = [f'    result_{i} = client.fetch(path="/v1/items/{i}", limit={i % 50}, retries=3)' for i in range(400)]
LONG_CODE_LINE = "    payload = " + " + ".join(f"part_{i}" for i in range(400))
CJK = "\u3000-\u303f\u4e00-\u9fff\uff00-\uffef"
CODE = "```python\n" + "\n".join([*CODE_LINES[:200], LONG_CODE_LINE, *CODE_LINES[200:]]) + "\n```"


class ByteReader:
    """A second embedder with a smaller limit and another way of counting (about one token per 4 bytes, as a
    byte-level tokenizer might), to show every configured model's limit is kept."""

    max_tokens = 64

    def count_tokens(self, text: str) -> int:
        return len(text.encode("utf-8")) // 4 + 2


def words(count: int, offset: int = 0) -> str:
    return " ".join(WORDS[(i + offset) % len(WORDS)] for i in range(count))


def hard_markdown() -> str:
    long_heading = "Configuring " + words(120)
    table = ["| Setting | Default | Meaning |", "| --- | --- | --- |"]
    table += [f"| option_{i} | {i * 7} | {words(12, i)} |" for i in range(300)]
    return "\n\n".join(
        [
            "# The administration guide for " + words(150),
            "Intro paragraph. " + words(30) + ".",
            "## " + long_heading,
            words(2500),  # one paragraph, no punctuation at all
            words(600, 3) + ". " + words(900, 5),
            "### Deeper " + words(60),
            "#### Deeper still " + words(60),
            "##### Deepest " + words(60),
            CODE,
            "## Options",
            "\n".join(table),
            "## 中文说明",
            "单点登录配置步骤需要管理员先打开设置页面然后选择身份提供方" * 120,  # no punctuation
        ]
    )


def hard_html() -> str:
    rows = "".join(f"<tr><td>option_{i}</td><td>{i}</td><td>{words(15, i)}</td></tr>" for i in range(300))
    return (
        "<html><head><title>Options reference</title></head><body><main><h1>Options reference</h1>"
        f"<p>{words(40)}.</p><h2>All options</h2><table><tr><th>Name</th><th>Value</th><th>Meaning</th></tr>"
        f"{rows}</table><p>{words(800)}</p></main></body></html>"
    )


@pytest.fixture(scope="module")
def hard_docs(tmp_path_factory: pytest.TempPathFactory) -> list[LoadedDocument]:
    folder = tmp_path_factory.mktemp("hard")
    (folder / "guide.md").write_text(hard_markdown(), encoding="utf-8")
    (folder / "options.html").write_text(hard_html(), encoding="utf-8")
    return [load_document(folder / "guide.md"), load_document(folder / "options.html")]


def sample_docs() -> list[LoadedDocument]:
    return [load_document(path) for path in discover_files(SAMPLE_KB)]


def test_every_chunk_fits_what_the_embedder_reads(embedder, hard_docs: list[LoadedDocument]) -> None:
    assert embedder.max_tokens == 256
    docs = [*sample_docs(), *hard_docs]
    chunks = [chunk for doc in docs for chunk in chunk_document(doc, 300, 40, [embedder])]
    counts = [embedder.count_tokens(chunk.embedding_text()) for chunk in chunks]
    assert max(counts) <= embedder.max_tokens
    assert sum(count > 200 for count in counts) > 50, "chunks still use the room they have"
    # the very long title and headings were cut to leave room for text, and say so
    guide = [chunk for chunk in chunks if chunk.path.endswith("guide.md")]
    assert any(chunk.title.endswith("…") for chunk in guide)
    assert all(embedder.count_tokens(chunk.section) < 128 for chunk in guide)


def test_every_configured_limit_is_kept(embedder, hard_docs: list[LoadedDocument]) -> None:
    small = ByteReader()
    for doc in [*sample_docs(), *hard_docs]:
        for chunk in chunk_document(doc, 300, 40, [embedder, small]):
            assert embedder.count_tokens(chunk.embedding_text()) <= embedder.max_tokens
            assert small.count_tokens(chunk.embedding_text()) <= small.max_tokens, chunk.embedding_text()


def test_chunk_tokens_count_in_the_primary_embedders_tokens(embedder, hard_docs: list[LoadedDocument]) -> None:
    chunks = chunk_document(hard_docs[0], 100, 20, [embedder, ByteReader()])
    assert all(embedder.count_tokens(chunk.text) - 2 <= 100 for chunk in chunks)  # 2: [CLS] and [SEP]


def test_a_long_code_block_is_split_at_line_ends(embedder, hard_docs: list[LoadedDocument]) -> None:
    code_chunks = [
        c for c in chunk_document(hard_docs[0], 300, 40, [embedder]) if "client.fetch" in c.text or "part_" in c.text
    ]
    assert len(code_chunks) > 5
    whole_lines = set(CODE.splitlines())
    cut = []
    for chunk in code_chunks:
        assert embedder.count_tokens(chunk.embedding_text()) <= embedder.max_tokens
        for line in chunk.text.splitlines():
            if line not in whole_lines:
                cut.append(line)
    # only the one line too long for a chunk on its own is cut, and its pieces give it back whole
    assert cut and all(piece.strip() in LONG_CODE_LINE for piece in cut)
    assert " ".join(piece.strip() for piece in cut) == LONG_CODE_LINE.strip()
    # every other line is there, whole, once and in order: no overlap is carried inside code
    kept = [line for chunk in code_chunks for line in chunk.text.splitlines() if line in whole_lines]
    assert kept == [line for line in CODE.splitlines() if line != LONG_CODE_LINE]


def test_a_table_is_split_between_rows(embedder, hard_docs: list[LoadedDocument]) -> None:
    for doc, row in ((hard_docs[0], re.compile(r"^\| option_\d+ \| \d+ \| [a-z ]+ \|$")), (hard_docs[1], None)):
        rows = [line for block in doc.blocks for line in block.text.splitlines() if "option_" in line]
        assert len(rows) == 300
        chunks = [c for c in chunk_document(doc, 300, 40, [embedder]) if "option_" in c.text]
        assert len(chunks) > 3
        lines = [line for chunk in chunks for line in chunk.text.splitlines() if "option_" in line]
        assert lines == rows  # every row whole, in order
        assert row is None or all(row.match(line) for line in lines)


def tokens(text: str) -> Counter[str]:
    """Words, and CJK characters and punctuation one by one (a sentence may end at 。 and the next begin a chunk)."""
    return Counter(re.findall(f"[{CJK}]|[^\\s{CJK}]+", text))


@pytest.mark.parametrize("with_small", [False, True], ids=["minilm", "minilm+64"])
def test_no_text_is_lost(embedder, hard_docs: list[LoadedDocument], with_small: bool) -> None:
    readers = [embedder, ByteReader()] if with_small else [embedder]
    for doc in [*sample_docs(), *hard_docs]:
        chunks: list[Chunk] = chunk_document(doc, 300, 40, readers)
        given = tokens("\n".join(block.text for block in doc.blocks))
        kept = tokens("\n".join(chunk.text for chunk in chunks))
        assert not given - kept, f"{doc.path} lost {list((given - kept).items())[:5]}"


def test_without_an_embedder_chunks_are_sized_by_the_estimate(hard_docs: list[LoadedDocument]) -> None:
    chunks = chunk_document(hard_docs[0], 120, 20)
    assert all(estimate_tokens(chunk.text) <= 120 for chunk in chunks)
    assert not tokens("\n".join(b.text for b in hard_docs[0].blocks)) - tokens("\n".join(c.text for c in chunks))


def test_the_sample_knowledge_base_fits(embedder) -> None:
    """Before issue 18, 38 of its 255 chunks ran past 256 word pieces."""
    chunks = [chunk for doc in sample_docs() for chunk in chunk_document(doc, 300, 40, [embedder])]
    assert chunks and all(embedder.count_tokens(c.embedding_text()) <= embedder.max_tokens for c in chunks)
