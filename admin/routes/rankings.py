"""Logged rankings for reviewers: list, detail, labels, exports."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from admin.app import render
from admin.deps import CurrentUser, require_roles

router = APIRouter()
reviewers = require_roles("admin", "reviewer")


@router.get("/rankings", name="rankings_page")
def rankings_page(request: Request, user: CurrentUser = Depends(reviewers)) -> Response:
    return render(request, "rankings.html", user)
