"""The evaluation report is one self-contained file: it opens in headless Chromium with no request and no error."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_cli import run_cli
from tests.evaluation.test_eval_command import EVAL_SET


def test_the_report_opens_in_chromium_without_errors(env: Path, capsys, browser, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    code, _, err = run_cli(
        capsys, "eval", str(EVAL_SET), "--instruction", "Prefer setup guides", "--report", str(report)
    )
    assert code == 0, err
    context = browser.new_context()
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(report.as_uri())
    assert page.locator("svg").count() == 2 and page.locator("svg circle").count() >= 2 * 12
    assert "nDCG@10" in page.inner_text("table")
    context.close()
    assert requests == [report.as_uri()] and errors == []
