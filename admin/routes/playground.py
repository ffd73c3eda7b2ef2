"""The rerank playground: rank pasted candidates, or run the whole pipeline for a question."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from admin.app import render
from admin.deps import CurrentUser, current_user

router = APIRouter()


@router.get("/playground", name="playground_page")
def playground_page(request: Request, user: CurrentUser = Depends(current_user)) -> Response:
    return render(request, "playground.html", user)
