"""The embedded index names a collection's folder by the one collection-name rule (`check_collection_name`), so a
name the settings and the command line accept always has a folder, and one they refuse never reaches the disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval import RetrievalError
from retrieval.edge_index import EdgeIndex
from retrieval.errors import CollectionNameError
from retrieval.names import check_collection_name

VALID = ["kb", "KB_2", "team-docs", "v1.2", "-x", "_", "a" * 255, "docs.zh-cn"]
# The first ones passed the old folder rule of EdgeIndex and not the name rule: they must now fail both.
INVALID = ["a b", "文档", "kb:1", "x" * 256, "tab\tname", "", ".hidden", "..", "../kb", "a/b", "a\\b", "kb\n"]


def rule_accepts(name: str) -> bool:
    try:
        check_collection_name(name)
    except ValueError:
        return False
    return True


def edge_accepts(index: EdgeIndex, name: str) -> bool:
    try:
        index._dir(name)
    except CollectionNameError:
        return False
    return True


@pytest.mark.parametrize("name", VALID + INVALID)
def test_edge_index_accepts_exactly_the_names_the_rule_accepts(tmp_path: Path, name: str) -> None:
    assert edge_accepts(EdgeIndex(tmp_path), name) == rule_accepts(name) == (name in VALID)


@pytest.mark.parametrize("name", VALID)
def test_a_valid_name_keeps_its_folder(tmp_path: Path, name: str) -> None:
    assert EdgeIndex(tmp_path)._dir(name) == tmp_path / name


def test_an_invalid_name_is_one_clear_retrieval_error(tmp_path: Path) -> None:
    with pytest.raises(RetrievalError) as caught:
        EdgeIndex(tmp_path).collection_info("team docs")
    message = str(caught.value)
    assert "'team docs'" in message
    assert "letters, digits, '-', '_' and '.'" in message  # the rule's own wording, not a second one
    assert isinstance(caught.value, ValueError)  # callers that catch the rule's ValueError still do


def test_an_invalid_name_touches_nothing_on_disk(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    outside = tmp_path / "kb"
    outside.mkdir()
    index = EdgeIndex(root)
    with pytest.raises(CollectionNameError):
        index.create_collection("bad name", 4, "model", "bm25")
    with pytest.raises(CollectionNameError):
        index.drop_collection("../kb")
    assert list(root.iterdir()) == []
    assert outside.is_dir()


def test_a_valid_name_is_created_in_its_folder(tmp_path: Path) -> None:
    index = EdgeIndex(tmp_path)
    try:
        index.create_collection("docs.v2", 4, "model", "bm25")
        assert (tmp_path / "docs.v2" / "collection.json").is_file()
        info = index.collection_info("docs.v2")
        assert info is not None and info.dimension == 4 and info.points == 0
    finally:
        index.close()
