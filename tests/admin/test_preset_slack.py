"""A preset's Slack settings (issue 14): suggested prompts, follow-ups, escalation targets and external users are
edited on the preset form, validated next to their fields, saved without a new version (they change no ranking),
audited, and only by the preset's team admins or admins."""

from __future__ import annotations

import html

import pytest
from sqlalchemy import select

import store
from admin.presets import MAX_PROMPT_MESSAGE, MAX_PROMPT_TITLE, parse_prompts, prompts_text
from tests.admin.test_presets import VALID, create, preset_state, save

SLACK = {
    "slack_settings": "1",
    "suggested_prompts": "SSO setup | How do I set up SAML single sign-on?\r\n\r\nWhat does the Pro plan cost?",
    "follow_ups": "on",
    "escalation_usergroup": "S0123ABCD",
    "escalation_channel": "C0SUPPORT1",
    "allow_external": "on",
}
PROMPTS = [
    {"title": "SSO setup", "message": "How do I set up SAML single sign-on?"},
    {"title": "What does the Pro plan cost?", "message": "What does the Pro plan cost?"},
]


def slack_of(preset: store.Preset) -> tuple:
    return (
        preset.suggested_prompts,
        preset.follow_ups,
        preset.escalation_usergroup,
        preset.escalation_channel,
        preset.allow_external,
    )


def audit_entries(sessions, action: str) -> list[tuple[str, str, dict | None, dict | None]]:
    with sessions() as session:
        rows = session.scalars(
            select(store.AuditEntry).where(store.AuditEntry.action == action).order_by(store.AuditEntry.id)
        ).all()
        return [(e.actor, e.target, e.before, e.after) for e in rows]


def test_slack_settings_round_trip_without_a_new_version_and_are_audited(as_user, sessions) -> None:
    sam = as_user("sam")
    preset_id = create(sam, **SLACK)
    preset, rows = preset_state(sessions, preset_id)
    assert slack_of(preset) == (PROMPTS, True, "S0123ABCD", "C0SUPPORT1", True)
    assert (preset.version, len(rows)) == (1, 1)

    page = html.unescape(sam.get(f"/admin/presets/{preset_id}").text)
    assert 'id="slack-settings"' in page
    assert "SSO setup | How do I set up SAML single sign-on?\nWhat does the Pro plan cost?</textarea>" in page
    assert 'value="S0123ABCD"' in page and 'value="C0SUPPORT1"' in page
    assert 'name="follow_ups" value="on" checked' in page and 'name="allow_external" value="on" checked' in page

    # Only Slack settings change: saved as they are, the version stays, one audit entry says what changed.
    changed = {**SLACK, "suggested_prompts": "", "escalation_usergroup": "", "allow_external": ""}
    del changed["follow_ups"]  # an unticked checkbox sends nothing
    response = save(sam, preset_id, base_version="1", **changed)
    assert response.status_code == 303 and response.headers["location"].endswith("done=slack")
    preset, rows = preset_state(sessions, preset_id)
    assert slack_of(preset) == (None, False, None, "C0SUPPORT1", False)
    assert (preset.version, len(rows)) == (1, 1)
    assert audit_entries(sessions, "preset.update") == [
        (
            "sam",
            "preset sales-faq",
            {
                "version": 1,
                "suggested_prompts": PROMPTS,
                "follow_ups": True,
                "escalation_usergroup": "S0123ABCD",
                "allow_external": True,
            },
            {
                "version": 1,
                "suggested_prompts": None,
                "follow_ups": False,
                "escalation_usergroup": None,
                "allow_external": False,
            },
        )
    ]
    notice = sam.get(response.headers["location"]).text
    assert "Slack settings saved" in notice and 'name="follow_ups" value="on">' in notice  # unticked now

    # The same form again changes nothing and records nothing.
    response = save(sam, preset_id, base_version="1", **changed)
    assert response.headers["location"].endswith("done=unchanged")
    assert len(audit_entries(sessions, "preset.update")) == 1

    # A ranking field and a Slack setting at once: one new version, one entry with both.
    response = save(sam, preset_id, base_version="1", **{**changed, "top_n": "5", "escalation_channel": "G0PRIVATE1"})
    assert response.headers["location"].endswith("done=saved_slack")
    preset, rows = preset_state(sessions, preset_id)
    assert (preset.version, preset.top_n, preset.escalation_channel) == (2, 5, "G0PRIVATE1")
    assert audit_entries(sessions, "preset.update")[-1][2:] == (
        {"version": 1, "top_n": 3, "escalation_channel": "C0SUPPORT1"},
        {"version": 2, "top_n": 5, "escalation_channel": "G0PRIVATE1"},
    )


def test_a_form_without_the_slack_fieldset_and_a_restore_keep_the_slack_settings(as_user, sessions) -> None:
    alice = as_user("alice")
    preset_id = create(alice, **SLACK)
    assert save(alice, preset_id, top_n="6").status_code == 303  # a script posting the ranking fields only
    assert alice.form(f"/admin/presets/{preset_id}/versions/1/restore", {}).status_code == 303
    preset, _ = preset_state(sessions, preset_id)
    assert (preset.version, preset.top_n) == (3, 3)
    assert slack_of(preset) == (PROMPTS, True, "S0123ABCD", "C0SUPPORT1", True)
    # A new preset from a form without the fieldset gets the defaults.
    other, _ = preset_state(sessions, create(alice, name="plain"))
    assert slack_of(other) == (None, True, None, None, False)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("escalation_usergroup", "@support", "Not a Slack user group id"),
        ("escalation_usergroup", "C0123ABCD", "Not a Slack user group id"),
        ("escalation_channel", "#support", "Not a Slack channel id"),
        ("escalation_channel", "D0123ABCD", "Not a Slack channel id"),  # a DM is no support channel
        ("escalation_channel", "c0123abcd", "Not a Slack channel id"),
        ("suggested_prompts", "\n".join(f"Prompt {n}" for n in range(5)), "At most 4 prompts"),
        ("suggested_prompts", "T" * (MAX_PROMPT_TITLE + 1), "give it a short title"),
        ("suggested_prompts", f"Short | {'m' * (MAX_PROMPT_MESSAGE + 1)}", "the message has 301 characters"),
        ("suggested_prompts", "Fine\n | no title", "Line 2: write `Title | message`"),
    ],
)
def test_bad_slack_settings_are_refused_next_to_their_field(as_user, sessions, field, value, message) -> None:
    sam = as_user("sam")
    preset_id = create(sam)
    response = save(sam, preset_id, **{**SLACK, field: value})
    assert response.status_code == 422
    page = html.unescape(response.text)
    assert "Nothing was saved" in page and message in page and "Traceback" not in page
    assert value.splitlines()[0] in page  # the draft is shown back as typed
    preset, _ = preset_state(sessions, preset_id)
    assert slack_of(preset) == (None, True, None, None, False)
    assert audit_entries(sessions, "preset.update") == []
    # The same check when creating.
    response = sam.form("/admin/presets/new", {**VALID, "name": "other", "team": "sales", **SLACK, field: value})
    assert response.status_code == 422 and message in html.unescape(response.text)


def test_only_the_teams_admins_and_admins_change_slack_settings(as_user, sessions) -> None:
    sam, lee, rita, alice = as_user("sam"), as_user("lee"), as_user("rita"), as_user("alice")
    preset_id = create(sam)
    assert save(lee, preset_id, **SLACK).status_code == 403
    assert save(rita, preset_id, **SLACK).status_code == 403
    page = lee.get(f"/admin/presets/{preset_id}").text  # read-only for another team's admin
    assert 'id="slack-settings"' in page and "Read-only" in page
    preset, _ = preset_state(sessions, preset_id)
    assert slack_of(preset) == (None, True, None, None, False)
    assert save(alice, preset_id, **SLACK).status_code == 303
    preset, _ = preset_state(sessions, preset_id)
    assert slack_of(preset) == (PROMPTS, True, "S0123ABCD", "C0SUPPORT1", True)
    assert [e[0] for e in audit_entries(sessions, "preset.update")] == ["alice"]


def test_prompts_text_and_parse_round_trip() -> None:
    assert parse_prompts("") == (None, None) and parse_prompts(" \n \n") == (None, None)
    prompts, error = parse_prompts(SLACK["suggested_prompts"])
    assert error is None and prompts == PROMPTS
    assert parse_prompts(prompts_text(prompts)) == (PROMPTS, None)
    assert prompts_text(None) == ""
    assert parse_prompts("A | b | c") == ([{"title": "A", "message": "b | c"}], None)  # the first bar splits


def test_reply_visibility_is_a_slack_setting_saved_without_a_version_audited_and_validated(as_user, sessions) -> None:
    sam = as_user("sam")
    preset_id = create(sam, **SLACK)
    assert preset_state(sessions, preset_id)[0].reply_visibility == "thread"  # the default
    page = sam.get(f"/admin/presets/{preset_id}").text
    assert '<option value="thread" selected>' in page and '<option value="ephemeral">' in page

    response = save(sam, preset_id, base_version="1", **SLACK, reply_visibility="ephemeral")
    assert response.status_code == 303 and response.headers["location"].endswith("done=slack")
    preset, rows = preset_state(sessions, preset_id)
    assert (preset.reply_visibility, preset.version, len(rows)) == ("ephemeral", 1, 1)
    assert audit_entries(sessions, "preset.update") == [
        (
            "sam",
            "preset sales-faq",
            {"version": 1, "reply_visibility": "thread"},
            {"version": 1, "reply_visibility": "ephemeral"},
        )
    ]
    assert '<option value="ephemeral" selected>' in sam.get(f"/admin/presets/{preset_id}").text
    # A form without the Slack fieldset (a script, a restore) keeps it.
    assert save(sam, preset_id, top_n="6").status_code == 303
    assert preset_state(sessions, preset_id)[0].reply_visibility == "ephemeral"

    response = save(sam, preset_id, **SLACK, reply_visibility="public")
    assert response.status_code == 422
    assert "only to the asker (ephemeral)" in html.unescape(response.text) and "Traceback" not in response.text
    assert preset_state(sessions, preset_id)[0].reply_visibility == "ephemeral"
