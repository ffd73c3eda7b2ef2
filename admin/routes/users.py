"""User management, for admins."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

import store
from admin import audit
from admin.deps import CurrentUser, RowId, db, require_roles
from admin.templating import render
from admin.users import UserError, set_role

router = APIRouter()
admins = require_roles("admin")


@router.get("/users", name="users_page")
def users_page(request: Request, user: CurrentUser = Depends(admins), session: Session = Depends(db)) -> Response:
    users = session.scalars(select(store.User).order_by(store.User.name)).all()
    return render(request, "users.html", user, users=users, roles=(*store.USER_ROLES, store.NO_ROLE))


@router.post("/users/{user_id}/role", name="user_role")
def change_role(
    request: Request,
    user_id: RowId,
    role: str = Form(""),
    team: str = Form(""),
    user: CurrentUser = Depends(admins),
    session: Session = Depends(db),
) -> Response:
    """Grant (or take back) a role: how a person whose first single sign-on gave them none gets access."""
    target = session.get(store.User, user_id)
    if target is None:
        raise HTTPException(status_code=404, detail="No such user.")
    before = {"role": target.role, "team": target.team}
    try:
        set_role(session, target, role, team)
    except UserError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    after = {"role": target.role, "team": target.team}
    if after != before:
        audit.record(session, user.name, audit.Action.USER_ROLE, f"user {target.name}", before, after)
    session.commit()
    return RedirectResponse(request.url_for("users_page"), status_code=303)
