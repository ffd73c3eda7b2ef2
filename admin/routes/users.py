"""User management, for admins."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

import store
from admin.deps import CurrentUser, db, require_roles
from admin.templating import render

router = APIRouter()
admins = require_roles("admin")


@router.get("/users", name="users_page")
def users_page(request: Request, user: CurrentUser = Depends(admins), session: Session = Depends(db)) -> Response:
    users = session.scalars(select(store.User).order_by(store.User.name)).all()
    return render(request, "users.html", user, users=users)
