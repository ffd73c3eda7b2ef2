"""Presets (versioned) and channel bindings, for admins and team admins.

Every team admin sees every preset (to know which channel uses what), but changes only their own team's:
each write checks `user.can_edit_team(preset.team)`, so a crafted request gets 403 like the UI would.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

import store
from admin.channels import channel_id_of, directory
from admin.deps import CurrentUser, RowId, db, require_roles
from admin.presets import (
    FILTER_FIELDS,
    VERSIONED,
    FormErrors,
    PresetForm,
    bind,
    changed_fields,
    create_preset,
    filter_text,
    rankings_per_version,
    restore_version,
    slack_state,
    unbind,
    update_preset,
    version_row,
    versions,
    word_diff,
)
from admin.templating import render
from bot.answering import AnswerService, CompareError, QuestionError, validate_question
from store.models import DEFAULT_RETRIEVAL_MODE

log = logging.getLogger(__name__)
router = APIRouter()
editors = require_roles("admin", "team_admin")

NOTICES = {
    "created": "Preset created as v1.",
    "saved": "Saved as a new version.",
    "saved_slack": "Saved as a new version, with the Slack settings.",
    "slack": "Slack settings saved (they change no ranking, so no new version was made).",
    "unchanged": "Nothing changed, so no new version was made.",
    "restored": "Restored as a new version.",
    "bound": "Channel bound to this preset.",
    "unbound": "Binding removed: the channel uses the default preset again.",
    "channels": "The list of the bot's channels was fetched again from Slack.",
}


def _preset(session: Session, preset_id: int) -> store.Preset:
    preset = session.get(store.Preset, preset_id)
    if preset is None:
        raise HTTPException(status_code=404, detail=f"No preset with id {preset_id}.")
    return preset


def _editable(session: Session, preset_id: int, user: CurrentUser) -> store.Preset:
    preset = _preset(session, preset_id)
    if not user.can_edit_team(preset.team):
        raise HTTPException(status_code=403, detail=f"Only team {preset.team!r} or an admin can change this preset.")
    return preset


def _done(request: Request, preset: store.Preset, notice: str) -> Response:
    url = request.url_for("preset_page", preset_id=preset.id).include_query_params(done=notice)
    return RedirectResponse(url, status_code=303)


def _sent_form(
    name: str = Form(""),
    team: str = Form(""),
    instruction: str = Form(""),
    candidates_k: str = Form(""),
    top_n: str = Form(""),
    min_score: str = Form(""),
    collection: str = Form(""),
    retrieval_mode: str = Form(""),
    source_filter: str = Form(""),
    tag_filter: str = Form(""),
    suggested_prompts: str = Form(""),
    follow_ups: str = Form(""),
    escalation_usergroup: str = Form(""),
    escalation_channel: str = Form(""),
    allow_external: str = Form(""),
    reply_visibility: str = Form("thread"),
    slack_settings: str = Form(""),
) -> PresetForm:
    """The preset fields as posted; a field the form left out is empty. The Slack fieldset counts only when its
    marker (`slack_settings`) came with it: an unticked checkbox sends nothing, so a form without the fieldset
    must not read as "follow-ups off"."""
    return PresetForm(
        name,
        team,
        instruction,
        candidates_k,
        top_n,
        min_score,
        collection,
        retrieval_mode,
        source_filter=source_filter,
        tag_filter=tag_filter,
        suggested_prompts=suggested_prompts,
        follow_ups=_ticked(follow_ups),
        escalation_usergroup=escalation_usergroup,
        escalation_channel=escalation_channel,
        allow_external=_ticked(allow_external),
        reply_visibility=reply_visibility,
        slack=bool(slack_settings),
    )


def _ticked(value: str) -> bool:
    return value.strip().lower() in ("on", "1", "true", "yes")


def _draft(preset: store.Preset, sent: PresetForm) -> PresetForm:
    """The edit form of `preset` as sent (its name and team are not editable); a form without a retrieval mode
    or without the Slack fieldset keeps the preset's."""
    mode = sent.retrieval_mode or preset.retrieval_mode
    form = replace(sent, name=preset.name, team=preset.team, retrieval_mode=mode)
    return form if sent.slack else form.with_slack_of(preset)


def _teams(session: Session) -> list[str]:
    """The teams a new preset may name: the team rows (every preset's and person's team has one)."""
    return store.team_names(session)


def _edit_page(
    request: Request,
    user: CurrentUser,
    session: Session,
    preset: store.Preset,
    status_code: int = 200,
    **context,
) -> Response:
    history = versions(session, preset)
    changes = {
        v.version: changed_fields(history[i + 1] if i + 1 < len(history) else None, v) for i, v in enumerate(history)
    }
    context.setdefault("form", PresetForm.from_preset(preset))
    context.setdefault("errors", {})
    return render(
        request,
        "preset_edit.html",
        user,
        status_code,
        preset=preset,
        can_edit=user.can_edit_team(preset.team),
        history=history,
        changes=changes,
        rankings=rankings_per_version(session, preset),
        channels_listed=directory(request) is not None,
        **context,
    )


@router.get("/presets", name="presets_page")
def presets_page(request: Request, user: CurrentUser = Depends(editors), session: Session = Depends(db)) -> Response:
    presets = session.scalars(
        select(store.Preset).options(selectinload(store.Preset.bindings)).order_by(store.Preset.team, store.Preset.name)
    ).all()
    return render(request, "presets.html", user, presets=presets)


@router.get("/presets/new", name="preset_new")
def preset_new(request: Request, user: CurrentUser = Depends(editors), session: Session = Depends(db)) -> Response:
    form = PresetForm(team=user.team or "")
    return render(request, "preset_new.html", user, form=form, errors={}, teams=_teams(session))


@router.post("/presets/new", name="preset_create")
def preset_create(
    request: Request,
    sent: PresetForm = Depends(_sent_form),
    user: CurrentUser = Depends(editors),
    session: Session = Depends(db),
) -> Response:
    form = replace(
        sent,
        # a team admin creates presets for their own team only, whatever the form says
        team=sent.team if user.is_admin else user.team or "",
        retrieval_mode=sent.retrieval_mode or DEFAULT_RETRIEVAL_MODE,  # a form without the field (a script)
    )
    try:
        preset = create_preset(session, form, user.name)
        session.commit()
    except (FormErrors, IntegrityError) as exc:
        session.rollback()
        errors = exc.errors if isinstance(exc, FormErrors) else {"name": "That name was just taken; pick another."}
        return render(request, "preset_new.html", user, 422, form=form, errors=errors, teams=_teams(session))
    return _done(request, preset, "created")


@router.get("/presets/{preset_id}", name="preset_page")
def preset_page(
    request: Request,
    preset_id: RowId,
    done: str | None = None,
    user: CurrentUser = Depends(editors),
    session: Session = Depends(db),
) -> Response:
    return _edit_page(request, user, session, _preset(session, preset_id), notice=NOTICES.get(done or ""))


@router.post("/presets/{preset_id}", name="preset_save")
def preset_save(
    request: Request,
    preset_id: RowId,
    sent: PresetForm = Depends(_sent_form),
    base_version: str = Form(""),
    question: str = Form(""),
    user: CurrentUser = Depends(editors),
    session: Session = Depends(db),
) -> Response:
    preset = _editable(session, preset_id, user)
    form = _draft(preset, sent)
    if base_version.strip() and base_version.strip() != str(preset.version):
        message = (
            f"Someone saved v{preset.version} while you were editing v{base_version.strip()}. Your draft is kept "
            "below: check the versions list, then save again."
        )
        return _edit_page(request, user, session, preset, 409, form=form, conflict=message, question=question)
    before, before_slack = preset.version, slack_state(preset)
    try:
        update_preset(session, preset, form, user.name)
        session.commit()
    except FormErrors as exc:
        session.rollback()
        return _edit_page(request, user, session, preset, 422, form=form, errors=exc.errors, question=question)
    except IntegrityError:  # two saves raced for the same version number
        session.rollback()
        message = "Someone saved this preset at the same moment. Your draft is kept below: save again."
        return _edit_page(request, user, session, preset, 409, form=form, conflict=message, question=question)
    new_version, new_slack = preset.version != before, slack_state(preset) != before_slack
    notice = "saved_slack" if new_version and new_slack else "saved" if new_version else "slack" if new_slack else None
    return _done(request, preset, notice or "unchanged")


@router.post("/presets/{preset_id}/compare", name="preset_compare")
def preset_compare(
    request: Request,
    preset_id: RowId,
    sent: PresetForm = Depends(_sent_form),
    question: str = Form(""),
    user: CurrentUser = Depends(editors),
    session: Session = Depends(db),
) -> Response:
    """Rank the same candidates with the saved instruction and with the draft; nothing is saved."""
    preset = _editable(session, preset_id, user)
    form = _draft(preset, sent)
    page = {"form": form, "question": question}
    _, form_errors = form.validate(new=False)
    errors = {k: v for k, v in form_errors.items() if k in ("instruction", "retrieval_mode")}
    if not question.strip():
        errors["question"] = "Type a question to see how the draft ranks its passages."
    else:
        try:
            validate_question(question)
        except QuestionError as exc:
            errors["question"] = str(exc)
    if errors:
        return _edit_page(request, user, session, preset, 422, errors=errors, **page)
    try:
        answers: AnswerService = request.app.state.answers()
    except Exception as exc:  # models or the index could not load: say so on the page
        log.exception("The answer service could not start for a preset comparison")
        return _edit_page(
            request, user, session, preset, 503, compare_error=f"The pipeline could not start: {exc}", **page
        )
    try:
        comparison = answers.compare(preset.name, form.instruction, question, form.retrieval_mode)
    except CompareError as exc:
        return _edit_page(request, user, session, preset, 503, compare_error=str(exc), **page)
    return _edit_page(request, user, session, preset, comparison=comparison, **page)


def _shown(field: str, value: Any) -> Any:
    """A versioned value as the version page's table shows it (a filter as its names, or "everything")."""
    if field in FILTER_FIELDS:
        return filter_text(value) or "everything"
    return value


def _version_page(
    request: Request,
    user: CurrentUser,
    session: Session,
    preset: store.Preset,
    version: int,
    status_code: int = 200,
    error: str | None = None,
) -> Response:
    old = version_row(session, preset, version)
    if old is None:
        raise HTTPException(status_code=404, detail=f"Preset {preset.name!r} has no version {version}.")
    rows = [(f, _shown(f, getattr(old, f)), _shown(f, getattr(preset, f))) for f in VERSIONED if f != "instruction"]
    return render(
        request,
        "preset_version.html",
        user,
        status_code,
        preset=preset,
        old=old,
        rows=rows,
        diff=word_diff(old.instruction, preset.instruction),
        same=not changed_fields(old, preset),
        can_edit=user.can_edit_team(preset.team),
        error=error,
    )


@router.get("/presets/{preset_id}/versions/{version}", name="preset_version_page")
def preset_version_page(
    request: Request,
    preset_id: RowId,
    version: RowId,
    user: CurrentUser = Depends(editors),
    session: Session = Depends(db),
) -> Response:
    return _version_page(request, user, session, _preset(session, preset_id), version)


@router.post("/presets/{preset_id}/versions/{version}/restore", name="preset_restore")
def preset_restore(
    request: Request,
    preset_id: RowId,
    version: RowId,
    user: CurrentUser = Depends(editors),
    session: Session = Depends(db),
) -> Response:
    preset = _editable(session, preset_id, user)
    before = preset.version
    try:
        restore_version(session, preset, version, user.name)
        session.commit()
    except LookupError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    except FormErrors as exc:  # an old version that today's rules reject (e.g. from before the limits)
        session.rollback()
        message = "This version cannot be restored as it is: " + "; ".join(exc.errors.values())
        return _version_page(request, user, session, preset, version, 422, message)
    return _done(request, preset, "restored" if preset.version != before else "unchanged")


@router.post("/presets/{preset_id}/bindings", name="preset_bind")
def preset_bind(
    request: Request,
    preset_id: RowId,
    channel_id: str = Form(""),
    channel_pick: str = Form(""),
    user: CurrentUser = Depends(editors),
    session: Session = Depends(db),
) -> Response:
    """Bind the channel picked by name (`channel_pick`, its id) or typed (`channel_id`: an id, or a name the
    bot's channels know); a typed value wins, since the picker keeps its choice when someone types instead."""
    preset = _editable(session, preset_id, user)
    channel_id = channel_id_of(request, channel_id) if channel_id.strip() else channel_pick.strip()
    try:
        bind(session, channel_id, preset, user.can_edit_team, actor=user.name)
        session.commit()
    except FormErrors as exc:
        session.rollback()
        return _edit_page(request, user, session, preset, 422, bind_errors=exc.errors, channel_id=channel_id)
    except IntegrityError:  # the same channel bound by someone else at the same moment
        session.rollback()
        errors = {"channel_id": "This channel was just bound by someone else; reload and try again."}
        return _edit_page(request, user, session, preset, 409, bind_errors=errors, channel_id=channel_id)
    return _done(request, preset, "bound")


@router.post("/presets/{preset_id}/channels/refresh", name="preset_channels_refresh")
def preset_channels_refresh(
    request: Request,
    preset_id: RowId,
    user: CurrentUser = Depends(editors),
    session: Session = Depends(db),
) -> Response:
    """Fetch the bot's channels again (it was just invited somewhere), then back to the binding form."""
    preset = _preset(session, preset_id)
    channels = directory(request)
    if channels is None:
        raise HTTPException(status_code=404, detail="No Slack bot token is set, so there is no channel list.")
    channels.refresh()
    url = request.url_for("preset_page", preset_id=preset.id).include_query_params(done="channels")
    return RedirectResponse(str(url) + "#bindings", status_code=303)


@router.post("/bindings/{binding_id}/delete", name="binding_delete")
def binding_delete(
    request: Request,
    binding_id: RowId,
    user: CurrentUser = Depends(editors),
    session: Session = Depends(db),
) -> Response:
    binding = session.get(store.ChannelBinding, binding_id)
    if binding is None:
        raise HTTPException(status_code=404, detail=f"No channel binding with id {binding_id}.")
    preset = _editable(session, binding.preset_id, user)
    unbind(session, binding, actor=user.name)
    session.commit()
    return _done(request, preset, "unbound")
