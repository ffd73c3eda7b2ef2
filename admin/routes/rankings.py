"""Logged rankings for reviewers: list, detail, labels, exports."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from sqlalchemy.orm import Session

import store
from admin import rankings
from admin.deps import CurrentUser, RowId, db, require_roles
from admin.templating import render

router = APIRouter()
reviewers = require_roles("admin", "reviewer")
LABEL_VALUES = {"1": True, "0": False, "clear": None}


def _filters(request: Request) -> rankings.RankingFilter:
    try:
        return rankings.parse_filter(request.query_params)
    except rankings.FilterError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc


def _stream(request: Request, chunks: Callable[..., Iterator[str]], filters, media_type: str, filename: str):
    sessions = request.app.state.sessions

    def body() -> Iterator[str]:  # its own session: the request's one is closed once streaming starts
        with sessions() as session:
            yield from chunks(session, filters)

    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return StreamingResponse(body(), media_type=media_type, headers=headers)


@router.get("/rankings", name="rankings_page")
def rankings_page(request: Request, user: CurrentUser = Depends(reviewers), session: Session = Depends(db)) -> Response:
    params = request.query_params
    form = {name: params.get(name, "") for name in rankings.FILTER_FIELDS}
    context = {"form": form, "statuses": rankings.RANKING_STATUSES, **rankings.filter_choices(session)}
    try:
        filters = rankings.parse_filter(params)
        page = rankings.list_rankings(session, filters, rankings.parse_page(params.get("page")))
    except rankings.FilterError as exc:
        return render(request, "rankings.html", user, status_code=400, error=str(exc), page=None, **context)

    def link(name: str, **extra: int) -> str:
        return str(request.url_for(name).include_query_params(**filters.params(), **extra))

    links = {
        "prev": link("rankings_page", page=page.number - 1) if page.number > 1 else None,
        "next": link("rankings_page", page=page.number + 1) if page.number < page.pages else None,
        "csv": link("rankings_csv"),
        "jsonl": link("labels_jsonl"),
    }
    return render(request, "rankings.html", user, error=None, page=page, links=links, **context)


@router.get("/rankings/export.csv", name="rankings_csv")
def rankings_csv(request: Request, user: CurrentUser = Depends(reviewers)) -> Response:
    return _stream(request, rankings.csv_chunks, _filters(request), "text/csv", "rankings.csv")


@router.get("/labels/export.jsonl", name="labels_jsonl")
def labels_jsonl(request: Request, user: CurrentUser = Depends(reviewers)) -> Response:
    return _stream(request, rankings.label_lines, _filters(request), "application/x-ndjson", "labels.jsonl")


@router.get("/rankings/{ranking_id:int}", name="ranking_detail")
def ranking_detail(
    request: Request, ranking_id: RowId, user: CurrentUser = Depends(reviewers), session: Session = Depends(db)
) -> Response:
    ranking = rankings.get_ranking(session, ranking_id)
    if ranking is None:
        raise HTTPException(status_code=404, detail=f"No ranking with id {ranking_id}.")
    labels = rankings.labels_of(session, ranking_id, user.name)
    return render(request, "ranking_detail.html", user, ranking=ranking, labels=labels)


@router.post("/rankings/{ranking_id:int}/labels", name="ranking_label")
def ranking_label(
    request: Request,
    ranking_id: RowId,
    candidate_id: str = Form(""),
    relevant: str = Form(""),
    user: CurrentUser = Depends(reviewers),
    session: Session = Depends(db),
) -> Response:
    if session.get(store.RankingLog, ranking_id) is None:
        raise HTTPException(status_code=404, detail=f"No ranking with id {ranking_id}.")
    if relevant not in LABEL_VALUES or not candidate_id.isdigit() or int(candidate_id) > store.MAX_ROW_ID:
        raise HTTPException(status_code=400, detail="Send candidate_id and relevant=1, 0 or clear.")
    try:
        rankings.set_label(session, int(candidate_id), user.name, LABEL_VALUES[relevant], ranking_id=ranking_id)
    except rankings.LabelError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc
    session.commit()
    url = request.url_for("ranking_detail", ranking_id=ranking_id)
    return RedirectResponse(f"{url}#c{candidate_id}", status_code=303)
