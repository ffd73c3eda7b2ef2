"""The sources pages, for admins: every source with its latest sync, one source's sync history, and "Sync now"
(which only marks the source: the scheduler of `ragbot serve` runs the sync)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from admin.deps import CurrentUser, db, require_roles
from admin.sources import HISTORY, SourceView, ask_for_sync, source_view, source_views
from admin.templating import render

router = APIRouter()
admins = require_roles("admin")


def _notice(views: list[SourceView], requested: str | None) -> str | None:
    """ "Sync of NAME requested", only for a source that exists and is waiting for its sync, so the query string
    cannot put arbitrary words on the page."""
    if requested and any(v.source.name == requested and v.sync_pending for v in views):
        return f"Sync of {requested} requested: the scheduler starts it within a minute or so."
    return None


@router.get("/sources", name="sources_page")
def sources_page(
    request: Request,
    requested: str | None = None,
    user: CurrentUser = Depends(admins),
    session: Session = Depends(db),
) -> Response:
    views = source_views(session)
    return render(request, "sources.html", user, sources=views, notice=_notice(views, requested))


@router.get("/sources/{name}", name="source_page")
def source_page(
    request: Request,
    name: str,
    requested: str | None = None,
    user: CurrentUser = Depends(admins),
    session: Session = Depends(db),
) -> Response:
    found = source_view(session, name)
    if found is None:
        raise HTTPException(status_code=404, detail=f"No source named {name!r}.")
    view, history = found
    return render(
        request, "source.html", user, view=view, history=history, limit=HISTORY, notice=_notice([view], requested)
    )


@router.post("/sources/{name}/sync", name="source_sync")
def source_sync(
    request: Request,
    name: str,
    back: str = Form(""),
    user: CurrentUser = Depends(admins),
    session: Session = Depends(db),
) -> Response:
    """Ask for a sync; back to the page the button was on (`back=source`: the source's own page)."""
    if not ask_for_sync(session, name, user.name):
        raise HTTPException(status_code=404, detail=f"No source named {name!r}.")
    session.commit()
    page = request.url_for("source_page", name=name) if back == "source" else request.url_for("sources_page")
    return RedirectResponse(page.include_query_params(requested=name), status_code=303)
