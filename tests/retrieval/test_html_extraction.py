# ruff: noqa: E501 - the pages below keep the long lines real generated HTML has
"""Real-world HTML shapes go through ingestion with their prose and without their navigation (issue 17: the old
loader kept p/li/pre/td only, so DocBook's `div.para` prose was dropped and navigation was indexed instead)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from retrieval import ingest_path
from retrieval.errors import DocumentLoadError
from retrieval.loaders import load_document

DOCBOOK = """<?xml version="1.0" encoding="UTF-8"?>
<html xmlns="http://www.w3.org/1999/xhtml"><head><meta http-equiv="Content-Type" content="text/html; charset=UTF-8"/>
<title>8.2. 配置网络</title><link rel="stylesheet" href="debian.css"/></head><body>
<div class="navheader"><table width="100%" summary="Navigation header"><tr><th colspan="3" align="center">8.2. 配置网络</th></tr>
<tr><td width="20%" align="left"><a accesskey="p" href="sect.config-lang.html">上一页</a></td><th width="60%" align="center">第 8 章 基础设置</th>
<td width="20%" align="right"><a accesskey="n" href="sect.hostname-name-service.html">下一页</a></td></tr></table><hr/></div>
<div class="section"><div class="titlepage"><div><div><h2 class="title"><a id="sect.config-network"></a>8.2. 配置网络</h2></div></div></div>
<div class="para">系统启动时，网络接口由 ifup 命令根据 /etc/network/interfaces 文件中的配置进行初始化。每个接口都由 iface 段落描述。</div>
<div class="para">The <code class="filename">/etc/network/interfaces</code> file contains one stanza per interface; the <code class="literal">auto</code> keyword brings an interface up at boot.</div>
<div class="section"><div class="titlepage"><div><div><h3 class="title"><a id="sect.config-dhcp"></a>8.2.1. 以太网接口</h3></div></div></div>
<div class="para">如果计算机有以太网卡，可以通过 DHCP 自动获取地址，配置文件中写入 iface eth0 inet dhcp 即可。</div>
<div class="para">A static address needs the address, netmask and gateway lines under an iface eth0 inet static stanza.</div>
</div></div>
<div class="navfooter"><hr/><table width="100%" summary="Navigation footer"><tr><td width="40%" align="left"><a accesskey="p" href="a.html">上一页</a> </td>
<td width="20%" align="center"><a accesskey="u" href="b.html">上一级</a></td><td width="40%" align="right"> <a accesskey="n" href="c.html">下一页</a></td></tr>
<tr><td width="40%" align="left" valign="top">8.1. 语言设置 </td><td width="20%" align="center"><a accesskey="h" href="index.html">起始页</a></td>
<td width="40%" align="right" valign="top"> 8.3. 设置主机名</td></tr></table></div>
</body></html>"""

MANPAGE = """<html><head><title>git-stash(1)</title></head><body>
<div id="header"><h1>git-stash(1) Manual Page</h1></div>
<div id="content">
<div class="sect1"><h2 id="_name">NAME</h2><div class="sectionbody"><div class="paragraph"><p>git-stash - Stash the changes in a dirty working directory away</p></div></div></div>
<div class="sect1"><h2 id="_synopsis">SYNOPSIS</h2><div class="sectionbody"><div class="verseblock"><pre class="content">git stash list [&lt;log-options&gt;]
git stash show [-u|--include-untracked] [&lt;stash&gt;]
git stash drop [-q|--quiet] [&lt;stash&gt;]</pre></div></div></div>
<div class="sect1"><h2 id="_options">OPTIONS</h2><div class="sectionbody"><div class="dlist"><dl>
<dt class="hdlist1">-k, --keep-index</dt><dd><p>All changes already added to the index are left intact.</p></dd>
<dt class="hdlist1">-u, --include-untracked</dt><dd>Untracked files are also stashed and then cleaned up with git clean.</dd>
</dl></div></div></div></div>
<div id="footer"><div id="footer-text">Last updated 2024-01-01 12:00:00 UTC</div></div>
</body></html>"""

SPHINX = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"/><title>Connection Pooling &#8212; PoolDB 3.2 documentation</title></head><body>
<div class="related" role="navigation" aria-label="related navigation"><h3>Navigation</h3><ul><li class="right"><a href="genindex.html">index</a></li><li><a href="next.html">next</a> |</li><li><a href="prev.html">previous</a> |</li></ul></div>
<div class="document"><div class="documentwrapper"><div class="bodywrapper"><div class="body" role="main">
<section id="connection-pooling"><h1>Connection Pooling<a class="headerlink" href="#connection-pooling">¶</a></h1>
<p>A pool keeps idle connections open so that each request does not pay for a new TCP and TLS handshake.</p>
<section id="configuration"><h2>Configuration<a class="headerlink" href="#configuration">¶</a></h2>
<p>Set the pool size with <code class="docutils literal"><span class="pre">max_connections</span></code>; the default is twenty connections per worker.</p>
<div class="highlight-python notranslate"><div class="highlight"><pre><span></span><span class="n">pool</span> <span class="o">=</span> <span class="n">Pool</span><span class="p">(</span><span class="n">max_connections</span><span class="o">=</span><span class="mi">20</span><span class="p">)</span>
</pre></div></div>
<table class="docutils align-default"><thead><tr class="row-odd"><th class="head"><p>Setting</p></th><th class="head"><p>Default</p></th></tr></thead>
<tbody><tr class="row-even"><td><p>idle_timeout</p></td><td><p>300 seconds</p></td></tr><tr class="row-odd"><td><p>max_lifetime</p></td><td><p>3600 seconds</p></td></tr></tbody></table>
</section></section></div></div></div>
<div class="sphinxsidebar" role="navigation" aria-label="main navigation"><div class="sphinxsidebarwrapper"><h3>Table of Contents</h3><ul><li><a href="quickstart.html">Quickstart tutorial</a></li><li><a href="advanced.html">Advanced topics</a></li></ul>
<div id="searchbox"><h3>Quick search</h3><form><input type="text" name="q"/><input type="submit" value="Go"/></form></div></div></div></div>
<div class="footer">&#169; Copyright 2024, PoolDB Authors. Created using Sphinx 7.2.6.</div>
</body></html>"""


def _nav_footer_docbook(body: str, title: str = "8.5. 配置用户") -> str:
    """A DocBook page whose main content is `body`, between the Handbook's navigation header and footer."""
    return (
        f'<html><head><meta charset="UTF-8"/><title>{title}</title></head><body>'
        '<div class="navheader"><table><tr><td><a href="p.html">上一页</a></td><th>第 8 章 基础设置</th>'
        '<td><a href="n.html">下一页</a></td></tr></table></div>'
        f"{body}"
        '<div class="navfooter"><table><tr><td><a href="p.html">上一页</a></td><td><a href="u.html">上一级</a></td>'
        '<td><a href="n.html">下一页</a></td></tr><tr><td><a href="index.html">起始页</a></td></tr></table></div>'
        "</body></html>"
    )


def indexed(index, collection: str) -> list[dict]:
    payloads, offset = index.scroll_payloads(collection, ["path", "section", "text", "title"])
    assert offset is None
    return list(payloads)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "sect.config-network.html").write_text(DOCBOOK, encoding="utf-8")
    (folder / "git-stash.html").write_text(MANPAGE, encoding="utf-8")
    (folder / "pooling.html").write_text(SPHINX, encoding="utf-8")
    return folder


def test_docbook_man_and_sphinx_pages_are_indexed_with_their_prose_not_their_navigation(
    index, embedder, site: Path
) -> None:
    summary = ingest_path(site, index, embedder, "kb")
    assert len(summary.added) == 3 and not summary.failed and not summary.low_yield()
    points = indexed(index, "kb")
    by_file: dict[str, list[dict]] = {}
    for point in points:
        by_file.setdefault(Path(point["path"]).name, []).append(point)
    text = {name: "\n".join(p["section"] + "\n" + p["text"] for p in chunks) for name, chunks in by_file.items()}

    docbook = text["sect.config-network.html"]
    # The prose the old loader dropped (div.para), in Chinese and English, under its own headings.
    assert "网络接口由 ifup 命令根据 /etc/network/interfaces 文件中的配置进行初始化" in docbook
    assert "one stanza per interface; the auto keyword brings an interface up at boot" in docbook
    assert "iface eth0 inet dhcp" in docbook and "iface eth0 inet static" in docbook
    assert {p["section"] for p in by_file["sect.config-network.html"]} == {"", "8.2.1. 以太网接口"}
    assert by_file["sect.config-network.html"][0]["title"] == "8.2. 配置网络"
    for navigation in ("上一页", "下一页", "上一级", "起始页", "第 8 章", "语言设置", "设置主机名"):
        assert navigation not in docbook

    man = text["git-stash.html"]
    assert "Stash the changes in a dirty working directory away" in man
    assert "git stash list [<log-options>]\ngit stash show" in man  # the synopsis keeps its lines
    assert "--keep-index: All changes already added to the index are left intact." in man  # dt with its dd
    assert "Untracked files are also stashed" in man
    assert {p["section"].split(" > ")[-1] for p in by_file["git-stash.html"]} == {"NAME", "SYNOPSIS", "OPTIONS"}
    assert "Last updated" not in man

    sphinx = text["pooling.html"]
    assert "does not pay for a new TCP and TLS handshake" in sphinx
    assert "Connection Pooling > Configuration" in sphinx  # the heading path, without the ¶ header links
    assert "¶" not in sphinx
    assert "pool = Pool(max_connections=20)" in sphinx
    assert "idle_timeout | 300 seconds" in sphinx and "max_lifetime | 3600 seconds" in sphinx
    for navigation in ("Quickstart tutorial", "Advanced topics", "Quick search", "Table of Contents", "Copyright"):
        assert navigation not in sphinx
    assert "previous" not in sphinx.lower() and "genindex" not in sphinx

    for name, result in summary.yields.items():
        assert result.chars > 0.5 * result.source_chars, name  # most of each page's visible text is kept


def test_the_old_loss_is_measured_docbook_prose_is_most_of_the_page(tmp_path: Path) -> None:
    prose = "".join(
        f'<div class="para">第 {i} 段：用户帐户由 adduser 命令创建，它会询问全名和密码。</div>' for i in range(30)
    )
    path = tmp_path / "sect.user.html"
    path.write_text(_nav_footer_docbook(f'<div class="section"><h2>8.5. 配置用户</h2>{prose}</div>'), "utf-8")
    doc = load_document(path)
    assert doc.text_chars() >= 0.9 * len(
        "".join(f"第 {i} 段：用户帐户由 adduser 命令创建，它会询问全名和密码。" for i in range(30))
    )
    assert all("上一页" not in b.text and "起始页" not in b.text for b in doc.blocks)


def test_a_tiny_page_still_yields_its_text(tmp_path: Path) -> None:
    path = tmp_path / "tiny.html"
    path.write_text("<html><body><p>Ports: 8080.</p></body></html>", encoding="utf-8")
    doc = load_document(path)
    assert [b.text for b in doc.blocks] == ["Ports: 8080."]


def test_a_navigation_only_page_is_flagged_not_failed(index, embedder, tmp_path: Path) -> None:
    """The Handbook page that became 98 characters of navigation: ingest now says so instead of "0 failed"."""
    folder = tmp_path / "kb"
    folder.mkdir()
    scripts = "".join(f"<script>var page{i} = {'x' * 200!r};</script>" for i in range(40))  # a large page
    (folder / "index.html").write_text(
        _nav_footer_docbook(f"{scripts}<div class='toc'><a href='a.html'>8.1 语言设置</a></div>", "目录"), "utf-8"
    )
    (folder / "good.md").write_text("# Good\n\n" + "A full page of text. " * 20, encoding="utf-8")
    summary = ingest_path(folder, index, embedder, "kb")
    assert not summary.failed and len(summary.added) == 2
    flagged = summary.low_yield()
    assert [Path(p).name for p in flagged] == ["index.html"]
    result = summary.yields[flagged[0]]
    assert result.file_bytes > 5_000 and result.chars < 200


def test_latin1_text_is_read_and_reported(index, embedder, tmp_path: Path) -> None:
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "notes.txt").write_bytes("Notes de version\n\nLe café est prêt à être servi à 8 h.".encode("latin-1"))
    (folder / "guide.md").write_bytes("# Größe\n\nDie Größe für Übergrößen ändern.".encode("latin-1"))
    summary = ingest_path(folder, index, embedder, "kb")
    assert not summary.failed
    texts = {Path(p["path"]).name: p["text"] for p in indexed(index, "kb")}
    assert texts["notes.txt"] == "Le café est prêt à être servi à 8 h."
    assert texts["guide.md"] == "Die Größe für Übergrößen ändern."
    assert {y.encoding for y in summary.yields.values()} == {"Windows-1252 (Latin-1)"}


def test_an_undecodable_file_is_refused_with_an_encoding_hint(tmp_path: Path) -> None:
    path = tmp_path / "dump.txt"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(DocumentLoadError, match=r"not UTF-8 .*convert it to UTF-8 \(e\.g\. iconv"):
        load_document(path)


def test_parser_warnings_are_counted_per_file_not_printed(tmp_path: Path, capsys) -> None:
    """bs4 warns about XML-declared pages and pypdf logs about broken cross-reference tables: those go on the
    document (the ingest summary counts them per file) instead of being printed over the progress bar."""
    fpdf = pytest.importorskip("fpdf", reason="fpdf2 (a dev dependency) writes the test PDF")
    page = tmp_path / "chapter.html"
    page.write_text('<?xml version="1.0"?><chapter><para>Backups run nightly at 02:00.</para></chapter>', "utf-8")
    pdf = fpdf.FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.multi_cell(0, 8, "Audit logs are kept for 365 days.")
    raw = bytes(pdf.output())
    offset = raw.rindex(b"startxref\n") + len(b"startxref\n")
    end = raw.index(b"\n", offset)
    broken = tmp_path / "broken-xref.pdf"
    broken.write_bytes(raw[:offset] + str(int(raw[offset:end]) + 7).encode() + raw[end:])

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning escaping load_document fails the test
        html_doc = load_document(page)
        pdf_doc = load_document(broken)
    assert [b.text for b in html_doc.blocks] == ["Backups run nightly at 02:00."]  # the text is kept, too
    assert any("XML document" in w for w in html_doc.warnings)
    assert [b.text for b in pdf_doc.blocks] == ["Audit logs are kept for 365 days."]
    assert any("startxref" in w for w in pdf_doc.warnings)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_ingest_command_reports_each_files_yield_and_flags_a_near_empty_one(env: Path, capsys, tmp_path: Path) -> None:
    from tests.e2e.test_cli import run_cli

    folder = tmp_path / "handbook"
    folder.mkdir()
    scripts = "".join(f"<script>var page{i} = {'x' * 200!r};</script>" for i in range(40))
    (folder / "index.html").write_text(_nav_footer_docbook(f"{scripts}<p>目录</p>", "目录"), "utf-8")
    (folder / "sect.config-network.html").write_text(DOCBOOK, encoding="utf-8")
    (folder / "notes.txt").write_bytes("Notes\n\nLe café est prêt.".encode("latin-1"))
    code, out, err = run_cli(capsys, "ingest", str(folder), "--collection", "handbook")
    assert code == 0, err  # a warning, not a failure
    flat_out, flat_err = " ".join(out.split()), " ".join(err.split())
    assert "3 added" in flat_out and "0 failed" in flat_out and "1 with almost no text" in flat_out
    assert "sect.config-network.html: 353 characters from" in flat_out
    assert "read as Windows-1252 (Latin-1)" in flat_out
    assert "warning:" in flat_err and "index.html yielded only 2 characters" in flat_err
