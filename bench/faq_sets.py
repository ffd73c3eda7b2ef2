"""Build retrieval evaluation sets from the Debian FAQ (English and Simplified Chinese).

Data: the Debian packages `debian-faq`, `debian-faq-zh-cn`, `debian-reference-en` and `debian-reference-zh-cn`
(fetched with `apt-get download`, unpacked with `dpkg-deb -x`; HTML under usr/share/doc/debian/FAQ and
usr/share/debian-reference).

Method, per language:
- every FAQ answer becomes one document WITHOUT its question: the document's title is the FAQ chapter title
  (e.g. "Chapter 1. Definitions and overview"), the body is the answer text only;
- the FAQ question (numbering stripped) is the query, and its one relevant document is that answer;
- distractors are ordinary manual pages: the Debian Reference split into its sections (an h2 section per page,
  long ones split at their h3 subsections, packed to at most ~6000 characters; half that for Chinese).

Sub-sections of an answer whose title is itself a question (e.g. "3.1.1. ... What should I do?") are FAQ entries
of their own and are left out of the parent answer; other sub-sections ("8.1.1. dpkg") stay in the parent answer.

    python bench/faq_sets.py [--out bench/data] [--debs DIR]

writes <out>/debian-faq-en and <out>/debian-faq-zh, each with docs/faq/*.md, docs/reference/*.md and
questions.jsonl, plus <out>/LICENSES.md (the packages' copyright notices, which must travel with the copies).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from bs4 import BeautifulSoup, Comment, NavigableString, Tag

PACKAGES = ("debian-faq", "debian-faq-zh-cn", "debian-reference-en", "debian-reference-zh-cn")


@dataclass(frozen=True)
class Language:
    code: str  # "en" / "zh": questions.jsonl language and set-folder suffix
    faq_package: str
    faq_dir: str  # inside the extracted tree
    faq_suffix: str
    reference_package: str
    reference_suffix: str
    min_answer_chars: int
    page_min_chars: int
    page_max_chars: int


LANGUAGES = (
    Language(
        "en", "debian-faq", "usr/share/doc/debian/FAQ", ".en.html", "debian-reference-en", ".en.html", 80, 300, 6000
    ),
    Language(
        "zh",
        "debian-faq-zh-cn",
        "usr/share/doc/debian/FAQ/zh-cn",
        ".zh-cn.html",
        "debian-reference-zh-cn",
        ".zh-cn.html",
        40,
        150,
        3000,
    ),
)
SKIPPED_FAQ_PAGES = ("index", "faqinfo")


class BuildError(Exception):
    """The set cannot be built; the message says why in one line."""


# ---------------------------------------------------------------- HTML -> Markdown-ish text

_CJK = "\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_CJK_BREAK = re.compile(rf"(?<=[{_CJK}])[ \t\r\f\v]*\n\s*(?=[{_CJK}])")
_NUMBERING = re.compile(r"^\s*(?:[A-Z]|\d+)(?:\.\d+)*\.\s+")
_BLOCK_TAGS = {
    "p", "div", "ul", "ol", "dl", "pre", "table", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    "tbody", "thead", "tr", "li", "dt", "dd", "center", "form",
}  # fmt: skip
_SKIP_CLASSES = {"toc", "navheader", "navfooter", "footnotes", "titlepage", "indexterm", "mediaobject"}
_ADMONITIONS = {"note", "tip", "warning", "caution", "important"}


def clean_inline(text: str) -> str:
    """Collapse whitespace; a line break between two CJK characters is dropped rather than turned into a space."""
    text = unicodedata.normalize("NFC", text).replace("\xa0", " ").replace("\u200b", "")
    text = _CJK_BREAK.sub("", text)
    return re.sub(r"\s+", " ", text).strip()


def strip_numbering(title: str) -> str:
    return _NUMBERING.sub("", title, count=1).strip()


def _classes(tag: Tag) -> set[str]:
    return set(tag.get("class") or [])


class Renderer:
    """Turns DocBook-generated XHTML into Markdown-ish blocks (paragraphs, "- " items, ``` code, "a | b" rows)."""

    def __init__(self, soup: BeautifulSoup) -> None:
        self.footnotes: dict[str, Tag] = {}
        for note in soup.select("div.footnote"):
            anchor = note if note.get("id") else note.find("a", id=True)
            if anchor is not None:
                self.footnotes[str(anchor["id"])] = note
        self.used_footnotes: list[str] = []

    # inline ---------------------------------------------------------------------------------------
    def inline(self, node: Tag | NavigableString) -> str:
        if isinstance(node, Comment):
            return ""
        if isinstance(node, NavigableString):
            return str(node)
        if node.name in ("script", "style", "img") or _classes(node) & {"indexterm"}:
            return ""
        if node.name == "br":
            return "\n"
        if node.name == "a" and "footnote" in _classes(node):
            target = (node.get("href") or "").lstrip("#")
            if target in self.footnotes and target not in self.used_footnotes:
                self.used_footnotes.append(target)
            return f"[{self.used_footnotes.index(target) + 1}]" if target in self.used_footnotes else ""
        return "".join(self.inline(child) for child in node.children)

    # blocks ---------------------------------------------------------------------------------------
    def blocks(self, element: Tag, skip: set[int] | None = None, heading_level: int = 2) -> list[str]:
        """Render the children of `element`; `skip` holds ids of child sections to leave out."""
        out: list[str] = []
        buf: list[str] = []

        def flush() -> None:
            text = clean_inline("".join(buf))
            if text and not re.fullmatch(r"(?:\[\d+\]\s*)+", text):  # not a lone footnote marker
                out.append(text)
            buf.clear()

        for child in element.children:
            if isinstance(child, NavigableString):
                if not isinstance(child, Comment):
                    buf.append(str(child))
                continue
            if not isinstance(child, Tag):
                continue
            if child.name not in _BLOCK_TAGS:
                buf.append(self.inline(child))
                continue
            flush()
            if skip and id(child) in skip:
                continue
            out.extend(self.block(child, skip, heading_level))
        flush()
        return out

    def block(self, tag: Tag, skip: set[int] | None, heading_level: int) -> list[str]:
        classes = _classes(tag)
        if classes & _SKIP_CLASSES or tag.name == "hr":
            return []
        if tag.name == "div" and "section" in classes:
            heading = section_heading(tag)
            title = strip_numbering(clean_inline(self.inline(heading))) if heading is not None else ""
            body = self.blocks(tag, skip, heading_level + 1)
            return ([f"{'#' * min(heading_level, 6)} {title}"] if title and body else []) + body
        if tag.name == "div" and classes & _ADMONITIONS:
            return self.admonition(tag)
        if tag.name == "pre":
            lines = [line.rstrip() for line in unicodedata.normalize("NFC", tag.get_text()).splitlines()]
            while lines and not lines[0].strip():
                lines.pop(0)
            while lines and not lines[-1].strip():
                lines.pop()
            return ["```\n" + "\n".join(lines).replace("\xa0", " ") + "\n```"] if lines else []
        if tag.name in ("ul", "ol"):
            return self.list_block(tag)
        if tag.name == "dl":
            return self.definition_list(tag)
        if tag.name == "table":
            return self.table(tag)
        if tag.name == "blockquote":
            return ["\n".join("> " + line for b in self.blocks(tag) for line in b.splitlines())]
        if tag.name in ("h1", "h2", "h3", "h4", "h5", "h6"):
            text = clean_inline(self.inline(tag))
            return [text] if text else []
        return self.blocks(tag, skip, heading_level)

    def list_block(self, tag: Tag) -> list[str]:
        lines: list[str] = []
        for number, item in enumerate(tag.find_all("li", recursive=False), start=1):
            marker = f"{number}. " if tag.name == "ol" else "- "
            lines.extend(_item_lines(marker, self.blocks(item)))
        return ["\n".join(lines)] if lines else []

    def definition_list(self, tag: Tag) -> list[str]:
        lines: list[str] = []
        for child in tag.find_all(["dt", "dd"], recursive=False):
            if child.name == "dt":
                term = clean_inline(self.inline(child))
                if term:
                    lines.append(f"- {term}")
            else:
                lines.extend("  " + line if line else line for b in self.blocks(child) for line in b.splitlines())
        return ["\n".join(lines)] if lines else []

    def table(self, tag: Tag) -> list[str]:
        rows = []
        for row in tag.find_all("tr"):
            if row.find_parent("table") is not tag:
                continue
            cells = [clean_inline(self.inline(cell)) for cell in row.find_all(["th", "td"], recursive=False)]
            cells = [cell for cell in cells if cell]
            if cells:
                rows.append(" | ".join(cells))
        return ["\n".join(rows)] if rows else []

    def admonition(self, tag: Tag) -> list[str]:
        label_tag = tag.find("th")
        label = clean_inline(self.inline(label_tag)) if label_tag is not None else ""
        cells = tag.find_all("td")
        content = self.blocks(cells[-1]) if cells else self.blocks(tag)
        if not content:
            return []
        if label:
            colon = "：" if re.search(f"[{_CJK}]", label) else ": "
            content[0] = f"{label}{colon}{content[0]}"
        return content

    def footnote_blocks(self) -> list[str]:
        out = []
        for number, target in enumerate(self.used_footnotes, start=1):
            note = self.footnotes[target]
            text = " ".join(b for b in self.blocks(note))
            text = re.sub(r"^\[\d+\]\s*", "", text)
            if text:
                out.append(f"[{number}] {text}")
        self.used_footnotes = []
        return out


def _item_lines(marker: str, blocks: list[str]) -> list[str]:
    lines: list[str] = []
    for index, text in enumerate(blocks):
        for line_number, line in enumerate(text.splitlines()):
            if index == 0 and line_number == 0:
                lines.append(marker + line)
            else:
                lines.append("  " + line if line else line)
    return lines or [marker.rstrip()]


def section_heading(section: Tag) -> Tag | None:
    titlepage = section.find("div", class_="titlepage", recursive=False)
    if titlepage is None:
        return None
    return titlepage.find(["h1", "h2", "h3", "h4", "h5"])


def child_sections(element: Tag) -> list[Tag]:
    return [c for c in element.find_all("div", recursive=False) if "section" in _classes(c)]


def to_text(blocks: list[str]) -> str:
    return "\n\n".join(b for b in blocks if b.strip()).strip()


def slugify(value: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")


def _read_html(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


# ---------------------------------------------------------------- FAQ


@dataclass
class FaqEntry:
    number: str  # "1.2" / "3.1.1"
    question: str
    chapter_slug: str
    chapter_title: str
    answer: str

    @property
    def filename(self) -> str:
        return f"{self.chapter_slug}-{self.number}.md"


def _is_question(title: str) -> bool:
    return title.rstrip().endswith(("?", "？"))


def parse_faq_chapter(path: Path, suffix: str, min_chars: int) -> tuple[list[FaqEntry], list[str]]:
    """FAQ entries of one chapter file, and notes on entries that were dropped."""
    soup = _read_html(path)
    renderer = Renderer(soup)
    chapter = soup.find("div", class_="chapter")
    if chapter is None:
        return [], [f"{path.name}: no chapter"]
    h1 = chapter.find("h1")
    chapter_title = clean_inline(renderer.inline(h1)) if h1 else ""
    slug = path.name[: -len(suffix)]
    entries: list[FaqEntry] = []
    notes: list[str] = []

    def visit(section: Tag, is_entry: bool) -> None:
        subsections = child_sections(section)
        if is_entry:
            full_title = _title_of(renderer, section)
            match = re.match(r"^\s*(\d+(?:\.\d+)*)\.\s+", full_title)
            question = strip_numbering(full_title)
            # nested sections whose title is a question are entries of their own, left out of this answer
            nested = section.find_all("div", class_="section")
            skip = {id(s) for s in nested if _is_question(_title_of(renderer, s))}
            answer = to_text(renderer.blocks(section, skip=skip) + renderer.footnote_blocks())
            if match is None:
                notes.append(f"{path.name}: section without a number: {full_title!r}")
            elif len(re.sub(r"\s+", "", answer)) < min_chars:
                notes.append(f"{match.group(1)} skipped, answer only {len(answer)} chars: {question!r} -> {answer!r}")
            else:
                entries.append(FaqEntry(match.group(1), question, slug, chapter_title, answer))
        for sub in subsections:
            visit(sub, _is_question(_title_of(renderer, sub)))

    for section in child_sections(chapter):
        visit(section, True)
    return entries, notes


def _title_of(renderer: Renderer, section: Tag) -> str:
    heading = section_heading(section)
    return clean_inline(renderer.inline(heading)) if heading is not None else ""


def _number_key(number: str) -> tuple[int, ...]:
    return tuple(int(part) for part in number.split("."))


# ---------------------------------------------------------------- Debian Reference


@dataclass
class Unit:
    slug: str
    title: str
    blocks: list[str] = field(default_factory=list)

    def size(self) -> int:
        return len(to_text(self.blocks))


@dataclass
class Page:
    filename: str
    title: str
    text: str


def _anchor_slug(section: Tag, fallback: str) -> str:
    heading = section_heading(section)
    anchor = heading.find("a", id=True) if heading is not None else None
    return slugify(anchor["id"]) if anchor is not None and slugify(anchor["id"]) else slugify(fallback)


def _cut(unit: Unit, max_chars: int) -> list[Unit]:
    """Cut a unit larger than max_chars at block (then line) boundaries."""
    pieces: list[str] = []
    for block in unit.blocks:
        if len(block) <= max_chars:
            pieces.append(block)
            continue
        chunk: list[str] = []
        for line in block.splitlines():
            if chunk and len("\n".join(chunk)) + len(line) + 1 > max_chars:
                pieces.append("\n".join(chunk))
                chunk = []
            chunk.append(line)
        if chunk:
            pieces.append("\n".join(chunk))
    parts: list[Unit] = []
    current: list[str] = []
    for piece in pieces:
        if current and len(to_text([*current, piece])) > max_chars:
            parts.append(Unit(unit.slug, unit.title, current))
            current = []
        current.append(piece)
    if current:
        parts.append(Unit(unit.slug, unit.title, current))
    for index, part in enumerate(parts[1:], start=2):
        part.slug = f"{unit.slug}-part{index}"
    return parts


def parse_reference_chapter(path: Path, suffix: str, lang: Language) -> tuple[list[Page], list[str]]:
    soup = _read_html(path)
    renderer = Renderer(soup)
    root = soup.find("div", class_=["chapter", "appendix"])
    if root is None:
        return [], [f"{path.name}: no chapter"]
    chapter = path.name[: -len(suffix)]
    pages: list[Page] = []
    notes: list[str] = []
    for h2_section in child_sections(root):
        h2_title = strip_numbering(_title_of(renderer, h2_section))
        h2_slug = _anchor_slug(h2_section, h2_title)
        whole = renderer.blocks(h2_section, heading_level=2) + renderer.footnote_blocks()
        if len(to_text(whole)) <= lang.page_max_chars:
            units = [Unit(h2_slug, h2_title, whole)]
        else:
            subs = child_sections(h2_section)
            intro = renderer.blocks(h2_section, skip={id(s) for s in subs}) + renderer.footnote_blocks()
            units = [Unit(h2_slug, h2_title, intro)] if intro else []
            for sub in subs:
                title = strip_numbering(_title_of(renderer, sub))
                body = renderer.blocks(sub, heading_level=3) + renderer.footnote_blocks()
                units.extend(_cut(Unit(_anchor_slug(sub, title), title, body), lang.page_max_chars))
        # pack consecutive units into pages of at most page_max_chars
        packed: list[Unit] = []
        for unit in units:
            last = packed[-1] if packed else None
            if last is not None and last.size() + unit.size() + len(unit.title) + 6 <= lang.page_max_chars:
                last.blocks.extend([f"## {unit.title}", *unit.blocks])
            else:
                packed.append(Unit(unit.slug, unit.title, list(unit.blocks)))
        for unit in packed:
            text = to_text(unit.blocks)
            if len(text) < lang.page_min_chars:
                notes.append(f"reference {chapter} {unit.slug}: dropped, {len(text)} chars")
                continue
            pages.append(Page(f"{chapter}-{unit.slug}.md", unit.title, text))
    return pages, notes


# ---------------------------------------------------------------- packages


def _find_deb(folder: Path, package: str) -> Path | None:
    found = sorted(folder.glob(f"{package}_*.deb"))
    return found[-1] if found else None


def fetch_debs(folder: Path) -> dict[str, Path]:
    """The four .deb files in `folder`, downloading the missing ones with `apt-get download`."""
    folder.mkdir(parents=True, exist_ok=True)
    missing = [p for p in PACKAGES if _find_deb(folder, p) is None]
    if missing:
        if shutil.which("apt-get") is None:
            raise BuildError(f"apt-get not found; put {', '.join(missing)} .deb files in {folder} or use --debs")
        try:
            result = subprocess.run(
                ["apt-get", "download", *missing], cwd=folder, capture_output=True, text=True, timeout=600
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BuildError(f"apt-get download failed: {exc}") from exc
        if result.returncode != 0:
            lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
            reason = lines[-1].strip() if lines else f"exit status {result.returncode}"
            raise BuildError(f"apt-get download {' '.join(missing)} failed: {reason} (try: sudo apt-get update)")
    debs = {p: _find_deb(folder, p) for p in PACKAGES}
    absent = [p for p, path in debs.items() if path is None]
    if absent:
        raise BuildError(f"no .deb for {', '.join(absent)} in {folder}")
    return {p: path for p, path in debs.items() if path is not None}


def extract(debs: dict[str, Path], target: Path) -> dict[str, str]:
    """Unpack every .deb into `target`; returns package -> version."""
    if shutil.which("dpkg-deb") is None:
        raise BuildError("dpkg-deb not found (install dpkg)")
    versions = {}
    for package, deb in debs.items():
        for args in (["dpkg-deb", "-x", str(deb), str(target)], ["dpkg-deb", "-f", str(deb), "Version"]):
            try:
                result = subprocess.run(args, capture_output=True, text=True, timeout=300)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise BuildError(f"{' '.join(args[:2])} {deb.name} failed: {exc}") from exc
            if result.returncode != 0:
                reason = next((line.strip() for line in result.stderr.splitlines() if line.strip()), "error")
                raise BuildError(f"{' '.join(args[:2])} {deb.name} failed: {reason}")
        versions[package] = result.stdout.strip()
    return versions


# ---------------------------------------------------------------- build


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip() + "\n", encoding="utf-8")


def build_language(tree: Path, lang: Language, folder: Path) -> dict[str, object]:
    faq_dir = tree / lang.faq_dir
    ref_dir = tree / "usr/share/debian-reference"
    entries: list[FaqEntry] = []
    notes: list[str] = []
    chapter_files = sorted(faq_dir.glob(f"*{lang.faq_suffix}"))
    if not chapter_files:
        raise BuildError(f"no FAQ pages *{lang.faq_suffix} in {faq_dir}")
    for path in chapter_files:
        if path.name[: -len(lang.faq_suffix)] in SKIPPED_FAQ_PAGES:
            continue
        found, dropped = parse_faq_chapter(path, lang.faq_suffix, lang.min_answer_chars)
        entries.extend(found)
        notes.extend(dropped)
    entries.sort(key=lambda e: _number_key(e.number))
    pages: list[Page] = []
    ref_files = sorted(ref_dir.glob(f"ch[0-9][0-9]{lang.reference_suffix}")) + sorted(
        ref_dir.glob(f"ap[a-z]{lang.reference_suffix}")
    )
    if not ref_files:
        raise BuildError(f"no Debian Reference chapters *{lang.reference_suffix} in {ref_dir}")
    for path in ref_files:
        found_pages, dropped = parse_reference_chapter(path, lang.reference_suffix, lang)
        pages.extend(found_pages)
        notes.extend(dropped)

    if folder.exists():
        shutil.rmtree(folder)
    docs = folder / "docs"
    questions = []
    chars = 0
    for entry in entries:
        if entry.question in entry.answer:
            raise BuildError(f"answer {entry.number} ({lang.code}) still contains its question")
        text = f"# {entry.chapter_title}\n\n{entry.answer}"
        _write(docs / "faq" / entry.filename, text)
        chars += len(text)
        questions.append(
            {
                "id": f"faq-{lang.code}-{entry.number}",
                "question": entry.question,
                "relevant": [f"faq/{entry.filename}"],
                "language": lang.code,
            }
        )
    seen: set[str] = set()
    for page in pages:
        if page.filename in seen:
            raise BuildError(f"duplicate reference page name {page.filename}")
        seen.add(page.filename)
        text = f"# {page.title}\n\n{page.text}"
        _write(docs / "reference" / page.filename, text)
        chars += len(text)
    _write(folder / "questions.jsonl", "\n".join(json.dumps(q, ensure_ascii=False) for q in questions))
    return {
        "folder": folder,
        "questions": len(questions),
        "faq_docs": len(entries),
        "reference_pages": len(pages),
        "chars": chars,
        "notes": notes,
    }


def _licenses(tree: Path, versions: dict[str, str]) -> str:
    parts = [
        "# Licences of the generated evaluation sets",
        "",
        "The documents under debian-faq-*/docs are derived from the Debian packages below (FAQ answers and Debian",
        "Reference sections, converted from HTML to plain text). Their copyright and permission notices, quoted",
        "verbatim from each package's usr/share/doc/<package>/copyright, must be kept with every copy.",
    ]
    for package in PACKAGES:
        copyright_file = tree / "usr/share/doc" / package / "copyright"
        notice = copyright_file.read_text(encoding="utf-8") if copyright_file.is_file() else "(no copyright file)"
        parts += ["", f"## {package} {versions.get(package, '')}".rstrip(), "", "```", notice.rstrip(), "```"]
    return "\n".join(parts)


def build(out: Path, debs: Path | None = None) -> dict[str, Path]:
    """Build both sets under `out`; returns {"en": folder, "zh": folder}. Raises `BuildError`."""
    out = Path(out)
    deb_files = fetch_debs(Path(debs) if debs is not None else out / "debs")
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="faq-sets-") as tmp:
        tree = Path(tmp)
        versions = extract(deb_files, tree)
        for lang in LANGUAGES:
            results[lang.code] = build_language(tree, lang, out / f"debian-faq-{lang.code}")
        licenses = _licenses(tree, versions)
    _write(out / "LICENSES.md", licenses)
    for result in results.values():
        _write(Path(str(result["folder"])) / "LICENSES.md", licenses)
    summary = [
        f"{code}: {r['questions']} questions, {r['faq_docs']} FAQ docs, {r['reference_pages']} reference pages, "
        f"{r['chars']} characters"
        for code, r in results.items()
    ]
    readme = [
        "# Debian FAQ retrieval sets (generated by bench/faq_sets.py)",
        "",
        "Sources: " + ", ".join(f"{p} {v}" for p, v in versions.items()) + ".",
        "Each FAQ answer is one document titled by its chapter (the question is not in it); the question is the",
        "query and that answer its relevant document. Debian Reference sections are the distractors.",
        "",
        *[f"- {line}" for line in summary],
    ]
    _write(out / "README.md", "\n".join(readme))
    for line in summary:
        print(line)
    for code, result in results.items():
        for note in result["notes"]:  # type: ignore[union-attr]
            print(f"  [{code}] {note}")
    return {code: Path(str(r["folder"])) for code, r in results.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "data")
    parser.add_argument("--debs", type=Path, default=None, help="folder with the four .deb files")
    args = parser.parse_args(argv)
    try:
        build(args.out, args.debs)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
