"""Loaders that turn .md, .txt, .html, .pdf and Office (.docx, .pptx, .xlsx) files into `LoadedDocument`s of
heading-scoped text blocks."""

from __future__ import annotations

import datetime
import functools
import logging
import re
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from retrieval.documents import Block, LoadedDocument
from retrieval.errors import DocumentLoadError, first_line
from retrieval.text import closes_fence, is_prose_line, join_lines, opens_fence, paragraphs

# Bumped whenever a loader changes what it extracts, so re-ingestion re-reads unchanged files
# (2: HTML main content through trafilatura; Latin-1 text files. 3: hard-wrapped lines of .md and .txt joined
# into paragraphs, setext headings. 4: front matter read as YAML, its tags and dates kept as metadata).
LOADER_VERSION = "4"

SUPPORTED_SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm", ".pdf", ".docx", ".pptx", ".xlsx")

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def load_document(path: Path) -> LoadedDocument:
    """Load one file by its suffix; raises `DocumentLoadError` with the reason when it cannot be read."""
    return _load(path, path.suffix.lower(), lambda loader: loader(path))


def load_content(content: bytes | str, name: str) -> LoadedDocument:
    """A fetched document (a web page, a wiki page, a file from a repository) by the suffix of `name`, with the same
    loaders as a file on disk: text formats straight from memory, PDF and Office files through a temporary file,
    the form their libraries read."""
    path = Path(name)
    raw = content.encode() if isinstance(content, str) else content
    return _load(path, path.suffix.lower(), lambda loader: _load_bytes(loader, raw, path))


def _load_bytes(loader: Loader, raw: bytes, path: Path) -> LoadedDocument:
    if loader is load_html:
        return parse_html(raw, path)
    if loader in (load_markdown, load_text):
        text, encoding = decode_text(raw)
        doc = parse_markdown(text, path) if loader is load_markdown else _plain_text(text.strip(), path)
        doc.encoding = encoding
        return doc
    with tempfile.TemporaryDirectory(prefix="ragbot-") as folder:
        copy = Path(folder) / f"document{path.suffix.lower()}"
        copy.write_bytes(raw)
        doc = loader(copy)
    fallback = _document(path, "", "", [])
    doc.path = fallback.path
    doc.source = fallback.source if doc.source == str(copy) else doc.source
    doc.title = fallback.title if doc.title == copy.stem else doc.title
    return doc


Loader = Callable[[Path], LoadedDocument]


def _load(path: Path, suffix: str, load: Callable[[Loader], LoadedDocument]) -> LoadedDocument:
    loader = _LOADERS.get(suffix)
    if loader is None:
        raise DocumentLoadError(f"unsupported file type {suffix!r} (supported: {', '.join(SUPPORTED_SUFFIXES)})")
    with _CapturedWarnings() as captured:
        try:
            doc = load(loader)
        except DocumentLoadError:
            raise
        except OSError as exc:
            raise DocumentLoadError(f"cannot read file: {exc.strerror or exc}") from exc
    if not any(block.text.strip() for block in doc.blocks):
        raise DocumentLoadError("no text found in the file")
    doc.warnings.extend(dict.fromkeys(captured.messages))  # once each: HTML may be extracted twice
    return doc


class _CapturedWarnings(logging.Handler):
    """Collects what pypdf, bs4 and trafilatura warn about while one file loads (Python warnings and their
    loggers), so the ingest summary counts them per file instead of the libraries printing over the progress bar."""

    _LOGGERS = ("pypdf", "trafilatura", "htmldate", "courlan", "justext", "bs4")

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self._warnings = warnings.catch_warnings(record=True)
        self._saved: list[tuple[logging.Logger, bool]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(first_line(Exception(record.getMessage())))

    def __enter__(self) -> _CapturedWarnings:
        self._recorded = self._warnings.__enter__()
        warnings.simplefilter("always")
        for name in self._LOGGERS:
            logger = logging.getLogger(name)
            self._saved.append((logger, logger.propagate))
            logger.addHandler(self)
            logger.propagate = False
        return self

    def __exit__(self, *exc_info: object) -> None:
        for logger, propagate in self._saved:
            logger.removeHandler(self)
            logger.propagate = propagate
        self._warnings.__exit__(*exc_info)
        self.messages[:0] = [first_line(Exception(str(w.message))) for w in self._recorded or []]


def _read_text(path: Path) -> tuple[str, str]:
    """The file's text and, when it was not UTF-8, the encoding it was read with (GB18030 or Windows-1252/Latin-1:
    the legacy encodings documents here come in; charset detection picks between them)."""
    return decode_text(path.read_bytes())


def decode_text(raw: bytes) -> tuple[str, str]:
    """Bytes of a text document as text, and the legacy encoding used when they were not UTF-8."""
    try:
        return raw.decode("utf-8-sig"), ""
    except UnicodeDecodeError as exc:
        utf8_error = exc
    from charset_normalizer import from_bytes

    best = from_bytes(raw, cp_isolation=list(_LEGACY_ENCODINGS)).best()
    if best is None:
        raise DocumentLoadError(
            f"the file is not UTF-8 (invalid byte at offset {utf8_error.start}) nor GB18030 or Latin-1 text; "
            "convert it to UTF-8 (e.g. iconv -f <encoding> -t UTF-8) and ingest it again"
        )
    return str(best), _LEGACY_ENCODINGS[best.encoding]


_LEGACY_ENCODINGS = {"gb18030": "GB18030", "cp1252": "Windows-1252 (Latin-1)"}


def _split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """A leading `---` block read as YAML (lists and nested keys kept); a block that is not valid YAML, or not a
    mapping, is left in the text, as a renderer would show it."""
    if not text.startswith("---"):
        return {}, text
    lines = text.splitlines()
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            try:
                meta = yaml.safe_load("\n".join(lines[1:end]))
            except yaml.YAMLError:
                return {}, text
            if meta is None:
                meta = {}
            if not isinstance(meta, dict):
                return {}, text
            return {str(key).strip().lower(): value for key, value in meta.items()}, "\n".join(lines[end + 1 :])
    return {}, text


def document_meta(front_matter: dict[str, Any]) -> dict[str, Any]:
    """What a document's front matter says that retrieval keeps on its chunks: `tags` (a list or a comma-separated
    string), `updated` (ISO date of `updated`, `last_modified` or `date`), `author`, and every other scalar or list
    of scalars under its dotted key (`product.tier`), so presets and citations can use them."""
    meta: dict[str, Any] = {}
    for key, value in _flatten(front_matter):
        if key in ("title", "url"):
            continue
        if key in ("tags", "keywords", "labels"):
            tags = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else [value]
            meta.setdefault("tags", [])
            meta["tags"] += [str(tag).strip() for tag in tags if str(tag).strip()]
        elif key in ("updated", "last_modified", "lastmod", "date", "modified"):
            if isinstance(value, (datetime.date, str)) and "updated" not in meta:
                meta["updated"] = value.isoformat() if isinstance(value, datetime.date) else value.strip()
        elif key == "author":
            meta["author"] = str(value)
        elif isinstance(value, (datetime.date,)):
            meta[key] = value.isoformat()
        else:
            meta[key] = value
    return meta


def _flatten(mapping: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested keys as dotted ones; lists of scalars kept as lists, other values that are not scalars dropped."""
    pairs: list[tuple[str, Any]] = []
    for key, value in mapping.items():
        name = f"{prefix}{str(key).strip().lower()}"
        if isinstance(value, dict):
            pairs += _flatten(value, f"{name}.")
        elif isinstance(value, list):
            scalars = [item for item in value if isinstance(item, (str, int, float, bool))]
            pairs.append((name, scalars))
        elif isinstance(value, (str, int, float, bool, datetime.date)):
            pairs.append((name, value))
    return pairs


def load_markdown(path: Path) -> LoadedDocument:
    raw_text, encoding = _read_text(path)
    doc = parse_markdown(raw_text, path)
    doc.encoding = encoding
    return doc


def parse_markdown(raw_text: str, path: Path) -> LoadedDocument:
    """Markdown text (a file's, or what an Office document converts to) as blocks under their heading path."""
    meta, body = _split_front_matter(raw_text)
    headings: list[str] = []  # heading path; index = level - 1
    blocks: list[Block] = []
    title = str(meta.get("title") or "")
    lines: list[str] = []  # the section's lines since the last heading
    fence: str | None = None

    def flush() -> None:
        blocks.extend(Block(tuple(headings), text) for text in paragraphs("\n".join(lines)))
        lines.clear()

    def enter_heading(level: int, heading: str) -> None:
        nonlocal title
        flush()
        if level == 1 and not title:
            title = heading
        _enter_heading(headings, level, heading)

    for line in body.splitlines():
        if fence is not None:
            fence = None if closes_fence(line, fence) else fence
            lines.append(line)
            continue
        fence = opens_fence(line)
        match = _HEADING.match(line)
        underline = _SETEXT_UNDERLINE.match(line)
        if fence is None and match:
            enter_heading(len(match.group(1)), match.group(2).strip())
        elif fence is None and underline and _setext_text(lines):
            heading = lines.pop().strip()
            enter_heading(1 if underline.group(1).startswith("=") else 2, heading)
        else:
            lines.append(line)
    flush()
    doc = _document(path, title, str(meta.get("url") or ""), _drop_title_heading(blocks, title))
    doc.source_chars = len(body.strip())
    doc.meta = document_meta(meta)
    return doc


_SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")


def _setext_text(lines: list[str]) -> bool:
    """Whether the lines end in a one-line paragraph of text that a `===` or `---` line below makes a heading."""
    return bool(lines) and is_prose_line(lines[-1]) and (len(lines) == 1 or not lines[-2].strip())


def _drop_title_heading(blocks: list[Block], title: str) -> list[Block]:
    """The H1 repeats the title; keep section paths to the headings below it."""
    cleaned = []
    for block in blocks:
        section = tuple(h for h in block.section if h)
        if section and section[0] == title:
            section = section[1:]
        cleaned.append(Block(section, block.text))
    return cleaned


def load_text(path: Path) -> LoadedDocument:
    text, encoding = _read_text(path)
    text = text.strip()  # rebound, so the unstripped copy of a big file is freed before it is split
    doc = _plain_text(text, path)
    doc.encoding = encoding
    return doc


def _plain_text(text: str, path: Path) -> LoadedDocument:
    """A stripped text file's blocks: its first short line is the title."""
    source_chars = len(text)
    lines = text.splitlines()
    title = ""
    if lines and 0 < len(lines[0].strip()) <= 120:
        title, text = lines[0].strip(), "\n".join(lines[1:])
    blocks = [Block((), paragraph) for paragraph in paragraphs(text, plain=True)]
    doc = _document(path, title, "", blocks)
    doc.source_chars = source_chars
    return doc


_HTML_DROP = ("script", "style", "nav", "footer", "header", "aside", "noscript", "form", "svg", "template")
_HTML_BLOCKS = ("p", "li", "pre", "blockquote", "td", "th", "dd", "dt", "figcaption", "caption")


def load_html(path: Path) -> LoadedDocument:
    return parse_html(path.read_bytes(), path)


def parse_html(content: bytes | str, path: Path) -> LoadedDocument:
    """An HTML page's main content (folder files and fetched pages alike), through trafilatura: paragraphs in any
    container (DocBook's `div.para`), lists, tables and code, without navigation, headers and footers. Sections come
    from the page's own headings (trafilatura drops headings nested in wrappers or outside an <article>). A page it
    finds nothing in falls back to scanning text tags, so no page is lost."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(content, "html.parser")
    canonical = soup.find("link", rel="canonical")
    url = str(canonical.get("href", "")) if canonical else ""
    title_tag = soup.find("title")
    title = title_tag.get_text(" ", strip=True) if title_tag else ""
    for tag in soup(_HTML_DROP):
        tag.decompose()
    body = soup.body or soup
    visible_chars = len(" ".join(body.get_text(" ").split()))
    pieces = _main_content(content)
    if pieces:
        blocks, first_h1 = _place_under_headings(body, pieces)
    else:
        blocks, first_h1 = _tag_blocks(body)
    if not blocks and visible_chars:  # no known structure at all (XML, bare text): keep the text, not nothing
        blocks = [Block((), " ".join(body.get_text(" ").split()))]
    title = title or first_h1
    doc = _document(path, title, url, _drop_title_heading(blocks, title))
    doc.source_chars = visible_chars
    return doc


_HEADING_TAGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_SPACE = re.compile(r"\s+")


def _enter_heading(headings: list[str], level: int, text: str) -> None:
    del headings[level - 1 :]
    headings.extend([""] * (level - 1 - len(headings)))
    headings.append(text)


def _main_content(content: bytes | str) -> list[tuple[str, str]]:
    """trafilatura's main content as (text as found in the page, text to index) pieces, in page order."""
    pieces = _extract_pieces(content, short_pages=False)
    if sum(len(text) for _, text in pieces) < _SHORT_PAGE_CHARS:
        # Below this size trafilatura falls back to the whole page's text as one paragraph, navigation included;
        # a short page is extracted again with that fallback off, keeping its structure.
        pieces = _extract_pieces(content, short_pages=True)
    return pieces


_SHORT_PAGE_CHARS = 250  # trafilatura's MIN_EXTRACTED_SIZE


@functools.cache
def _trafilatura_config(short_pages: bool) -> Any:
    from trafilatura.settings import use_config

    config = use_config()
    if short_pages:
        config.set("DEFAULT", "MIN_EXTRACTED_SIZE", "1")
        config.set("DEFAULT", "MIN_OUTPUT_SIZE", "1")
    return config


def _extract_pieces(content: bytes | str, short_pages: bool) -> list[tuple[str, str]]:
    import trafilatura

    extracted = trafilatura.bare_extraction(
        content,
        include_tables=True,
        include_formatting=True,
        include_links=False,
        include_images=False,
        include_comments=False,
        favor_recall=True,
        with_metadata=False,
        config=_trafilatura_config(short_pages),
    )
    if extracted is None or extracted.body is None:
        return []
    pieces: list[tuple[str, str]] = []
    _walk_extracted(extracted.body, pieces)
    return pieces


def _inline_text(element: Any) -> str:
    return " ".join("".join(element.itertext()).split())


def _walk_extracted(element: Any, pieces: list[tuple[str, str]]) -> None:
    """Flatten trafilatura's output tree (p/list/table/code/quote) into pieces; its headings are left to
    `_place_under_headings`, which takes them from the page itself."""

    def add(found: str, text: str) -> None:
        if text.strip():
            pieces.append((found, text.strip()))

    for child in element:
        tag = child.tag
        if tag == "head":
            continue
        if tag == "list":
            term = ""
            for item in child.iter("item"):
                text, rend = _inline_text(item), str(item.get("rend", ""))
                if rend.startswith("dt"):
                    term = text
                elif rend.startswith("dd") and term:
                    add(term, f"{term}: {text}")
                    term = ""
                else:
                    add(text, f"- {text}")
            add(term, term)
        elif tag == "table":
            rows = [[_inline_text(cell) for cell in row.iter("cell")] for row in child.iter("row")]
            rows = [row for row in rows if any(row)]
            if rows:
                add(rows[0][0] if rows[0] else "", "\n".join(" | ".join(row) for row in rows))
        elif tag == "code":
            code = "".join(child.itertext()).strip("\n")
            add(code, f"```\n{code}\n```" if "\n" in code else code)
        elif tag in ("quote", "pre"):
            lines = [" ".join(line.split()) for line in "".join(child.itertext()).splitlines() if line.strip()]
            add("\n".join(lines), "\n".join(lines))
        elif tag in ("div", "main", "body", "section"):
            _walk_extracted(child, pieces)
        else:
            text = _inline_text(child)
            add(text, text)


def _place_under_headings(body: Any, pieces: list[tuple[str, str]]) -> tuple[list[Block], str]:
    """Give each extracted piece the heading path above it in the page: pieces are found in the page's text (with
    whitespace removed, in order) and take the headings before them."""
    from bs4 import NavigableString, Tag

    marks: list[tuple[int, int, str]] = []  # (offset in the page's text without whitespace, level, heading)
    page: list[str] = []
    length = 0
    for node in body.descendants:
        if isinstance(node, Tag) and node.name in _HEADING_TAGS:
            text = node.get_text(" ", strip=True).rstrip("¶#").strip()
            if text:
                marks.append((length, int(node.name[1]), text))
        elif type(node) is NavigableString:
            compact = _SPACE.sub("", str(node))
            page.append(compact)
            length += len(compact)
    text_of_page = "".join(page)
    headings: list[str] = []
    blocks: list[Block] = []
    cursor = next_mark = 0
    for found, text in pieces:
        key = _SPACE.sub("", found)
        for size in (40, 12):
            position = text_of_page.find(key[:size], cursor) if key else -1
            if position >= 0:
                cursor = position
                break
        while next_mark < len(marks) and marks[next_mark][0] <= cursor:
            _, level, heading = marks[next_mark]
            _enter_heading(headings, level, heading)
            next_mark += 1
        blocks.append(Block(tuple(headings), text))
    first_h1 = next((heading for _, level, heading in marks if level == 1), "")
    return blocks, first_h1


def _tag_blocks(body: Any) -> tuple[list[Block], str]:
    """The fallback: text of the usual block tags, in order, under the headings above them."""
    headings: list[str] = []
    blocks: list[Block] = []
    first_h1 = ""
    for element in body.find_all([*_HEADING_TAGS, *_HTML_BLOCKS]):
        if element.find_parent(_HTML_BLOCKS):  # nested: the outer block already has its text
            continue
        text = element.get_text(" ", strip=True)
        if element.name != "pre":  # line ends in the page's source are spaces
            text = join_lines(text.splitlines())
        if not text:
            continue
        if element.name in _HEADING_TAGS:
            level = int(element.name[1])
            if level == 1 and not first_h1:
                first_h1 = text
            _enter_heading(headings, level, text)
        else:
            blocks.append(Block(tuple(headings), f"- {text}" if element.name == "li" else text))
    return blocks, first_h1


def load_pdf(path: Path) -> LoadedDocument:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            raise DocumentLoadError("the PDF is encrypted; save an unprotected copy and ingest that")
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = (reader.metadata.title if reader.metadata else None) or ""
    except DocumentLoadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DocumentLoadError(f"not a readable PDF ({exc})") from exc
    if not any(page.strip() for page in pages):
        raise DocumentLoadError("the PDF has no text layer (a scan?); run OCR on it first")
    blocks: list[Block] = []
    for number, page in enumerate(pages, start=1):
        for paragraph in re.split(r"\n\s*\n", page):
            joined = join_lines(paragraph.splitlines())  # PDF lines break mid-sentence
            if joined:
                blocks.append(Block((f"Page {number}",), joined))
    title = meta_title.strip() or next((b.text for b in blocks if len(b.text) <= 120), "")
    return _document(path, title, "", blocks)


# Suffix -> (what users call it, markitdown's converter for it). The converter is called directly: markitdown's
# own dispatch falls back to reading a broken file as plain text, which would index zip bytes as words.
_OFFICE = {
    ".docx": ("Word", "DocxConverter"),
    ".pptx": ("PowerPoint", "PptxConverter"),
    ".xlsx": ("Excel", "XlsxConverter"),
}
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)  # markitdown marks slides with <!-- Slide number: N -->


@functools.lru_cache(maxsize=len(_OFFICE))
def _office_converter(name: str) -> Any:
    from markitdown import converters

    return getattr(converters, name)()


def load_office(path: Path) -> LoadedDocument:
    """Word, PowerPoint and Excel files through markitdown, which writes them as Markdown with their headings,
    slide titles, sheet names and tables, so the heading-aware chunker sees the structure."""
    from markitdown import StreamInfo

    suffix = path.suffix.lower()
    kind, converter = _OFFICE[suffix]
    info = StreamInfo(extension=suffix, filename=path.name, local_path=str(path))
    with path.open("rb") as stream:
        try:
            markdown = _office_converter(converter).convert(stream, info).markdown
        except Exception as exc:  # a converter raises whatever its parsing library raises
            raise DocumentLoadError(f"not a readable {kind} file ({first_line(exc)})") from exc
    doc = parse_markdown(_HTML_COMMENT.sub("", markdown or ""), path)
    doc.size_says_nothing = True
    return doc


def _document(path: Path, title: str, url: str, blocks: list[Block]) -> LoadedDocument:
    return LoadedDocument(
        path=str(path),
        title=title or path.stem.replace("-", " ").replace("_", " "),
        source=url or str(path),
        blocks=blocks,
    )


_LOADERS: dict[str, Loader] = {
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".txt": load_text,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
    ".docx": load_office,
    ".pptx": load_office,
    ".xlsx": load_office,
}
