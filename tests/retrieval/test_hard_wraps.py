"""Hard-wrapped .md and .txt files load as paragraphs: a line end inside a paragraph is a space (nothing between
Chinese characters), while list items, tables, quotes, headings and code keep their lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.chunking import chunk_document
from retrieval.loaders import load_document
from retrieval.text import glue, join_lines, paragraphs

GUIDE_MD = """\
# Credentials

Git will sometimes need credentials from the user in order to perform
operations; for example, it may need to ask for a username and password
in order to access a remote repository over HTTP.

## Helpers

Steps:

- Install a helper that keeps the password
  in the system keychain.
- Tell Git to use it.
  1. Run the config command
     shown below.
  2. Try a push.

```sh
git config --global credential.helper cache
git push   # asks once,

           # then remembers
```

| helper | stores |
|--------|--------|
| cache  | memory |
| store  | disk   |

    $ git credential fill
    protocol=https

> Do not store a password
> on a shared machine.

Setext heading
--------------

配置单点登录时，管理员需要先在身份提供方
创建应用，然后把元数据上传到
管理后台。
"""


def load(tmp_path: Path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_document(path)


def section_texts(doc) -> dict[tuple[str, ...], list[str]]:
    found: dict[tuple[str, ...], list[str]] = {}
    for block in doc.blocks:
        found.setdefault(block.section, []).append(block.text)
    return found


def test_markdown_paragraphs_are_joined_and_structure_kept(tmp_path: Path) -> None:
    doc = load(tmp_path, "credentials.md", GUIDE_MD)
    assert doc.title == "Credentials"
    assert section_texts(doc) == {
        (): [
            "Git will sometimes need credentials from the user in order to perform operations; for example, it may "
            "need to ask for a username and password in order to access a remote repository over HTTP."
        ],
        ("Helpers",): [
            "Steps:",
            "- Install a helper that keeps the password in the system keychain.\n"
            "- Tell Git to use it.\n"
            "  1. Run the config command shown below.\n"
            "  2. Try a push.",
            "```sh\ngit config --global credential.helper cache\ngit push   # asks once,\n\n"
            "           # then remembers\n```",
            "| helper | stores |\n|--------|--------|\n| cache  | memory |\n| store  | disk   |",
            "    $ git credential fill\n    protocol=https",
            "> Do not store a password on a shared machine.",
        ],
        ("Setext heading",): ["配置单点登录时，管理员需要先在身份提供方创建应用，然后把元数据上传到管理后台。"],
    }


def test_chunks_of_a_wrapped_markdown_file_read_as_paragraphs(tmp_path: Path) -> None:
    chunks = chunk_document(load(tmp_path, "credentials.md", GUIDE_MD), max_tokens=300, overlap_tokens=0)
    text = "\n".join(chunk.text for chunk in chunks)
    assert "perform operations; for example" in text
    assert "keeps the password in the system keychain." in text
    assert "git push   # asks once,\n\n           # then remembers\n```" in text  # code verbatim, blank line kept
    assert "| cache  | memory |\n| store  | disk   |" in text
    assert "身份提供方创建应用，然后把元数据上传到管理后台。" in text
    assert [c.section for c in chunks if "身份提供方" in c.text] == ["Setext heading"]


def test_long_wrapped_paragraph_splits_at_sentences_not_line_ends(tmp_path: Path) -> None:
    sentence = "The cache helper keeps credentials in memory\nfor a short while and then forgets them. "
    doc = load(tmp_path, "cache.md", "# Cache\n\n" + sentence * 40)
    chunks = chunk_document(doc, max_tokens=60, overlap_tokens=0)
    assert len(chunks) > 1
    for chunk in chunks:
        assert "\n" not in chunk.text
        assert chunk.text.startswith("The cache helper keeps credentials in memory for a short while")


def test_text_file_paragraphs_are_joined(tmp_path: Path) -> None:
    doc = load(
        tmp_path,
        "notes.txt",
        "Release notes\n\nThe importer now reads\nGB18030 files and\nLatin-1 files.\n\n"
        "Known issues:\n- large PDFs are\n  slow to load\n- none else\n\n"
        "Sample:\n\n    indented sample\n    kept as is\n\n"
        "导入程序现在可以读取\n旧编码的文件。\n",
    )
    assert doc.title == "Release notes"
    assert [b.text for b in doc.blocks] == [
        "The importer now reads GB18030 files and Latin-1 files.",
        "Known issues:\n- large PDFs are slow to load\n- none else",
        "Sample:",
        "    indented sample\n    kept as is",
        "导入程序现在可以读取旧编码的文件。",
    ]


def test_text_file_keeps_underlines_and_delimited_listings(tmp_path: Path) -> None:
    doc = load(
        tmp_path,
        "git-credential.txt",
        "git-credential(1)\n\nDESCRIPTION\n-----------\nGit has an internal interface\nfor credentials.\n\n"
        "------------\n$ git credential fill\nprotocol=https\n\nhost=example.com\n------------\n",
    )
    assert [b.text for b in doc.blocks] == [
        "DESCRIPTION\n-----------\nGit has an internal interface for credentials.",
        "------------\n$ git credential fill\nprotocol=https\n\nhost=example.com\n------------",
    ]


@pytest.mark.parametrize(
    ("left", "right", "joined"),
    [
        ("for a", "password.", "for a password."),
        ("单点登录", "配置", "单点登录配置"),
        ("设置，", "然后", "设置，然后"),
        ("使用", "Okta", "使用 Okta"),
        ("exam-", "ple", "exam- ple"),  # hyphenation is not guessed at
        ("한국어", "문장", "한국어 문장"),  # Korean spaces its words
    ],
)
def test_glue(left: str, right: str, joined: str) -> None:
    assert glue(left, right) == joined


def test_join_lines_strips_each_line() -> None:
    assert join_lines(["  第一行 ", "第二行", " and more  "]) == "第一行第二行 and more"


def test_markdown_hard_breaks_and_thematic_breaks() -> None:
    assert paragraphs("one line  \nnext\\\nlast\n\n---\n\nafter") == ["one line\nnext\nlast", "after"]


def test_quote_nesting_and_lazy_lines() -> None:
    assert paragraphs("> a wrapped\nlazy line\n> > inner\n> > quote") == ["> a wrapped lazy line\n> > inner quote"]


def test_loose_list_item_paragraph_is_prose_not_code() -> None:
    text = "- item\n\n    more about the item\n    wrapped here\n\n        $ code in the item\n        $ kept"
    assert paragraphs(text) == [
        "- item",
        "    more about the item wrapped here",
        "        $ code in the item\n        $ kept",
    ]
    # Without a list before it, four spaces make code.
    assert paragraphs("Run:\n\n    $ one\n    $ two") == ["Run:", "    $ one\n    $ two"]


@pytest.mark.parametrize(
    ("caption", "text"),
    [("The login page\nafter setup", "The login page after setup"), ("单点登录\n配置页面", "单点登录配置页面")],
)
def test_html_fallback_joins_source_line_ends(tmp_path: Path, caption: str, text: str) -> None:
    # A page trafilatura finds no main content in goes through the tag scan, which must join wrapped lines too.
    page = f"<html><body><figure><figcaption>{caption}</figcaption></figure></body></html>"
    doc = load(tmp_path, "figure.html", page)
    assert [b.text for b in doc.blocks] == [text]


def test_a_year_at_a_line_start_does_not_start_a_list() -> None:
    assert paragraphs("Released in\n2024. It replaced\n1. nothing") == ["Released in 2024. It replaced\n1. nothing"]
    assert paragraphs("Steps:\n1. one\n2. two") == ["Steps:\n1. one\n2. two"]
