"""Hard-wrapped text made whole: paragraphs of Markdown and plain text with their wrapped lines joined, the lines
that carry structure (list items, tables, headings, block quotes, code) kept as they are.

Writers wrap paragraphs at ~72 columns; a line end inside a paragraph is not a sentence end, and the reranker, the
LLM and extractive answers all read a passage better without it. Chinese and Japanese wrap without a space.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Han, kana and their punctuation (，。！？、「」 and fullwidth forms): written without spaces between words.
# Hangul is not here: Korean puts spaces between words.
_UNSPACED = re.compile(
    r"[\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u31a0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    r"\ufe30-\ufe4f\uff00-\uffef]"
)
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
_DELIMITED = re.compile(r"^(-{4,}|\.{4,})$")  # AsciiDoc listing/literal block delimiters in plain text
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,9}[.)])(?:\s|$)")
_ORDERED_NOT_ONE = re.compile(r"^\s*(?!0*1[.)])\d{1,9}[.)]")  # cannot start a list inside a paragraph ("in\n2024.")
_QUOTE = re.compile(r"^ {0,3}> ?")
_RULE = re.compile(r"^ {0,3}(?:([-_*])(?:[ \t]*\1){2,}|={3,}|\+{4,}|\^{4,})[ \t]*$")  # breaks, setext underlines
_ATX_HEADING = re.compile(r"^ {0,3}#{1,6}(?:\s|$)")
_TABLE_DELIMITER = re.compile(r"^\s*\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)+\|?\s*$")
_HTML_LINE = re.compile(r"^ {0,3}</?[A-Za-z!?]")
_INDENTED = re.compile(r"^(?: {4}|\t)")


def glue(left: str, right: str) -> str:
    """Two pieces of one wrapped paragraph as one: a space between them, none between Chinese or Japanese."""
    if not left or not right:
        return left or right
    if _UNSPACED.match(left[-1]) and _UNSPACED.match(right[0]):
        return left + right
    return f"{left} {right}"


def join_lines(lines: Iterable[str]) -> str:
    """Lines of one paragraph (PDF text, a wrapped sentence) as one line."""
    text = ""
    for line in lines:
        text = glue(text, line.strip())
    return text


def opens_fence(line: str) -> str | None:
    """The marker (``` or ~~~, at least three) that opens a fenced code block on this line, else None."""
    match = _FENCE.match(line)
    return match.group(1) if match else None


def closes_fence(line: str, marker: str) -> bool:
    """Whether `line` closes the fenced block `marker` opened: the same character, at least as many, nothing else."""
    stripped = line.strip()
    return stripped.startswith(marker) and not stripped.strip(marker[0])


def is_prose_line(line: str) -> bool:
    """A line of running text: not a list item, quote, table row, heading, rule, code fence, HTML or indented code."""
    return bool(line.strip()) and not (
        _LIST_ITEM.match(line)
        or _QUOTE.match(line)
        or _RULE.match(line)
        or _ATX_HEADING.match(line)
        or _FENCE.match(line)
        or _HTML_LINE.match(line)
        or _INDENTED.match(line)
        or line.lstrip().startswith("|")
    )


def paragraphs(text: str, *, plain: bool = False) -> list[str]:
    """The paragraphs of Markdown (`plain`: of a plain-text file), blank-line separated, hard-wrapped lines joined.

    A list item keeps its own line (its wrapped continuation joins it); a block quote's lines are joined inside the
    quote; table rows, headings, rules and HTML lines stay lines; fenced code and indented code (4 spaces after a
    blank line; 8 after a list, where 4 continue the item) stay verbatim, blank lines included. A line ending in two
    spaces (or a backslash, in Markdown) keeps its break. In plain text, a block between `----` or `....` lines is
    verbatim too (AsciiDoc).
    """
    out: list[str] = []
    block: list[str] = []  # finished lines of the paragraph being read
    current: str | None = None  # the line being built: prose or a list item, open to wrapped continuations
    quote: list[str] = []  # the block quote being read, its lines as written
    fence: str | None = None  # the line that closes the open code block
    code_blanks: int | None = None  # inside indented code: blank lines seen since its last line
    code_indent = 4  # the indent that makes code: 4, or 8 under a list item (4 more than the item's text)
    in_list = False  # a list came last: an indented paragraph after a blank line continues its item
    in_table = False
    hard_break = False

    def end_line() -> None:
        nonlocal current
        if current is not None:
            block.append(current)
            current = None

    def end_quote() -> None:
        if quote:
            end_line()
            inner = paragraphs("\n".join(_QUOTE.sub("", line, count=1) for line in quote), plain=plain)
            for number, paragraph in enumerate(inner):
                if number:
                    block.append(">")
                block.extend(f"> {line}" if line.strip() else ">" for line in paragraph.split("\n"))
            quote.clear()

    def end_block() -> None:
        nonlocal in_table, code_blanks
        end_quote()
        end_line()
        joined = "\n".join(block).strip("\n")
        if joined.strip() and not all(_RULE.match(line) for line in block if line):  # a thematic break is no text
            out.append(joined)
        block.clear()
        in_table, code_blanks = False, None

    for raw in text.splitlines():
        line = raw.rstrip()
        if fence is not None:
            block.append(raw)
            if (line.strip() == fence) if plain and _DELIMITED.match(fence) else closes_fence(line, fence):
                fence = None
            continue
        if code_blanks is not None:  # indented code goes on across blank lines while lines stay indented
            if not line:
                code_blanks += 1
                continue
            if _indent(raw) >= code_indent:
                block.extend([""] * code_blanks + [raw])
                code_blanks = 0
                continue
            if plain and code_blanks == 0 and len(block) == 1:  # an indented first line of a paragraph
                current, code_blanks = block.pop().strip(), None
            else:
                end_block()
        if not line:
            end_block()
            continue
        at_start = not block and current is None and not quote
        marker = opens_fence(line) or (line.strip() if plain and at_start and _DELIMITED.match(line) else None)
        if marker:
            end_quote()
            end_line()
            block.append(raw)
            fence, in_list = marker, False
            continue
        code_indent = 8 if in_list else 4
        if at_start and _indent(raw) >= code_indent:
            block.append(raw)
            code_blanks = 0
            continue
        if _QUOTE.match(line) or (quote and is_prose_line(line)):  # a quote, or a lazy line of one
            end_line()
            quote.append(line)
            continue
        end_quote()
        broke, hard_break = hard_break, raw.endswith("  ") or (not plain and line.endswith("\\"))
        if not plain and line.endswith("\\"):
            line = line[:-1].rstrip()
        if _TABLE_DELIMITER.match(line) and current is not None and "|" in current:
            in_table = True  # a table without outer pipes: the line before was its header
        if (
            _RULE.match(line)
            or _ATX_HEADING.match(line)
            or (not plain and _HTML_LINE.match(line))
            or line.lstrip().startswith("|")
            or (in_table and "|" in line)
        ):
            end_line()
            block.append(line)
            continue
        if _LIST_ITEM.match(line) and not (current is not None and not in_list and _ORDERED_NOT_ONE.match(line)):
            end_line()
            current, in_list = line, True
        elif current is not None and not broke:
            current = glue(current, line.strip())
        else:
            end_line()
            indented = in_list and at_start and line[:1].isspace()  # a later paragraph of a list item
            current = line if indented else line.strip()
            in_list = in_list and (indented or not at_start)
    end_block()
    return out


def _indent(line: str) -> int:
    return len(line.expandtabs(4)) - len(line.expandtabs(4).lstrip())
