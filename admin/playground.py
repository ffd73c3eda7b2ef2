"""The rerank playground's logic: parse pasted candidates, pick the instruction, export the ranking as CSV.
The ranking itself is the answer service's (`AnswerService.rank`)."""

from __future__ import annotations

import csv
import io
import re

from markupsafe import Markup, escape

from admin.exports import csv_cell
from bot.answering import MAX_QUESTION_CHARS, Candidate, RankedCandidate, instruction_or_default

MAX_CANDIDATES = 100
MAX_CANDIDATE_CHARS = 4000
MAX_INSTRUCTION_CHARS = 2000
CSV_HEADER = ("rank", "score", "line", "text")
# The largest rank form a browser sends: every field at its limit, each character percent-encoded as up to 9
# bytes (a Chinese character is %E4%B8%AD), plus the field names and the CSRF token.
MAX_FORM_BYTES = (MAX_CANDIDATES * (MAX_CANDIDATE_CHARS + 2) + MAX_INSTRUCTION_CHARS + MAX_QUESTION_CHARS) * 9 + 4096

EXAMPLE_QUERY = "Can a Starter customer use SSO with Okta, and who issues their invoices?"
EXAMPLE_CANDIDATES = "\n".join(
    [
        "SSO is not available on the Starter plan; an Owner must upgrade to Business or Enterprise first.",
        "Nimbus Desk works with any SAML 2.0 identity provider, with step-by-step guides for Okta and Entra ID.",
        "Starter 套餐无法使用 SSO，需要由账户所有者在管理中心升级到 Business 或 Enterprise。",
        "Customers in the US and other countries receive invoices from Nimbus Labs, Inc. in USD.",
        "中国区客户的发票由上海云桥信息科技有限公司开具，税率 6%。",
        "Nimbus Desk invoices are issued electronically and are valid without a signature or company stamp.",
        "数电发票带有税务机关的电子签名，无需加盖发票专用章。",
        "On the Business plan each API token may send 600 requests per minute.",
    ]
)


class PlaygroundError(ValueError):
    """Unusable input; `field` names the form field the message belongs next to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def parse_query(query: str) -> str:
    text = query.strip()
    if not text:
        raise PlaygroundError("query", "Enter a query to rank the candidates against.")
    if len(text) > MAX_QUESTION_CHARS:
        raise PlaygroundError("query", f"The query is {len(text):,} characters; the limit is {MAX_QUESTION_CHARS:,}.")
    return text


def parse_candidates(text: str) -> list[tuple[int, str]]:
    """(line number, text) of each non-blank line: one document per line."""
    found = [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not found:
        raise PlaygroundError("candidates", "Paste at least one candidate document, one per line.")
    if len(found) > MAX_CANDIDATES:
        raise PlaygroundError(
            "candidates", f"There are {len(found)} candidates; the limit is {MAX_CANDIDATES}. Remove some lines."
        )
    for n, line in found:
        if len(line) > MAX_CANDIDATE_CHARS:
            raise PlaygroundError(
                "candidates", f"Line {n} is {len(line):,} characters; each candidate may have {MAX_CANDIDATE_CHARS:,}."
            )
    return found


def as_candidates(lines: list[tuple[int, str]]) -> list[Candidate]:
    """Pasted lines as candidates to rank: the text alone (no title or section), its line as its place."""
    return [Candidate(f"line-{n}", "", "", "", "", text, retrieval_rank=n, retrieval_score=0.0) for n, text in lines]


def choose_instruction(custom: str, preset_instruction: str | None) -> tuple[str, str]:
    """(instruction, where it came from): the custom one, else the preset's, else the reranker's default."""
    custom = custom.strip()
    if len(custom) > MAX_INSTRUCTION_CHARS:
        raise PlaygroundError(
            "instruction", f"The instruction is {len(custom):,} characters; the limit is {MAX_INSTRUCTION_CHARS:,}."
        )
    if custom:
        return custom, "custom"
    return instruction_or_default(preset_instruction), "preset" if (preset_instruction or "").strip() else "default"


def to_csv(rows: list[RankedCandidate]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for r in rows:
        cells = (r.rerank_rank, round(r.rerank_score or 0.0, 6), r.candidate.retrieval_rank, r.candidate.text)
        writer.writerow([csv_cell(cell) for cell in cells])
    return out.getvalue()


_MD_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
_MD_BOLD = re.compile(r"\*\*(.+?)\*\*")


def answer_html(text: str) -> Markup:
    """An answer's text as Slack would show it: escaped, with Markdown bold and http(s) links."""
    html = str(escape(text))
    html = _MD_LINK.sub(lambda m: f'<a href="{m.group(2)}" rel="noreferrer">{m.group(1)}</a>', html)
    return Markup(_MD_BOLD.sub(r"<strong>\1</strong>", html))
