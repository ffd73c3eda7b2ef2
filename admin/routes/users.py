"""People and teams. Admins invite people, change their role and team, switch them off and on, reset their
password, and create and rename teams; every change is audited. A team admin sees the people of their own team,
read-only: every write route is for admins only and answers 403 to anyone else, whatever the page shows.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

import store
from admin import audit
from admin.deps import CurrentUser, RowId, db, require_roles
from admin.templating import render
from admin.users import UserError, activate, check_team_name, deactivate, invite_user, set_password, set_role

router = APIRouter()
admins = require_roles("admin")
viewers = require_roles("admin", "team_admin")
ROLES = (*store.USER_ROLES, store.NO_ROLE)


def _visible_people(session: Session, user: CurrentUser) -> list[store.User]:
    """Everyone for an admin; a team admin's own team only."""
    query = select(store.User).order_by(store.User.name)
    if not user.is_admin:
        if user.team is None:
            return []
        query = query.where(store.User.team == user.team)
    return list(session.scalars(query))


def _person(session: Session, user_id: int, user: CurrentUser) -> store.User:
    """The user `user_id`, if `user` may see them: 404 when there is none, 403 for another team's person."""
    target = session.get(store.User, user_id)
    if target is None:
        raise HTTPException(status_code=404, detail="No such user.")
    if not user.is_admin and (user.team is None or target.team != user.team):
        raise HTTPException(status_code=403, detail="This person is not in your team.")
    return target


def _back(request: Request, name: str, **params: int) -> Response:
    return RedirectResponse(request.url_for(name, **params), status_code=303)


def _refused(exc: Exception) -> HTTPException:
    return HTTPException(status_code=400, detail=str(exc))


@router.get("/users", name="users_page")
def users_page(request: Request, user: CurrentUser = Depends(viewers), session: Session = Depends(db)) -> Response:
    teams = store.list_teams(session) if user.is_admin else []
    return render(
        request,
        "users.html",
        user,
        users=_visible_people(session, user),
        roles=ROLES,
        teams=teams,
        team_names=[t.name for t in teams],
    )


@router.get("/users/{user_id}", name="user_page")
def user_page(
    request: Request, user_id: RowId, user: CurrentUser = Depends(viewers), session: Session = Depends(db)
) -> Response:
    person = _person(session, user_id, user)
    names = store.team_names(session) if user.is_admin else []
    return render(request, "user.html", user, person=person, roles=ROLES, team_names=names)


@router.post("/users", name="user_invite")
def invite(
    request: Request,
    name: str = Form(""),
    email: str = Form(""),
    role: str = Form(""),
    team: str = Form(""),
    password: str = Form(""),
    user: CurrentUser = Depends(admins),
    session: Session = Depends(db),
) -> Response:
    """Add a person: with a local password now, or without one (an email) for single sign-on."""
    try:
        person = invite_user(session, name, role, team, email, password or None)
    except UserError as exc:
        raise _refused(exc) from None
    after = {"role": person.role, "team": person.team, "email": person.email, "password": bool(password)}
    audit.record(session, user.name, audit.Action.USER_CREATE, f"user {person.name}", None, after)
    session.commit()
    return _back(request, "user_page", user_id=person.id)


@router.post("/users/{user_id}/role", name="user_role")
async def change_role(
    request: Request, user_id: RowId, user: CurrentUser = Depends(admins), session: Session = Depends(db)
) -> Response:
    """Grant (or take back) a role, and set the team: how a person whose first single sign-on gave them none gets
    access. A form without a team field keeps the person's team."""
    form = await request.form()
    target = _person(session, user_id, user)
    role = str(form.get("role", ""))
    team = str(form["team"]) if "team" in form else target.team
    before = {"role": target.role, "team": target.team}
    try:
        set_role(session, target, role, team)
    except UserError as exc:
        raise _refused(exc) from None
    after = {"role": target.role, "team": target.team}
    if after != before:
        action = audit.Action.USER_ROLE if after["role"] != before["role"] else audit.Action.USER_TEAM
        audit.record(session, user.name, action, f"user {target.name}", before, after)
    session.commit()
    return _back(request, "user_page", user_id=target.id)


@router.post("/users/{user_id}/deactivate", name="user_deactivate")
def switch_off(
    request: Request, user_id: RowId, user: CurrentUser = Depends(admins), session: Session = Depends(db)
) -> Response:
    """Switch a person off: their open sessions end now, and their next request is refused."""
    target = _person(session, user_id, user)
    if not target.active:
        return _back(request, "user_page", user_id=target.id)
    try:
        ended = deactivate(session, target, by_id=user.id)
    except UserError as exc:
        raise _refused(exc) from None
    audit.record(session, user.name, audit.Action.USER_DEACTIVATE, f"user {target.name}", {"active": True},
                 {"active": False, "sessions_ended": ended})  # fmt: skip
    session.commit()
    return _back(request, "user_page", user_id=target.id)


@router.post("/users/{user_id}/activate", name="user_activate")
def switch_on(
    request: Request, user_id: RowId, user: CurrentUser = Depends(admins), session: Session = Depends(db)
) -> Response:
    target = _person(session, user_id, user)
    if not target.active:
        activate(session, target)
        audit.record(session, user.name, audit.Action.USER_ACTIVATE, f"user {target.name}", {"active": False},
                     {"active": True})  # fmt: skip
        session.commit()
    return _back(request, "user_page", user_id=target.id)


@router.post("/users/{user_id}/password", name="user_password")
def reset_password(
    request: Request,
    user_id: RowId,
    password: str = Form(""),
    user: CurrentUser = Depends(admins),
    session: Session = Depends(db),
) -> Response:
    """Set a new local password for a person; every session they have open ends (the admin's own too, when they
    reset their own: they sign in again with it)."""
    target = _person(session, user_id, user)
    try:
        ended = set_password(session, target, password)
    except UserError as exc:
        raise _refused(exc) from None
    audit.record(session, user.name, audit.Action.USER_PASSWORD, f"user {target.name}", None,
                 {"sessions_ended": ended})  # fmt: skip
    session.commit()
    return _back(request, "user_page", user_id=target.id)


@router.post("/teams", name="team_create")
def create_team(
    request: Request, name: str = Form(""), user: CurrentUser = Depends(admins), session: Session = Depends(db)
) -> Response:
    try:
        team = store.create_team(session, check_team_name(name))
    except (UserError, store.TeamExistsError) as exc:
        raise _refused(exc) from None
    audit.record(session, user.name, audit.Action.TEAM_CREATE, f"team {team.name}", None, {"name": team.name})
    session.commit()
    return _back(request, "users_page")


@router.post("/teams/{team_id}/rename", name="team_rename")
def rename_team(
    request: Request,
    team_id: RowId,
    name: str = Form(""),
    user: CurrentUser = Depends(admins),
    session: Session = Depends(db),
) -> Response:
    """Rename a team; its presets and people follow."""
    team = session.get(store.Team, team_id)
    if team is None:
        raise HTTPException(status_code=404, detail="No such team.")
    old = team.name
    try:
        new = check_team_name(name)
        if new != old:
            store.rename_team(session, old, new)
    except (UserError, store.TeamExistsError) as exc:
        raise _refused(exc) from None
    if new != old:
        audit.record(session, user.name, audit.Action.TEAM_RENAME, f"team {new}", {"name": old}, {"name": new})
        session.commit()
    return _back(request, "users_page")
