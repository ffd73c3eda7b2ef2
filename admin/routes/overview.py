"""The overview page: charts over the ranking log."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from admin.app import render
from admin.deps import CurrentUser, current_user

router = APIRouter()


@router.get("/", name="overview_page")
def overview_page(request: Request, user: CurrentUser = Depends(current_user)) -> Response:
    return render(request, "overview.html", user)
