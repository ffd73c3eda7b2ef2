from pathlib import Path

import pytest

from retrieval.errors import DocumentLoadError
from retrieval.loaders import load_document


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_markdown_front_matter_headings_and_paragraphs(tmp_path: Path) -> None:
    doc = load_document(
        write(
            tmp_path / "saml.md",
            "---\ntitle: Configure SAML\nurl: https://docs.example/saml\n---\n# Configure SAML\n\nIntro text.\n\n"
            "## Okta\n\nStep one.\nStill step one.\n\n### Certificates\n\n```\ncode block\n\n# not a heading\n```\n"
            "\n## Azure\n\n- item a\n- item b\n",
        )
    )
    assert doc.title == "Configure SAML"
    assert doc.source == "https://docs.example/saml"
    assert [(b.section, b.text) for b in doc.blocks] == [
        ((), "Intro text."),
        (("Okta",), "Step one. Still step one."),  # a wrapped paragraph is one line
        (("Okta", "Certificates"), "```\ncode block\n\n# not a heading\n```"),
        (("Azure",), "- item a\n- item b"),
    ]


def test_markdown_without_front_matter_uses_h1_and_path(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path / "billing-faq.md", "# Billing FAQ\n\nWe accept cards.\n"))
    assert doc.title == "Billing FAQ"
    assert doc.source == str(tmp_path / "billing-faq.md")


def test_html_strips_boilerplate_and_keeps_heading_path(tmp_path: Path) -> None:
    html = """<html><head><meta charset="utf-8"><title>数据导出</title>
    <link rel="canonical" href="https://docs.example/data/export"></head><body>
    <nav>Home | Docs</nav><h1>数据导出</h1><p>管理员可以导出全部数据。</p>
    <h2>导出格式</h2><ul><li>CSV</li><li>JSON</li></ul><script>var x = 1;</script>
    <footer>© Nimbus</footer></body></html>"""
    doc = load_document(write(tmp_path / "export.html", html))
    assert doc.title == "数据导出"
    assert doc.source == "https://docs.example/data/export"
    texts = [b.text for b in doc.blocks]
    assert texts == ["管理员可以导出全部数据。", "- CSV", "- JSON"]
    assert doc.blocks[1].section == ("导出格式",)
    assert not any("Home" in t or "Nimbus" in t or "var x" in t for t in texts)


def test_text_first_line_is_title(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path / "notes.txt", "Release notes\n\nFirst paragraph.\n\nSecond one.\n"))
    assert doc.title == "Release notes"
    assert [b.text for b in doc.blocks] == ["First paragraph.", "Second one."]


def test_gb18030_text_is_decoded(tmp_path: Path) -> None:
    path = tmp_path / "legacy.txt"
    path.write_bytes("旧系统说明\n\n这是用GBK编码的文件。".encode("gb18030"))
    assert load_document(path).blocks[0].text == "这是用GBK编码的文件。"


def test_pdf_text_is_extracted_per_page(tmp_path: Path) -> None:
    fpdf = pytest.importorskip("fpdf", reason="fpdf2 (a dev dependency) writes the test PDF")
    pdf = fpdf.FPDF()
    for text in ("Encryption at rest uses AES-256.", "Audit logs are kept for 365 days."):
        pdf.add_page()
        pdf.set_font("Helvetica", size=12)
        pdf.multi_cell(0, 8, text)
    pdf.set_title("Security Whitepaper")
    path = tmp_path / "whitepaper.pdf"
    pdf.output(str(path))
    doc = load_document(path)
    assert doc.title == "Security Whitepaper"
    assert [(b.section, b.text) for b in doc.blocks] == [
        (("Page 1",), "Encryption at rest uses AES-256."),
        (("Page 2",), "Audit logs are kept for 365 days."),
    ]


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("broken.pdf", b"%PDF-1.4\nthis is not really a pdf", "not a readable PDF"),
        ("empty.md", b"---\ntitle: x\n---\n\n", "no text found"),
        ("binary.txt", bytes(range(256)) * 4, "not UTF-8 .* nor GB18030 or Latin-1"),
        ("slides.pptx", b"PK", "not a readable PowerPoint file"),
        ("drawing.vsdx", b"PK", "unsupported file type"),
    ],
)
def test_unreadable_files_raise_a_clear_error(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DocumentLoadError, match=reason):
        load_document(path)


def test_front_matter_is_yaml_and_becomes_metadata(tmp_path: Path) -> None:
    doc = load_document(
        write(
            tmp_path / "sso.md",
            "---\ntitle: 'SSO: SAML and OIDC'\ntags: [security, sso]\nupdated: 2026-11-03\nauthor: Dana\n"
            "product:\n  tier: enterprise\n  regions:\n    - eu\n    - us\n---\n# SSO\n\nSAML is supported.\n",
        )
    )
    assert doc.title == "SSO: SAML and OIDC"  # a colon inside a quoted value: real YAML, not key: value lines
    assert doc.meta == {
        "tags": ["security", "sso"],
        "updated": "2026-11-03",
        "author": "Dana",
        "product.tier": "enterprise",
        "product.regions": ["eu", "us"],
    }
    comma_tags = load_document(write(tmp_path / "b.md", "---\ntags: billing, invoices\n---\nText.\n"))
    assert comma_tags.meta == {"tags": ["billing", "invoices"]}


def test_front_matter_that_is_not_yaml_stays_text(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path / "odd.md", "---\n: [unclosed\n---\nBody text.\n"))
    assert doc.meta == {}
    assert "unclosed" in " ".join(block.text for block in doc.blocks)


def test_fetched_content_loads_like_a_file(tmp_path: Path) -> None:
    from retrieval.loaders import load_content

    page = load_content(
        b"<html><head><title>Limits</title></head><body><p>600 requests a minute.</p></body></html>", "page.html"
    )
    assert page.title == "Limits" and "600 requests" in page.blocks[0].text
    markdown = load_content("---\ntags: [api]\n---\n# Rate limits\n\n600 a minute.\n", "README.md")
    assert (markdown.title, markdown.meta) == ("Rate limits", {"tags": ["api"]})
    legacy = load_content("数据导出说明\n\n每分钟600次请求。".encode("gb18030"), "notes.txt")
    assert legacy.encoding == "GB18030" and "每分钟600次" in legacy.blocks[0].text
    with pytest.raises(DocumentLoadError, match="not a readable PDF"):
        load_content(b"%PDF-1.4 broken", "guide.pdf")
    with pytest.raises(DocumentLoadError, match="unsupported file type"):
        load_content(b"x", "data.csv")
