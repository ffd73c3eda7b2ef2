"""Presets (versioned) and channel bindings, for admins and team admins."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from admin.app import render
from admin.deps import CurrentUser, require_roles

router = APIRouter()
editors = require_roles("admin", "team_admin")


@router.get("/presets", name="presets_page")
def presets_page(request: Request, user: CurrentUser = Depends(editors)) -> Response:
    return render(request, "presets.html", user)
