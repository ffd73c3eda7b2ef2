"""A folder as a source: its supported files, each versioned by modification time and size (no read when both are
as last time), tagged with the source's tags."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

from retrieval.ingest import discover_files
from retrieval.sources.base import Changed, Connector, DocumentMeta, Failed, Item, KnownDocument, SourceError, Unchanged


class FolderConnector(Connector):
    kind = "folder"

    def __init__(self, path: str | Path, tags: Sequence[str] = ()) -> None:
        self.root = Path(path).expanduser().resolve()
        self.tags = tuple(tags)

    def walk(self, known: Mapping[str, KnownDocument]) -> Iterator[Item]:
        if not self.root.is_dir():
            raise SourceError(f"No such folder: {self.root}")
        for path in discover_files(self.root):
            key = path.relative_to(self.root).as_posix()
            try:
                stat = path.stat()
                version = f"{stat.st_mtime_ns}:{stat.st_size}"
                previous = known.get(key)
                if previous is not None and previous.version == version:
                    yield Unchanged(key)
                    continue
                content = path.read_bytes()
            except OSError as exc:
                yield Failed(key, f"cannot read: {exc.strerror or exc}", str(path))
                continue
            meta = DocumentMeta(
                key=key,
                url=str(path),
                section=tuple(Path(key).parent.parts),
                updated=datetime.fromtimestamp(stat.st_mtime, tz=timezone.utc),
                tags=self.tags,
            )
            yield Changed(meta, content, path.name, version=version)
