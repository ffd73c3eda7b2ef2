"""Credentials inside RERANK_URL, QDRANT_URL and LLM_BASE_URL, with each server down (a closed port): the answer
and its Slack message, the rerank status, the ranking log row, the reviewer's pages and CSV, the playground,
/readyz and the command line say what failed and where, and never the secret."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

import store
from bot.answering import AnswerError
from tests.admin.conftest import PASSWORD, signed_in_clients
from tests.e2e.test_cli import closed_port, run_cli

SECRET = "s3cret"
QUESTION = "Can we integrate single sign-on for this customer?"


def leaks(*texts: object) -> list[str]:
    return [str(t) for t in texts if SECRET in str(t)]


@pytest.fixture
def remote_env(env: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The reranker and the LLM are remote, with credentials in their URLs, and nothing listens there."""
    urls = {
        "RERANK_URL": f"http://ragbot:{SECRET}@127.0.0.1:{closed_port()}/",
        "LLM_BASE_URL": f"http://llm:{SECRET}@127.0.0.1:{closed_port()}/v1?api_key={SECRET}",
    }
    for name, value in urls.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LLM_TIMEOUT", "2")
    return urls


@pytest.fixture
def parts(remote_env: dict[str, str], embedder) -> Iterator:
    from bot.app import Components
    from bot.settings import Settings

    components = Components(Settings(), embedder=embedder)
    yield components
    components.close()


def test_a_remote_reranker_and_llm_that_are_down(parts, remote_env: dict[str, str]) -> None:
    from admin import create_admin_app
    from admin.users import create_user
    from bot.app.health import readiness
    from bot.app.web import create_http_app
    from bot.slack import blocks

    result = parts.answers.ask(QUESTION, channel="C1", user="U1")
    assert not result.rerank.ok and "ragbot:***@127.0.0.1" in result.rerank  # says where it failed
    assert result.note and "The LLM could not answer" in result.note
    view = blocks.AnswerView.from_result(result)
    assert not leaks(result.answer, result.rerank, result.reranker, result.note, result.to_json())
    assert not leaks(*[(message.text, message.blocks) for message in blocks.answer_messages(view)])

    with pytest.raises(AnswerError) as failed:
        parts.answers.ask(QUESTION, channel="C1", user="U1", require_rerank=True)
    assert "Reranking is required" in str(failed.value) and not leaks(failed.value)

    with parts.sessions() as session:
        rows = session.query(store.RankingLog).order_by(store.RankingLog.id).all()
        assert [row.status for row in rows] == ["ok", "error"]
        for row in rows:
            assert not leaks(row.error, row.rerank_status, row.reranker, row.answer)
        assert "ragbot:***@" in rows[0].rerank_status and "ragbot:***@" in rows[1].error

    assert not leaks(readiness(parts))

    with parts.sessions.begin() as session:
        create_user(session, "rita", PASSWORD, "reviewer", None)
    app = create_http_app(None, create_admin_app(parts.sessions, lambda: parts.answers, secret_key="k" * 32))
    with signed_in_clients(app) as sign_in:
        rita = sign_in("rita")
        pages = [rita.get("/admin/rankings")] + [rita.get(f"/admin/rankings/{row.id}") for row in rows]
        csv_export = rita.get("/admin/rankings/export.csv")
        playground = rita.form(
            "/admin/playground/rank", {"query": "SSO?", "candidates": "a\nb", "instruction": "", "preset": ""}
        )
        asked = rita.form("/admin/playground/ask", {"question": QUESTION, "preset": ""})
    assert all(page.status_code == 200 for page in pages) and csv_export.status_code == 200
    assert "ragbot:***@" in pages[1].text and "ragbot:***@" in csv_export.text  # the status is there, masked
    assert playground.status_code == 503 and "ragbot:***@" in playground.text
    assert not leaks(*(page.text for page in pages), csv_export.text, playground.text, asked.text)
    assert io.StringIO(csv_export.text).read().count("\n") > 1


def test_the_command_line_never_prints_the_secret(remote_env: dict[str, str], capsys, monkeypatch) -> None:
    code, out, err = run_cli(capsys, "ask", QUESTION)
    assert code == 0 and "skipped: reranker failed" in " ".join(out.split()) and not leaks(out, err)
    code, out, err = run_cli(capsys, "ask", QUESTION, "--json")
    assert code == 0 and not leaks(out, err)
    code, out, err = run_cli(capsys, "ask", QUESTION, "--require-rerank")
    assert code == 1 and "Reranking is required" in err and "ragbot:***@" in " ".join(err.split())
    assert not leaks(out, err)


def test_a_qdrant_server_that_is_down(env: Path, embedder, capsys, monkeypatch) -> None:
    from bot.app import Components
    from bot.app.health import readiness
    from bot.settings import Settings

    monkeypatch.setenv("QDRANT_URL", f"http://ragbot:{SECRET}@127.0.0.1:{closed_port()}")
    code, out, err = run_cli(capsys, "ask", QUESTION)
    assert code == 1 and "Cannot reach the Qdrant server at http://ragbot:***@127.0.0.1" in " ".join(err.split())
    assert not leaks(out, err)

    with Components(Settings(), embedder=embedder) as parts:
        with pytest.raises(AnswerError) as failed:
            parts.answers.ask(QUESTION, channel="C1")
        assert failed.value.ranking_id is not None and not leaks(failed.value, failed.value.__cause__)
        with parts.sessions() as session:
            row = session.get(store.RankingLog, failed.value.ranking_id)
            assert "Cannot reach the Qdrant server" in row.error and not leaks(row.error, row.rerank_status)
        checks = readiness(parts)
        assert checks["index"] != "ok" and not leaks(checks)


def test_a_malformed_qdrant_url_is_a_clear_error_without_the_secret(env: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("QDRANT_URL", f"http://ragbot:{SECRET}@qdrant:not-a-port")
    code, out, err = run_cli(capsys, "ask", QUESTION)
    assert code == 1 and "is not a Qdrant server URL" in " ".join(err.split()) and not leaks(out, err)
