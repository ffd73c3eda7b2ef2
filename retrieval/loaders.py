"""Loaders that turn .md, .txt, .html and .pdf files into `LoadedDocument`s of heading-scoped text blocks."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from retrieval.documents import Block, LoadedDocument
from retrieval.errors import DocumentLoadError

SUPPORTED_SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm", ".pdf")

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def load_document(path: Path) -> LoadedDocument:
    """Load one file by its suffix; raises `DocumentLoadError` with the reason when it cannot be read."""
    suffix = path.suffix.lower()
    loader = _LOADERS.get(suffix)
    if loader is None:
        raise DocumentLoadError(f"unsupported file type {suffix!r} (supported: {', '.join(SUPPORTED_SUFFIXES)})")
    try:
        doc = loader(path)
    except DocumentLoadError:
        raise
    except OSError as exc:
        raise DocumentLoadError(f"cannot read file: {exc.strerror or exc}") from exc
    if not any(block.text.strip() for block in doc.blocks):
        raise DocumentLoadError("no text found in the file")
    return doc


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise DocumentLoadError("the file is neither UTF-8 nor GB18030 text")


def _split_front_matter(text: str) -> tuple[dict[str, str], str]:
    """Parse a leading `---` block of `key: value` lines (the common subset of YAML front matter)."""
    if not text.startswith("---"):
        return {}, text
    lines = text.splitlines()
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            meta: dict[str, str] = {}
            for line in lines[1:end]:
                key, sep, value = line.partition(":")
                if sep and key.strip():
                    meta[key.strip().lower()] = value.strip().strip("\"'")
            return meta, "\n".join(lines[end + 1 :])
    return {}, text


def load_markdown(path: Path) -> LoadedDocument:
    meta, body = _split_front_matter(_read_text(path))
    headings: list[str] = []  # heading path; index = level - 1
    blocks: list[Block] = []
    title = meta.get("title", "")
    paragraph: list[str] = []
    in_fence = False

    def flush() -> None:
        text = "\n".join(paragraph).strip()
        if text:
            blocks.append(Block(tuple(headings), text))
        paragraph.clear()

    for line in body.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
            paragraph.append(line)
            continue
        if in_fence:
            paragraph.append(line)
            continue
        match = _HEADING.match(line)
        if match:
            flush()
            level, heading = len(match.group(1)), match.group(2).strip()
            if level == 1 and not title:
                title = heading
            del headings[level - 1 :]
            headings.extend([""] * (level - 1 - len(headings)))
            headings.append(heading)
            continue
        if not line.strip():
            flush()
        else:
            paragraph.append(line.rstrip())
    flush()
    return _document(path, title, meta.get("url", ""), _drop_title_heading(blocks, title))


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
    text = _read_text(path).strip()
    lines = text.splitlines()
    title = ""
    if lines and 0 < len(lines[0].strip()) <= 120:
        title, text = lines[0].strip(), "\n".join(lines[1:])
    blocks = [Block((), p.strip()) for p in re.split(r"\n\s*\n", text) if p.strip()]
    return _document(path, title, "", blocks)


_HTML_DROP = ("script", "style", "nav", "footer", "header", "aside", "noscript", "form", "svg", "template")
_HTML_BLOCKS = ("p", "li", "pre", "blockquote", "td", "th", "dd", "dt", "figcaption", "caption")


def load_html(path: Path) -> LoadedDocument:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(path.read_bytes(), "html.parser")
    canonical = soup.find("link", rel="canonical")
    url = str(canonical.get("href", "")) if canonical else ""
    title_tag = soup.find("title")
    title = title_tag.get_text(" ", strip=True) if title_tag else ""
    for tag in soup(_HTML_DROP):
        tag.decompose()
    body = soup.body or soup
    headings: list[str] = []
    blocks: list[Block] = []
    for element in body.find_all(["h1", "h2", "h3", "h4", "h5", "h6", *_HTML_BLOCKS]):
        if element.find_parent(_HTML_BLOCKS):  # nested: the outer block already has its text
            continue
        text = element.get_text(" ", strip=True)
        if not text:
            continue
        if element.name[0] == "h" and element.name[1:].isdigit():
            level = int(element.name[1])
            if level == 1 and not title:
                title = text
            del headings[level - 1 :]
            headings.extend([""] * (level - 1 - len(headings)))
            headings.append(text)
        else:
            blocks.append(Block(tuple(headings), f"- {text}" if element.name == "li" else text))
    return _document(path, title, url, _drop_title_heading(blocks, title))


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
            # PDF lines break mid-sentence: join them back, keeping Chinese text unspaced.
            joined = re.sub(r"(?<=[\u3000-\u9fff])\n(?=[\u3000-\u9fff])", "", paragraph.strip())
            joined = re.sub(r"\s*\n\s*", " ", joined)
            if joined:
                blocks.append(Block((f"Page {number}",), joined))
    title = meta_title.strip() or next((b.text for b in blocks if len(b.text) <= 120), "")
    return _document(path, title, "", blocks)


def _document(path: Path, title: str, url: str, blocks: list[Block]) -> LoadedDocument:
    return LoadedDocument(
        path=str(path),
        title=title or path.stem.replace("-", " ").replace("_", " "),
        source=url or str(path),
        blocks=blocks,
    )


_LOADERS: dict[str, Callable[[Path], LoadedDocument]] = {
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".txt": load_text,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
}
