"""A preset's source and tag filters in the edit form: parsed from comma-separated text, validated, saved as a new
version (they change what is retrieved), shown on the preset and version pages, and restored with a version."""

from __future__ import annotations

import re

import pytest

from admin.presets import parse_filter
from tests.admin.test_presets import create, preset_state, save


def field_value(html: str, name: str) -> str:
    match = re.search(rf'<input name="{name}" value="([^"]*)"', html)
    assert match, f"the form has a {name} field"
    return match.group(1)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        (" handbook , ,helpdesk,handbook ", ["handbook", "helpdesk"]),  # trimmed, empties and repeats dropped
        ("", None),
        (" , ,", None),  # nothing left: no filter
        ("x" * 100, ["x" * 100]),
    ],
)
def test_a_filter_field_becomes_a_list_of_names_or_none(text: str, names: list[str] | None) -> None:
    assert parse_filter(text) == (names, None)


def test_filters_saved_through_the_form_make_a_version_and_show_on_the_pages(as_user, sessions) -> None:
    sam = as_user("sam")
    preset_id = create(sam)
    response = save(
        sam, preset_id, source_filter=" handbook , ,helpdesk,handbook", tag_filter="pricing", base_version="1"
    )
    assert response.status_code == 303 and response.headers["location"].endswith("done=saved")
    preset, rows = preset_state(sessions, preset_id)
    assert (preset.version, preset.source_filter, preset.tag_filter) == (2, ["handbook", "helpdesk"], ["pricing"])
    assert [(r.version, r.source_filter, r.tag_filter) for r in rows] == [
        (1, None, None),
        (2, ["handbook", "helpdesk"], ["pricing"]),
    ]

    page = sam.get(f"/admin/presets/{preset_id}").text
    assert field_value(page, "source_filter") == "handbook, helpdesk" and field_value(page, "tag_filter") == "pricing"
    filters = re.search(r'id="current-filters">(.*?)</p>', page, re.S).group(1)
    assert "<strong>handbook, helpdesk</strong>" in filters and "<strong>pricing</strong>" in filters
    versions = re.search(r'id="versions".*?</table>', page, re.S).group(0)
    assert "source_filter, tag_filter" in versions  # what v2 changed

    old = sam.get(f"/admin/presets/{preset_id}/versions/1").text
    assert re.search(r"<td>source_filter</td><td>everything</td><td>handbook, helpdesk</td>", old)

    # restoring v1 takes the filters away again, as a new version
    assert sam.form(f"/admin/presets/{preset_id}/versions/1/restore", {}).status_code == 303
    preset, rows = preset_state(sessions, preset_id)
    assert (preset.version, preset.source_filter, preset.tag_filter) == (3, None, None)


def test_emptying_a_filter_removes_it(as_user, sessions) -> None:
    alice = as_user("alice")
    preset_id = create(alice, source_filter="handbook", tag_filter="pricing, security")
    preset, _ = preset_state(sessions, preset_id)
    assert (preset.source_filter, preset.tag_filter) == (["handbook"], ["pricing", "security"])
    assert save(alice, preset_id, source_filter="  ", tag_filter="security").status_code == 303
    preset, _ = preset_state(sessions, preset_id)
    assert (preset.version, preset.source_filter, preset.tag_filter) == (2, None, ["security"])
    assert "every source" in alice.get(f"/admin/presets/{preset_id}").text


@pytest.mark.parametrize(
    ("field", "text", "message"),
    [
        ("source_filter", ", ".join(f"s{n}" for n in range(51)), "At most 50 names (this has 51)"),
        ("tag_filter", "ok, " + "t" * 101, "Each name at most 100 characters"),
    ],
)
def test_a_filter_too_long_is_refused_and_nothing_is_saved(as_user, sessions, field: str, text: str, message: str):
    sam = as_user("sam")
    preset_id = create(sam)
    response = save(sam, preset_id, **{field: text}, top_n="4")
    assert response.status_code == 422 and message in response.text
    assert field_value(response.text, field) == text  # the draft is shown back as typed
    preset, rows = preset_state(sessions, preset_id)
    assert (preset.version, preset.top_n, preset.source_filter, preset.tag_filter) == (1, 3, None, None)
    assert len(rows) == 1
