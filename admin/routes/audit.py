"""The audit log page, for admins: who changed what, newest first, filtered by actor and action."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from admin import audit
from admin.deps import CurrentUser, db, require_roles
from admin.templating import render

router = APIRouter()
admins = require_roles("admin")


@router.get("/audit", name="audit_page")
def audit_page(
    request: Request,
    actor: str = "",
    action: str = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    user: CurrentUser = Depends(admins),
    session: Session = Depends(db),
) -> Response:
    found = audit.list_entries(session, actor.strip() or None, action.strip() or None, page)

    def link(number: int) -> str:
        filters = {k: v for k, v in (("actor", actor), ("action", action)) if v}
        return str(request.url_for("audit_page").include_query_params(**filters, page=number))

    return render(
        request,
        "audit.html",
        user,
        found=found,
        changes={entry.id: audit.changes(entry) for entry in found.entries},
        actors=audit.actors(session),
        actions=[str(a) for a in audit.Action],
        form={"actor": actor, "action": action},
        prev=link(found.number - 1) if found.number > 1 else None,
        next=link(found.number + 1) if found.number < found.pages else None,
    )
