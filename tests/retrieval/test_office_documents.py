"""Word, PowerPoint and Excel files, made here with their writer libraries (python-docx, python-pptx, openpyxl), go
through markitdown to Markdown: their headings, slide titles, sheet names and tables become the sections the
chunker sees, a broken file is refused with a reason, and `ragbot ask` cites them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval.errors import DocumentLoadError
from retrieval.loaders import load_document
from tests.e2e.test_cli import run_cli


def make_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_heading("Zorvex single sign-on guide", 1)
    document.add_paragraph("Zorvex connects to Okta through SAML: add the Zorvex app in the Okta admin console.")
    document.add_heading("Attribute mapping", 2)
    table = document.add_table(rows=3, cols=2)
    for row, (name, value) in enumerate([("Attribute", "Okta value"), ("email", "user.email"), ("name", "user.name")]):
        table.cell(row, 0).text, table.cell(row, 1).text = name, value
    document.add_heading("发票抬头", 2)
    document.add_paragraph("Zorvex 开具增值税专用发票时需要公司的纳税人识别号。")
    document.save(path)
    return path


def make_pptx(path: Path) -> Path:
    import pptx
    from pptx.util import Inches

    deck = pptx.Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[1])
    first.shapes.title.text = "Quarzel pricing 2026"
    first.placeholders[1].text = "The Quarzel Enterprise plan includes audit logs and single sign-on."
    second = deck.slides.add_slide(deck.slide_layouts[5])
    second.shapes.title.text = "Quarzel rate limits"
    table = second.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(6), Inches(1)).table
    for column, (head, value) in enumerate([("Quarzel plan", "Pro"), ("Requests per minute", "1200")]):
        table.cell(0, column).text, table.cell(1, column).text = head, value
    deck.save(path)
    return path


def make_xlsx(path: Path) -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Vellmar price list"
    sheet.append(["Vellmar plan", "Seats", "Monthly price"])
    sheet.append(["Vellmar Team", 10, "$149"])
    sheet.append(["Vellmar Scale", 250, "$2,400"])
    book.save(path)
    return path


def sections(doc) -> dict[tuple[str, ...], str]:
    found: dict[tuple[str, ...], str] = {}
    for block in doc.blocks:
        found[block.section] = found.get(block.section, "") + block.text + "\n"
    return found


def test_a_word_document_keeps_its_headings_and_tables(tmp_path: Path) -> None:
    doc = load_document(make_docx(tmp_path / "sso.docx"))
    assert doc.title == "Zorvex single sign-on guide"
    parts = sections(doc)
    assert "add the Zorvex app in the Okta admin console" in parts[()]
    assert "| email | user.email |" in parts[("Attribute mapping",)]  # the table, as a Markdown table
    assert "纳税人识别号" in parts[("发票抬头",)]


def test_slides_become_sections_and_their_tables_stay_tables(tmp_path: Path) -> None:
    doc = load_document(make_pptx(tmp_path / "pricing.pptx"))
    assert doc.title == "Quarzel pricing 2026"  # the first slide's title
    parts = sections(doc)
    assert "Enterprise plan includes audit logs" in parts[()]
    assert "| Pro | 1200 |" in parts[("Quarzel rate limits",)]
    assert not any("Slide number" in text for text in parts.values())  # markitdown's slide markers are dropped


def test_each_sheet_is_a_section_holding_its_table(tmp_path: Path) -> None:
    doc = load_document(make_xlsx(tmp_path / "prices.xlsx"))
    table = sections(doc)[("Vellmar price list",)]
    assert "| Vellmar plan | Seats | Monthly price |" in table and "| Vellmar Scale | 250 | $2,400 |" in table


@pytest.mark.parametrize(
    ("name", "kind"), [("broken.docx", "Word"), ("broken.pptx", "PowerPoint"), ("x.xlsx", "Excel")]
)
def test_a_broken_office_file_is_refused_with_a_reason(tmp_path: Path, name: str, kind: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"PK\x03\x04 this is not really a zip archive")
    with pytest.raises(DocumentLoadError, match=f"not a readable {kind} file"):
        load_document(path)


def test_ask_cites_office_documents(env: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RERANK_URL", "http://127.0.0.1:9")  # closed: answers in retrieval order, not a random model's
    folder = tmp_path / "office"
    folder.mkdir()
    made = {make_docx(folder / "sso.docx"), make_pptx(folder / "pricing.pptx"), make_xlsx(folder / "prices.xlsx")}
    code, out, err = run_cli(capsys, "ingest", str(folder))
    assert code == 0, err
    assert "3 added" in out + err
    assert "yielded only" not in out + err  # a deck's template bytes are not taken for lost text

    def cited(question: str) -> set[str]:
        code, out, _ = run_cli(capsys, "ask", question, "--json")
        assert code == 0
        return {Path(c["source"]).name for c in json.loads(out)["citations"]}

    assert "sso.docx" in cited("How do I map the email attribute for Zorvex in Okta?")
    assert "pricing.pptx" in cited("How many requests per minute does the Quarzel Pro plan allow?")
    assert "prices.xlsx" in cited("What is the monthly price of Vellmar Scale?")  # quoted as a table row
    assert {path.name for path in made} == {"sso.docx", "pricing.pptx", "prices.xlsx"}
