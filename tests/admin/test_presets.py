"""Presets: versioned edits, validation, restore, channel bindings, team scoping, and the draft comparison."""

from __future__ import annotations

import re
from typing import ClassVar

import pytest
from sqlalchemy import select

import store
from admin.presets import RETRIEVAL_LABELS, PresetForm, update_preset
from retrieval import RETRIEVAL_MODES, Candidate, RetrievalResult
from tests.admin.conftest import signed_in_clients

VALID = {
    "instruction": "Find passages about pricing and discounts",
    "candidates_k": "20",
    "top_n": "3",
    "min_score": "0.2",
    "collection": "",
}


def create(client, name: str = "sales-faq", team: str = "sales", **fields: str) -> int:
    response = client.form("/admin/presets/new", {**VALID, "name": name, "team": team, **fields})
    assert response.status_code == 303, response.text
    return int(re.search(r"/presets/(\d+)\?done=created", response.headers["location"]).group(1))


def save(client, preset_id: int, **fields: str):
    return client.form(f"/admin/presets/{preset_id}", {**VALID, **fields})


def preset_state(sessions, preset_id: int) -> tuple[store.Preset, list[store.PresetVersion]]:
    with sessions() as session:
        preset = session.get(store.Preset, preset_id)
        rows = session.scalars(
            select(store.PresetVersion)
            .where(store.PresetVersion.preset_id == preset_id)
            .order_by(store.PresetVersion.version)
        ).all()
        session.expunge_all()
        return preset, list(rows)


def bindings(sessions) -> dict[str, int]:
    with sessions() as session:
        return {b.channel_id: b.preset_id for b in session.scalars(select(store.ChannelBinding))}


def test_create_makes_version_1_with_its_version_row(as_user, sessions) -> None:
    alice = as_user("alice")
    page = alice.get("/admin/presets/new")
    assert page.status_code == 200 and "Create preset" in page.text
    preset_id = create(alice, top_n="5", collection="kb")
    preset, rows = preset_state(sessions, preset_id)
    assert (preset.name, preset.team, preset.version) == ("sales-faq", "sales", 1)
    assert (preset.top_n, preset.collection) == (5, "kb")
    assert [(r.version, r.author, r.instruction, r.top_n) for r in rows] == [(1, "alice", VALID["instruction"], 5)]
    listing = alice.get("/admin/presets")
    assert "sales-faq" in listing.text and "v1" in listing.text


def test_an_edit_makes_a_new_version_with_its_author_and_keeps_the_old_text(as_user, sessions) -> None:
    sam = as_user("sam")
    preset_id = create(sam)
    response = save(sam, preset_id, instruction="Find passages about\r\nrenewals", top_n="4", base_version="1")
    assert response.status_code == 303 and response.headers["location"].endswith("done=saved")
    preset, rows = preset_state(sessions, preset_id)
    assert (preset.version, preset.instruction, preset.top_n) == (2, "Find passages about\nrenewals", 4)
    assert [(r.version, r.author, r.instruction) for r in rows] == [
        (1, "sam", VALID["instruction"]),
        (2, "sam", "Find passages about\nrenewals"),
    ]
    page = sam.get(f"/admin/presets/{preset_id}")
    versions = re.search(r'id="versions".*?</table>', page.text, re.S).group(0)
    assert re.findall(r">v(\d+)<", versions) == ["2", "1"]
    assert "instruction, top_n" in versions  # what each version changed


def test_saving_without_a_change_makes_no_version(as_user, sessions) -> None:
    sam = as_user("sam")
    preset_id = create(sam)
    # what a browser sends back unchanged: CRLF line ends, numbers as the inputs show them
    response = save(sam, preset_id, instruction=VALID["instruction"] + "\r\n", min_score="0.20", base_version="1")
    assert response.status_code == 303 and response.headers["location"].endswith("done=unchanged")
    preset, rows = preset_state(sessions, preset_id)
    assert preset.version == 1 and len(rows) == 1


def test_a_stale_form_does_not_overwrite_a_newer_version(as_user, sessions) -> None:
    sam = as_user("sam")
    preset_id = create(sam)
    assert save(sam, preset_id, instruction="Second", base_version="1").status_code == 303
    stale = save(sam, preset_id, instruction="Third, from an old tab", base_version="1")
    assert stale.status_code == 409 and "Third, from an old tab" in stale.text
    assert preset_state(sessions, preset_id)[0].instruction == "Second"


INVALID = [
    ("instruction", "", "An instruction is required"),
    ("instruction", "   \r\n ", "An instruction is required"),
    ("instruction", "x" * 1001, "At most 1,000 characters"),
    ("candidates_k", "0", "A whole number from 1 to 200"),
    ("candidates_k", "201", "A whole number from 1 to 200"),
    ("candidates_k", "1.5", "A whole number from 1 to 200"),
    ("candidates_k", "", "A whole number from 1 to 200"),
    ("top_n", "0", "A whole number from 1 to 10"),
    ("top_n", "11", "A whole number from 1 to 10"),
    ("min_score", "-0.1", "A number from 0 to 1"),
    ("min_score", "1.5", "A number from 0 to 1"),
    ("min_score", "nan", "A number from 0 to 1"),
    ("min_score", "high", "A number from 0 to 1"),
    ("collection", "kb 2", "Letters, digits, - or _"),
    ("retrieval_mode", "bm25", "One of hybrid, dense, lexical."),
    ("retrieval_mode", "Hybrid", "One of hybrid, dense, lexical."),
]


def field_error(html: str) -> list[str]:
    return re.findall(r'class="field-error"[^>]*>([^<]+)<', html)


@pytest.mark.parametrize(("field", "value", "message"), INVALID)
def test_invalid_values_are_refused_next_to_their_field_and_nothing_is_saved(
    as_user, sessions, field: str, value: str, message: str
) -> None:
    alice = as_user("alice")
    refused = alice.form("/admin/presets/new", {**VALID, "name": "new-one", "team": "sales", field: value})
    assert refused.status_code == 422
    assert [e for e in field_error(refused.text) if message in e], field_error(refused.text)
    assert "Nothing was saved" in refused.text
    if field == "instruction" and value.strip():
        assert value in refused.text  # the typed text is kept for fixing
    with sessions() as session:
        assert session.scalar(select(store.Preset).where(store.Preset.name == "new-one")) is None

    preset_id = create(alice)
    good = {"top_n": "7"} if field != "top_n" else {"candidates_k": "30"}
    refused = save(alice, preset_id, **{**good, field: value})  # one bad field: the good one is not saved either
    assert refused.status_code == 422 and [e for e in field_error(refused.text) if message in e]
    preset, rows = preset_state(sessions, preset_id)
    assert (preset.version, preset.top_n, preset.candidates_k, len(rows)) == (1, 3, 20, 1)
    assert preset.retrieval_mode == rows[0].retrieval_mode == "hybrid"


def selected_mode(html: str) -> str:
    select = re.search(r'<select name="retrieval_mode".*?</select>', html, re.S).group(0)
    return re.search(r'<option value="(\w+)" selected>', select).group(1)


@pytest.mark.parametrize("mode", RETRIEVAL_MODES)
def test_each_retrieval_mode_is_saved_versioned_shown_and_restored(as_user, sessions, mode: str) -> None:
    sam = as_user("sam")
    select = re.search(r'<select name="retrieval_mode".*?</select>', sam.get("/admin/presets/new").text, re.S)
    offered = re.findall(r'<option value="(\w+)"', select.group(0))
    assert offered == ["hybrid", "dense", "lexical"]  # the default first
    preset_id = create(sam, retrieval_mode=mode)
    preset, rows = preset_state(sessions, preset_id)
    assert preset.retrieval_mode == mode and [(r.version, r.retrieval_mode) for r in rows] == [(1, mode)]
    assert selected_mode(sam.get(f"/admin/presets/{preset_id}").text) == mode
    assert f'<td class="retrieval-mode" title="{RETRIEVAL_LABELS[mode]}">{mode}</td>' in sam.get("/admin/presets").text

    other = next(m for m in RETRIEVAL_MODES if m != mode)
    assert save(sam, preset_id, retrieval_mode=other, base_version="1").status_code == 303
    preset, rows = preset_state(sessions, preset_id)
    assert (preset.version, preset.retrieval_mode) == (2, other)
    assert [(r.version, r.retrieval_mode) for r in rows] == [(1, mode), (2, other)]
    page = sam.get(f"/admin/presets/{preset_id}").text
    assert selected_mode(page) == other and f"retrieval {other}</span>" in page
    versions = re.search(r'id="versions".*?</table>', page, re.S).group(0)
    assert f"<td>{other}</td>" in versions and f"<td>{mode}</td>" in versions
    assert "<td>retrieval_mode</td>" in versions  # what v2 changed

    old = sam.get(f"/admin/presets/{preset_id}/versions/1").text
    assert f'<tr class="changed"><td>retrieval_mode</td><td>{mode}</td><td>{other}</td></tr>' in old
    assert sam.form(f"/admin/presets/{preset_id}/versions/1/restore", {}).status_code == 303
    preset, rows = preset_state(sessions, preset_id)
    assert (preset.version, preset.retrieval_mode, rows[-1].retrieval_mode) == (3, mode, mode)


def test_a_form_without_a_retrieval_mode_keeps_the_presets(as_user, sessions) -> None:
    """Scripts that post the older form: a new preset gets the default mode, an edit leaves the mode alone."""
    sam = as_user("sam")
    preset_id = create(sam)
    assert preset_state(sessions, preset_id)[0].retrieval_mode == store.models.DEFAULT_RETRIEVAL_MODE
    assert save(sam, preset_id, retrieval_mode="lexical").status_code == 303
    response = save(sam, preset_id, instruction="Pricing only")  # VALID has no retrieval_mode
    assert response.status_code == 303
    preset = preset_state(sessions, preset_id)[0]
    assert (preset.version, preset.retrieval_mode, preset.instruction) == (3, "lexical", "Pricing only")
    assert (
        save(sam, preset_id, instruction="Pricing only", retrieval_mode="")
        .headers["location"]
        .endswith("done=unchanged")
    )


@pytest.mark.parametrize(
    ("name", "team", "field"),
    [("", "sales", "name"), ("two words", "sales", "name"), ("x" * 65, "sales", "name"), ("ok", "", "team")],
)
def test_names_and_teams_are_checked(as_user, sessions, name: str, team: str, field: str) -> None:
    refused = as_user("alice").form("/admin/presets/new", {**VALID, "name": name, "team": team})
    assert refused.status_code == 422 and field_error(refused.text) == [
        f"The {field}: 1 to 64 letters, digits, - or _ (e.g. sales-emea)."
    ]
    with sessions() as session:
        assert session.scalar(select(store.Preset).where(store.Preset.name.in_([name, "ok"]))) is None


def test_a_taken_name_is_refused(as_user, sessions) -> None:
    alice = as_user("alice")
    create(alice)
    refused = alice.form("/admin/presets/new", {**VALID, "name": "sales-faq", "team": "legal"})
    assert refused.status_code == 422 and "already exists" in refused.text


def test_restore_makes_a_new_version_equal_to_the_old_one(as_user, sessions) -> None:
    sam = as_user("sam")
    preset_id = create(sam)
    assert save(sam, preset_id, instruction="Only contract passages", top_n="6").status_code == 303
    view = sam.get(f"/admin/presets/{preset_id}/versions/1")
    assert view.status_code == 200 and "Restore" in view.text
    assert "<del>Find</del>" in view.text and "<ins>Only contract</ins>" in view.text  # v1 -> current, word by word
    response = sam.form(f"/admin/presets/{preset_id}/versions/1/restore", {})
    assert response.status_code == 303 and response.headers["location"].endswith("done=restored")
    preset, rows = preset_state(sessions, preset_id)
    assert (preset.version, preset.instruction, preset.top_n) == (3, VALID["instruction"], 3)
    assert [(r.version, r.instruction, r.top_n) for r in rows] == [
        (1, VALID["instruction"], 3),
        (2, "Only contract passages", 6),
        (3, VALID["instruction"], 3),
    ]
    assert sam.form(f"/admin/presets/{preset_id}/versions/9/restore", {}).status_code == 404


def test_a_preset_made_outside_the_admin_app_keeps_its_first_state(sessions) -> None:
    with sessions.begin() as session:
        preset = store.default_preset(session)  # how the bot makes "default": no version row
        form = PresetForm.from_preset(preset)
        form.instruction = "Answer from the handbook"
        update_preset(session, preset, form, "alice")
    with sessions() as session:
        rows = session.scalars(select(store.PresetVersion).order_by(store.PresetVersion.version)).all()
        assert [(r.version, r.author) for r in rows] == [(1, None), (2, "alice")]
        assert rows[0].instruction == store.models.DEFAULT_PRESET_INSTRUCTION


def test_binding_channels(as_user, sessions) -> None:
    sam = as_user("sam")
    first, second = create(sam), create(sam, name="sales-emea")
    assert sam.form(f"/admin/presets/{first}/bindings", {"channel_id": " C0123ABCD "}).status_code == 303
    assert bindings(sessions) == {"C0123ABCD": first}
    assert "C0123ABCD" in sam.get(f"/admin/presets/{first}").text
    # binding it to another preset moves it
    assert sam.form(f"/admin/presets/{second}/bindings", {"channel_id": "C0123ABCD"}).status_code == 303
    assert bindings(sessions) == {"C0123ABCD": second}
    for bad in ("general", "#sales", "c0123abcd", "C0123", "X0123ABCD", ""):
        refused = sam.form(f"/admin/presets/{first}/bindings", {"channel_id": bad})
        assert refused.status_code == 422 and "Not a Slack channel id" in refused.text, bad
    assert bindings(sessions) == {"C0123ABCD": second}
    with sessions() as session:
        binding_id = session.scalar(select(store.ChannelBinding.id))
    assert sam.form(f"/admin/bindings/{binding_id}/delete", {}).status_code == 303
    assert bindings(sessions) == {}


def test_a_team_admin_cannot_change_another_teams_preset(as_user, sessions) -> None:
    lee, sam = as_user("lee"), as_user("sam")
    legal = create(lee, name="legal-contracts", team="legal")
    assert lee.form(f"/admin/presets/{legal}/bindings", {"channel_id": "C0LEGAL001"}).status_code == 303
    assert save(lee, legal, instruction="Contract clauses").status_code == 303
    sales = create(sam)
    with sessions() as session:
        binding_id = session.scalar(select(store.ChannelBinding.id))

    # sam can look, without edit controls
    page = sam.get(f"/admin/presets/{legal}")
    assert page.status_code == 200 and "Read-only" in page.text and ">Save<" not in page.text
    # but every crafted change is refused, and nothing changes
    for url, data in (
        (f"/admin/presets/{legal}", {**VALID, "instruction": "Hijacked"}),
        (f"/admin/presets/{legal}/bindings", {"channel_id": "C0SALES001"}),
        (f"/admin/presets/{legal}/versions/1/restore", {}),
        (f"/admin/presets/{legal}/compare", {**VALID, "question": "What is in the contract?"}),
        (f"/admin/bindings/{binding_id}/delete", {}),
    ):
        assert sam.form(url, data).status_code == 403, url
    # nor can he take legal's channel for his own preset
    moved = sam.form(f"/admin/presets/{sales}/bindings", {"channel_id": "C0LEGAL001"})
    assert moved.status_code == 422 and "only that team" in moved.text
    preset, rows = preset_state(sessions, legal)
    assert (preset.version, preset.instruction, len(rows)) == (2, "Contract clauses", 2)
    assert bindings(sessions) == {"C0LEGAL001": legal}
    # an admin can do all of it
    alice = as_user("alice")
    assert save(alice, legal, instruction="Reviewed by alice").status_code == 303
    assert alice.form(f"/admin/presets/{sales}/bindings", {"channel_id": "C0LEGAL001"}).status_code == 303
    assert bindings(sessions) == {"C0LEGAL001": sales}


def test_a_team_admin_creates_presets_for_their_own_team_only(as_user, sessions) -> None:
    sam = as_user("sam")
    preset_id = create(sam, name="sneaky", team="legal")
    assert preset_state(sessions, preset_id)[0].team == "sales"


def test_a_reviewer_gets_403_on_every_preset_route(as_user, sessions) -> None:
    preset_id = create(as_user("alice"))
    rita = as_user("rita")
    with sessions() as session:
        session.add(store.ChannelBinding(channel_id="C0123ABCD", preset_id=preset_id))
        session.commit()
        binding_id = session.scalar(select(store.ChannelBinding.id))
    pages = (
        "/admin/presets",
        "/admin/presets/new",
        f"/admin/presets/{preset_id}",
        f"/admin/presets/{preset_id}/versions/1",
    )
    for url in pages:
        assert rita.get(url).status_code == 403, url
    for url in (
        "/admin/presets/new",
        f"/admin/presets/{preset_id}",
        f"/admin/presets/{preset_id}/compare",
        f"/admin/presets/{preset_id}/versions/1/restore",
        f"/admin/presets/{preset_id}/bindings",
        f"/admin/bindings/{binding_id}/delete",
    ):
        data = {**VALID, "name": "x", "team": "sales", "channel_id": "C0SALES001"}
        assert rita.form(url, data).status_code == 403, url
    preset, rows = preset_state(sessions, preset_id)
    assert preset.version == 1 and len(rows) == 1 and bindings(sessions) == {"C0123ABCD": preset_id}


def test_compare_asks_for_a_question_without_loading_the_pipeline(as_user) -> None:
    sam = as_user("sam")
    preset_id = create(sam)
    refused = sam.form(f"/admin/presets/{preset_id}/compare", {**VALID, "instruction": "Draft text", "question": " "})
    assert refused.status_code == 422 and "Type a question" in refused.text and "Draft text" in refused.text


def ranking(html: str, side: str) -> list[tuple[str, float]]:
    titles = re.findall(rf'<td class="{side}"><strong class="title">([^<]*)</strong>', html)
    scores = re.findall(rf'class="score {side}-score">([\d.]+)<', html)
    assert titles and len(titles) == len(scores)
    return [(t, float(s)) for t, s in zip(titles, scores, strict=True)]


def test_compare_ranks_the_same_candidates_with_the_saved_and_the_draft_instruction(live, components) -> None:
    sam = live("sam")
    preset_id = create(sam, candidates_k="8")
    draft = "Retrieve passages about security certifications and audits"
    response = sam.form(
        f"/admin/presets/{preset_id}/compare", {**VALID, "instruction": draft, "question": "How do I set up SAML?"}
    )
    assert response.status_code == 200, response.text
    assert f">{draft}</textarea>" in response.text  # the draft stays in the editor, unsaved
    saved, drafted = ranking(response.text, "saved"), ranking(response.text, "draft")
    assert len(saved) == len(drafted) == 8
    assert sorted(t for t, _ in saved) == sorted(t for t, _ in drafted)
    assert [s for _, s in saved] == sorted((s for _, s in saved), reverse=True)
    assert sorted(s for _, s in saved) != sorted(s for _, s in drafted)
    assert "Retrieval: <strong>hybrid</strong>" in response.text  # the preset's default mode, fused
    lines = leg_lines(response.text)
    assert len(lines) == 16 and any("dense-rank" in line for line in lines)
    assert any("lexical-rank" in line for line in lines)
    with components.sessions() as session:
        assert session.get(store.Preset, preset_id).instruction == VALID["instruction"]

    # a ranking made with the preset points at the version that produced it
    assert save(sam, preset_id, instruction=draft, candidates_k="8").status_code == 303
    result = components.answers.ask("How do I set up SAML?", preset_name="sales-faq")
    with components.sessions() as session:
        log = session.get(store.RankingLog, result.ranking_id)
        version = session.scalar(
            select(store.PresetVersion).where(
                store.PresetVersion.preset_id == log.preset_id, store.PresetVersion.version == log.preset_version
            )
        )
        assert (log.preset_version, version.instruction, version.author) == (2, draft, "sam")


def passage(point: str, retrieval_rank: int, **legs: float) -> Candidate:
    return Candidate(
        point, point, point, f"kb/{point}.md", "", f"About {point}", retrieval_rank, 1 / retrieval_rank, **legs
    )


class FakeRetriever:
    """Retrieval by mode from `runs`, recording the modes asked for."""

    def __init__(self, runs: dict[str, RetrievalResult]) -> None:
        self.runs, self.searched = runs, []

    def search(self, question: str, collection: str, limit: int, filters=None, mode: str = "hybrid", explain=True):
        self.searched.append(mode)
        return self.runs[mode]


class FakeReranker:
    """Scores that depend on the instruction only."""

    name = "fake"
    SCORES: ClassVar[dict[str, dict[str, float]]] = {  # instruction -> passage -> score
        VALID["instruction"]: {"SSO": 0.9, "Billing": 0.5, "Okta": 0.2},
        "Billing first": {"Billing": 0.8, "Invoices": 0.7, "SSO": 0.1, "Okta": 0.05},
    }

    def score(self, question: str, passages: list[str], instruction: str | None = None) -> list[float]:
        return [self.SCORES[instruction][p.split("\n")[0]] for p in passages]


def answer_service(sessions, retriever: FakeRetriever):
    """The real answer service over the test database, with a fake retriever and reranker."""
    from bot.answering import AnswerService, ExtractiveAnswerer, Presets, RankingRecorder, RerankerSlot

    return AnswerService(
        Presets(sessions, "kb"), retriever, RerankerSlot(FakeReranker), ExtractiveAnswerer(), RankingRecorder(sessions)
    )


def test_compare_retrieves_with_the_drafts_mode_and_shows_each_legs_rank(sessions) -> None:
    from admin import create_admin_app
    from bot.app.web import create_http_app

    fallback = "Collection kb holds no keyword vectors: retrieval ran dense only."
    pipeline = FakeRetriever(
        {
            "hybrid": RetrievalResult(  # the saved mode, falling back
                [
                    passage("SSO", 1, dense_rank=1, dense_score=0.8),
                    passage("Billing", 2, dense_rank=2, dense_score=0.7),
                    passage("Okta", 3, dense_rank=3, dense_score=0.6),
                ],
                mode="dense",
                note=fallback,
            ),
            "lexical": RetrievalResult(
                [passage("Billing", 1, lexical_rank=1, lexical_score=9.5), passage("Invoices", 2, lexical_rank=2)],
                mode="lexical",
            ),
        }
    )
    answers = answer_service(sessions, pipeline)
    app = create_http_app(None, create_admin_app(sessions, lambda: answers, secret_key="test-secret"))
    with signed_in_clients(app) as sign_in:
        sam = sign_in("sam")
        preset_id = create(sam)
        url = f"/admin/presets/{preset_id}/compare"
        draft = {**VALID, "instruction": "Billing first", "question": "Who sends invoices?"}

        other_mode = sam.form(url, {**draft, "retrieval_mode": "lexical"})
        assert other_mode.status_code == 200, other_mode.text
        assert pipeline.searched == ["hybrid", "lexical"]
        assert selected_mode(other_mode.text) == "lexical"  # the draft stays in the editor
        assert "Retrieval: saved <strong>dense</strong>, draft <strong>lexical</strong>" in other_mode.text
        assert fallback in other_mode.text
        assert ranking(other_mode.text, "saved") == [("SSO", 0.9), ("Billing", 0.5), ("Okta", 0.2)]
        assert ranking(other_mode.text, "draft") == [("Billing", 0.8), ("Invoices", 0.7)]  # a shorter list
        assert '<td class="draft missing">' in other_mode.text
        assert '<span class="moved up">▲1</span>' in other_mode.text  # Billing: 2nd saved, 1st in the draft
        assert '<span class="moved new">new</span>' in other_mode.text  # Invoices: the saved mode misses it
        lines = [re.sub(r"<[^>]+>|\s+", " ", line).split() for line in leg_lines(other_mode.text)]
        assert lines[:2] == [
            ["retrieval", "#1", "·", "dense", "#1", "·", "lexical", "–"],  # saved SSO
            ["retrieval", "#1", "·", "dense", "–", "·", "lexical", "#1"],  # draft Billing
        ]
        assert 'title="lexical score 9.5000">#1' in other_mode.text

        same_mode = sam.form(url, draft)  # no retrieval_mode: the preset's
        assert same_mode.status_code == 200 and pipeline.searched == ["hybrid", "lexical", "hybrid"]
        assert "Retrieval: <strong>dense</strong>" in same_mode.text and fallback in same_mode.text
        assert [t for t, _ in ranking(same_mode.text, "draft")] == ["Billing", "SSO", "Okta"]
        assert "▲1" in same_mode.text and "▼1" in same_mode.text and "moved new" not in same_mode.text

        refused = sam.form(url, {**draft, "retrieval_mode": "bm25"})
        assert refused.status_code == 422 and "One of hybrid, dense, lexical." in field_error(refused.text)
        assert pipeline.searched == ["hybrid", "lexical", "hybrid"]
    preset, rows = preset_state(sessions, preset_id)
    assert (preset.version, preset.retrieval_mode, preset.instruction, len(rows)) == (
        1,
        "hybrid",
        VALID["instruction"],
        1,
    )


def leg_lines(html: str) -> list[str]:
    return re.findall(r'<span class="channels muted">(.*?)</span>\s*</td>', html, re.S)
