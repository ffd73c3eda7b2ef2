"""The rerank playground: rank pasted candidates, or answer a question the way the bot would."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

import store
from admin import playground
from admin.deps import CurrentUser, current_user, db
from admin.playground import PlaygroundError
from admin.templating import render
from bot.answering import (
    AnswerError,
    AnswerFailed,
    AnswerService,
    QuestionError,
    RankedCandidate,
    RerankerUnavailableError,
)

log = logging.getLogger(__name__)
router = APIRouter()
# Pasted candidates make the largest form field of the admin app (the body limit allows as much).
RANK_FORM_LIMITS = {"max_part_size": playground.MAX_FORM_BYTES}


class Unavailable(RuntimeError):
    """The reranker or the answer service cannot run now; the message says why."""


def _page(request: Request, user: CurrentUser, session: Session, status_code: int = 200, **context: Any) -> Response:
    presets = session.scalars(select(store.Preset).order_by(store.Preset.name)).all()
    default = next((p.name for p in presets if p.name == "default"), "")
    values: dict[str, Any] = {
        "query": "",
        "candidates": "",
        "instruction": "",
        "preset": default,
        "question": "",
        "ask_preset": "",
        "errors": {},
        "message": None,
        "rows": None,
        "result": None,
    }
    values.update(context)
    return render(
        request,
        "playground.html",
        user,
        status_code,
        presets=presets,
        max_candidates=playground.MAX_CANDIDATES,
        **values,
    )


def _preset_instruction(session: Session, name: str) -> str | None:
    if not name:
        return None
    preset = session.scalars(select(store.Preset).where(store.Preset.name == name)).first()
    if preset is None:
        raise PlaygroundError("preset", f"There is no preset named {name!r} any more; pick another.")
    return preset.instruction


def _answers(request: Request) -> AnswerService:
    try:
        return request.app.state.answers()
    except Exception as exc:
        log.exception("The answer service could not start")
        raise Unavailable(f"The pipeline could not start ({type(exc).__name__}: {exc}).") from exc


def _rank(request: Request, session: Session, form: dict[str, str]) -> tuple[list[RankedCandidate], str, str]:
    query = playground.parse_query(form["query"])
    candidates = playground.as_candidates(playground.parse_candidates(form["candidates"]))
    instruction, source = playground.choose_instruction(
        form["instruction"], _preset_instruction(session, form["preset"])
    )
    answers = _answers(request)
    try:
        rows = answers.rank(query, candidates, instruction)
    except RerankerUnavailableError as exc:
        raise Unavailable(f"The reranker is unavailable: {exc}") from exc
    except Exception as exc:
        log.exception("Playground ranking failed")
        raise Unavailable(f"Ranking failed ({type(exc).__name__}: {exc}).") from exc
    return rows, instruction, source


def _rank_form(
    query: str = Form(""), candidates: str = Form(""), instruction: str = Form(""), preset: str = Form("")
) -> dict[str, str]:
    return {"query": query, "candidates": candidates, "instruction": instruction, "preset": preset}


@router.get("/playground", name="playground_page")
def playground_page(
    request: Request, example: str = "", user: CurrentUser = Depends(current_user), session: Session = Depends(db)
) -> Response:
    if example not in ("", "0"):
        return _page(request, user, session, query=playground.EXAMPLE_QUERY, candidates=playground.EXAMPLE_CANDIDATES)
    return _page(request, user, session)


@router.post("/playground/rank", name="playground_rank", form_limits=RANK_FORM_LIMITS)
def playground_rank(
    request: Request,
    form: dict[str, str] = Depends(_rank_form),
    user: CurrentUser = Depends(current_user),
    session: Session = Depends(db),
) -> Response:
    try:
        rows, instruction, source = _rank(request, session, form)
    except PlaygroundError as exc:
        return _page(request, user, session, 400, errors={exc.field: str(exc)}, **form)
    except Unavailable as exc:
        return _page(request, user, session, 503, message=str(exc), **form)
    return _page(request, user, session, rows=rows, used_instruction=instruction, instruction_source=source, **form)


@router.post("/playground/rank.csv", name="playground_csv", form_limits=RANK_FORM_LIMITS)
def playground_csv(
    request: Request,
    form: dict[str, str] = Depends(_rank_form),
    user: CurrentUser = Depends(current_user),
    session: Session = Depends(db),
) -> Response:
    try:
        rows, _, _ = _rank(request, session, form)
    except PlaygroundError as exc:
        return _page(request, user, session, 400, errors={exc.field: str(exc)}, **form)
    except Unavailable as exc:
        return _page(request, user, session, 503, message=str(exc), **form)
    # A byte order mark, so spreadsheet apps read the Chinese text as UTF-8.
    return Response(
        ("\ufeff" + playground.to_csv(rows)).encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="playground.csv"'},
    )


@router.post("/playground/ask", name="playground_ask")
def playground_ask(
    request: Request,
    question: str = Form(""),
    preset: str = Form(""),
    user: CurrentUser = Depends(current_user),
    session: Session = Depends(db),
) -> Response:
    form = {"question": question, "ask_preset": preset}
    try:
        _preset_instruction(session, preset)
        result = _answers(request).ask(question, user=f"admin:{user.name}", preset_name=preset or None)
    except PlaygroundError as exc:
        return _page(request, user, session, 400, errors={"ask_preset": str(exc)}, **form)
    except QuestionError as exc:
        return _page(request, user, session, 400, errors={"question": str(exc)}, **form)
    except Unavailable as exc:
        return _page(request, user, session, 503, message=str(exc), **form)
    except Exception as exc:
        log.exception("Playground question failed")
        cause = exc.__cause__ if isinstance(exc, AnswerFailed) and exc.__cause__ else exc
        ranking_id = exc.ranking_id if isinstance(exc, AnswerError) else None
        reference = f" Reference R-{ranking_id}." if ranking_id else ""
        message = f"The pipeline failed ({type(cause).__name__}: {cause}).{reference}"
        return _page(request, user, session, 503, message=message, **form)
    return _page(request, user, session, result=result, answer_html=playground.answer_html(result.answer), **form)
