"""The audit log: each kind of change through the real app writes who, when, what, and the fields before and
after, in the change's own transaction; admins read it at /admin/audit (newest first, paged, filtered), nobody
else can."""

from __future__ import annotations

import html
import re

from sqlalchemy import select

import store
from admin import audit
from tests.admin.test_presets import VALID, create, save
from tests.admin.test_rankings import seed


def entries(sessions) -> list[tuple[str, str, str, dict | None, dict | None]]:
    """(actor, action, target, before, after) of every entry, oldest first."""
    with sessions() as session:
        rows = session.scalars(select(store.AuditEntry).order_by(store.AuditEntry.id)).all()
        return [(e.actor, e.action, e.target, e.before, e.after) for e in rows]


def test_preset_changes_are_audited_with_before_and_after(as_user, sessions) -> None:
    sam = as_user("sam")
    preset_id = create(sam)
    assert save(sam, preset_id, instruction="Only contract passages", top_n="6").status_code == 303
    assert save(sam, preset_id, instruction="Only contract passages", top_n="6").status_code == 303  # unchanged
    assert sam.form(f"/admin/presets/{preset_id}/versions/1/restore", {}).status_code == 303
    assert save(sam, preset_id, top_n="50").status_code == 422  # refused: nothing recorded
    created, updated, restored = entries(sessions)
    assert created == (
        "sam",
        "preset.create",
        "preset sales-faq",
        None,
        {
            "team": "sales",
            "version": 1,
            "instruction": VALID["instruction"],
            "candidates_k": 20,
            "top_n": 3,
            "min_score": 0.2,
            "collection": None,
            "retrieval_mode": store.models.DEFAULT_RETRIEVAL_MODE,
            "source_filter": None,  # no filter: every source and tag
            "tag_filter": None,
            # the Slack settings a preset starts with (a form without the Slack fieldset: the defaults)
            "suggested_prompts": None,
            "follow_ups": True,
            "escalation_usergroup": None,
            "escalation_channel": None,
            "allow_external": False,
            "reply_visibility": "thread",
        },
    )
    assert updated == (
        "sam",
        "preset.update",
        "preset sales-faq",
        {"version": 1, "instruction": VALID["instruction"], "top_n": 3},
        {"version": 2, "instruction": "Only contract passages", "top_n": 6},
    )
    assert restored == (
        "sam",
        "preset.restore",
        "preset sales-faq",
        {"version": 2, "instruction": "Only contract passages", "top_n": 6},
        {"version": 3, "instruction": VALID["instruction"], "top_n": 3, "restored": 1},
    )


def test_binding_changes_are_audited(as_user, sessions) -> None:
    sam, alice = as_user("sam"), as_user("alice")
    first, second = create(sam), create(sam, name="sales-emea")
    assert sam.form(f"/admin/presets/{first}/bindings", {"channel_id": "C0123ABCD"}).status_code == 303
    assert sam.form(f"/admin/presets/{first}/bindings", {"channel_id": "C0123ABCD"}).status_code == 303  # no change
    assert alice.form(f"/admin/presets/{second}/bindings", {"channel_id": "C0123ABCD"}).status_code == 303
    assert sam.form(f"/admin/presets/{first}/bindings", {"channel_id": "#sales"}).status_code == 422
    with sessions() as session:
        binding_id = session.scalar(select(store.ChannelBinding.id))
    assert sam.form(f"/admin/bindings/{binding_id}/delete", {}).status_code == 303
    assert [e for e in entries(sessions) if e[1].startswith("binding.")] == [
        ("sam", "binding.create", "channel C0123ABCD", None, {"preset": "sales-faq"}),
        ("alice", "binding.move", "channel C0123ABCD", {"preset": "sales-faq"}, {"preset": "sales-emea"}),
        ("sam", "binding.delete", "channel C0123ABCD", {"preset": "sales-emea"}, None),
    ]


def test_label_changes_are_audited(as_user, sessions) -> None:
    with sessions.begin() as session:
        ranking_id = seed(session, "Q1")
        first = session.scalars(
            select(store.LoggedCandidate).where(store.LoggedCandidate.ranking_id == ranking_id)
        ).first()
        candidate_id, source = first.id, first.source
    rita = as_user("rita")
    for relevant in ("1", "1", "0", "clear", "clear"):  # the repeats change nothing and record nothing
        response = rita.form(
            f"/admin/rankings/{ranking_id}/labels", {"candidate_id": candidate_id, "relevant": relevant}
        )
        assert response.status_code == 303
    target = f"ranking {ranking_id} candidate {candidate_id} ({source})"
    assert entries(sessions) == [
        ("rita", "label.set", target, {"relevant": None}, {"relevant": True}),
        ("rita", "label.set", target, {"relevant": True}, {"relevant": False}),
        ("rita", "label.clear", target, {"relevant": False}, {"relevant": None}),
    ]


def test_admins_read_the_log_newest_first_filtered_and_paged(as_user, sessions) -> None:
    sam = as_user("sam")
    preset_id = create(sam)
    assert save(sam, preset_id, instruction="New <b>text</b>").status_code == 303
    with sessions.begin() as session:
        for i in range(audit.PAGE_SIZE + 5):
            audit.record(session, "cli", audit.Action.USER_CREATE, f"user u{i}", None, {"role": "reviewer"})

    alice = as_user("alice")
    assert '/admin/audit">Audit log</a>' in alice.get("/admin/").text
    page = alice.get("/admin/audit")
    assert page.status_code == 200
    assert f"{audit.PAGE_SIZE + 7} changes" in page.text
    targets = re.findall(r"<td>(user u\d+|preset [\w-]+)</td>", page.text)
    assert targets[:2] == [f"user u{audit.PAGE_SIZE + 4}", f"user u{audit.PAGE_SIZE + 3}"]  # newest first
    assert len(targets) == audit.PAGE_SIZE and "Page 1 of 2" in page.text
    older = alice.get("/admin/audit?page=2")
    assert re.findall(r"<td>(user u\d+|preset [\w-]+)</td>", older.text) == [
        "user u4", "user u3", "user u2", "user u1", "user u0", "preset sales-faq", "preset sales-faq"
    ]  # fmt: skip

    by_sam = alice.get("/admin/audit?actor=sam")
    assert "2 changes" in by_sam.text and "user u" not in by_sam.text
    text = html.unescape(by_sam.text)
    assert "preset.update" in text and VALID["instruction"] in text and "New <b>text</b>" in text
    assert "<b>text</b>" not in by_sam.text  # escaped
    updates = alice.get("/admin/audit?action=preset.update")
    assert "1 change," in updates.text and "preset.create</span>" not in updates.text
    assert "No changes recorded for these filters" in alice.get("/admin/audit?actor=nobody").text
    assert alice.get("/admin/audit?page=0").status_code == 422
    assert alice.get("/admin/audit?page=99").status_code == 200  # past the end: the last page


def test_only_admins_see_the_audit_log(as_user) -> None:
    for name in ("rita", "sam"):
        client = as_user(name)
        assert client.get("/admin/audit").status_code == 403
        assert '/admin/audit">Audit log</a>' not in client.get("/admin/").text
