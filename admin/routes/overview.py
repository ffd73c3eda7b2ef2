"""The overview page: charts over the ranking log."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from admin.deps import CurrentUser, current_user, db
from admin.overview import LATENCY_SAMPLE, build_overview, charts, parse_days, recent_refusals
from admin.templating import render

router = APIRouter()
PERIODS = (7, 30, 90, 365)


@router.get("/", name="overview_page")
def overview_page(
    request: Request, days: str | None = None, user: CurrentUser = Depends(current_user), session: Session = Depends(db)
) -> Response:
    view = build_overview(session, parse_days(days))
    # Refusals name users and channels of every team: admins only.
    refusals = recent_refusals(session) if user.is_admin else None
    return render(
        request,
        "overview.html",
        user,
        view=view,
        charts=charts(view),
        periods=PERIODS,
        latency_sample=LATENCY_SAMPLE,
        refusals=refusals,
    )
