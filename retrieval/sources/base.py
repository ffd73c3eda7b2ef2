"""What a connector is: it walks its source and says, per document, unchanged, changed (with its content) or failed.

A connector never writes to the index. The sync engine (`retrieval.sources.sync`) hands it what the last sync kept
of each document (`KnownDocument`: the source's own version, the HTTP validators, a few connector-private facts) and
turns what the connector yields into index writes, pruning only when the walk finished: a listing cut short by an
error or Ctrl-C never removes what it did not reach.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from retrieval.errors import RetrievalError


def parse_timestamp(value: object) -> datetime | None:
    """An API's ISO 8601 time with its zone ("2026-11-03T09:30:00Z", "...+08:00") as an aware datetime; None for
    anything else, so one odd field never fails a document."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


class SourceError(RetrievalError):
    """The source as a whole cannot be read (listing failed, site unreachable): the sync fails, nothing is pruned."""


class SourceAuthError(SourceError):
    """The source refused the credentials; the message names the environment variable to fix."""


@dataclass(frozen=True)
class DocumentMeta:
    """What a source says about one document, kept as metadata on every chunk of it."""

    key: str  # stable within the source: a page id, an article id, a canonical URL, a repository path
    url: str  # the document's own address, for citations
    title: str = ""
    section: tuple[str, ...] = ()  # where it sits in the source: space and ancestors, category, folders
    updated: datetime | None = None  # when the source says it last changed (timezone-aware)
    author: str = ""
    tags: tuple[str, ...] = ()  # labels, front matter tags, a folder source's --tag


@dataclass(frozen=True)
class KnownDocument:
    """What the last sync kept of a document: the source's version and validators, and the content hash."""

    key: str
    version: str = ""  # the source's own version: updated_at, a sitemap lastmod, a git blob sha ("" unknown)
    etag: str = ""
    last_modified: str = ""
    content_hash: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)  # connector-private facts, e.g. a page's links


@dataclass(frozen=True)
class Unchanged:
    """The document is as the last sync left it (same version, or the server answered 304 Not Modified)."""

    key: str
    etag: str = ""  # fresh validators when the server sent new ones
    last_modified: str = ""
    extra: Mapping[str, Any] | None = None  # None: keep what was known
    version: str = ""  # a newer version of the source's for the same content (a sitemap lastmod moved, 304 said)


@dataclass(frozen=True)
class Changed:
    """A new or edited document with its content. `name` ends with the suffix that says its format
    ("page.html", "README.md", "Pricing.docx"); `version`, `etag` and `last_modified` are stored for the next sync."""

    meta: DocumentMeta
    content: bytes | str
    name: str
    version: str = ""
    etag: str = ""
    last_modified: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Failed:
    """One document could not be fetched or read: it is reported and kept as it was, never removed."""

    key: str
    reason: str
    url: str = ""


Item = Unchanged | Changed | Failed


class Connector(ABC):
    """One source kind. `walk` yields an item for every document the source holds now, paging and rate-limiting
    as its API requires; it raises `SourceError` when the source as a whole cannot be listed."""

    kind: str

    @abstractmethod
    def walk(self, known: Mapping[str, KnownDocument]) -> Iterator[Item]: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> Connector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
