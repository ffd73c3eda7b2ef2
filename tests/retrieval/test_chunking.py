import itertools

from retrieval.chunking import chunk_document, estimate_tokens, split_sentences
from retrieval.documents import Block, LoadedDocument


def doc(*blocks: Block) -> LoadedDocument:
    return LoadedDocument(path="/kb/x.md", title="Title", source="https://docs.example/x", blocks=list(blocks))


def test_token_estimate_counts_cjk_characters_and_words() -> None:
    assert estimate_tokens("单点登录") == 4
    assert estimate_tokens("one two three") == 4  # 3 words x 1.3, rounded up
    assert estimate_tokens("SAML单点登录配置") == 8  # "SAML" -> ceil(1.3) = 2, plus 6 characters


def test_sentences_split_on_chinese_and_english_punctuation() -> None:
    assert split_sentences("需要企业版。请先配置！然后测试；好吗？Done. Next? yes") == [
        "需要企业版。",
        "请先配置！",
        "然后测试；",
        "好吗？",
        "Done.",
        "Next?",
        "yes",
    ]
    assert split_sentences("Version 2.5 is out. See v2.5.1") == ["Version 2.5 is out.", "See v2.5.1"]
    assert split_sentences("Call /v2/count?status=open;now! Done") == ["Call /v2/count?status=open;now!", "Done"]


def test_chunks_respect_headings_and_keep_metadata() -> None:
    chunks = chunk_document(doc(Block(("SSO",), "Short one."), Block(("Billing", "Invoices"), "Short two.")), 100, 10)
    assert [(c.section, c.text, c.chunk_index) for c in chunks] == [
        ("SSO", "Short one.", 0),
        ("Billing > Invoices", "Short two.", 1),
    ]
    first = chunks[0]
    assert (first.title, first.source, first.path) == ("Title", "https://docs.example/x", "/kb/x.md")
    assert len(first.doc_id) == 16 and first.doc_id == chunks[1].doc_id
    assert first.content_hash != chunks[1].content_hash


def test_paragraphs_of_one_section_are_packed_together() -> None:
    chunks = chunk_document(doc(Block(("A",), "Para one."), Block(("A",), "Para two.")), 100, 10)
    assert [c.text for c in chunks] == ["Para one.\nPara two."]


def test_long_chinese_text_is_split_at_sentence_ends_within_budget_with_overlap() -> None:
    sentences = [f"第{i}句说明单点登录的配置步骤。" for i in range(60)]
    chunks = chunk_document(doc(Block(("配置",), "".join(sentences))), max_tokens=80, overlap_tokens=20)
    assert len(chunks) > 5
    for chunk in chunks:
        assert estimate_tokens(chunk.text) <= 80
        assert chunk.text.endswith("。")  # never cut mid-sentence
        assert " " not in chunk.text  # Chinese sentences are joined without spaces
    # consecutive chunks share the previous chunk's last sentence (overlap)
    for before, after in itertools.pairwise(chunks):
        assert after.text.startswith(split_sentences(before.text)[-1])
    # nothing is lost: every sentence appears in some chunk
    joined = "".join(c.text for c in chunks)
    assert all(s in joined for s in sentences)


def test_a_sentence_longer_than_the_budget_is_hard_split() -> None:
    words = " ".join(f"word{i}" for i in range(400))
    chunks = chunk_document(doc(Block((), words)), max_tokens=100, overlap_tokens=0)
    assert len(chunks) >= 5
    assert all(estimate_tokens(c.text) <= 100 for c in chunks)
    assert " ".join(c.text for c in chunks) == words


def test_a_long_code_block_splits_at_lines_and_keeps_them() -> None:
    code = "```\n" + "\n".join(f'{{"line": {i}, "text": "value number {i}."}}' for i in range(60)) + "\n```"
    chunks = chunk_document(doc(Block(("Example",), code)), max_tokens=80, overlap_tokens=20)
    assert len(chunks) > 2
    lines = [line for c in chunks for line in c.text.splitlines()]
    assert lines == code.splitlines()  # every line whole, in order, no overlap carried inside code
