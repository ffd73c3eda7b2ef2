"""Presets and channel bindings for the admin app: validation and versioned changes (a draft's comparison
with the saved preset is the answer service's, `AnswerService.compare`).

No HTTP here. Nothing commits: the caller owns the transaction. Every function that changes something
validates everything first, so a rejected change leaves the database as it was.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from admin import audit
from bot.answering import RETRIEVAL_MODES
from store import ChannelBinding, Preset, PresetVersion, RankingLog
from store.models import DEFAULT_RETRIEVAL_MODE

MAX_INSTRUCTION_CHARS = 1000
CANDIDATES_K = (1, 200)
TOP_N = (1, 10)
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CHANNEL_RE = re.compile(r"^[CGD][A-Z0-9]{8,}$")
# The preset fields a version records; a change to any of them makes a new version.
VERSIONED = ("instruction", "candidates_k", "top_n", "min_score", "collection", "retrieval_mode")
# The retrieval modes (bot.answering.RETRIEVAL_MODES) as the preset form offers them, the default first.
_DESCRIBED = {"hybrid": "dense + lexical fused", "dense": "embeddings only", "lexical": "BM25 keywords only"}
RETRIEVAL_LABELS = {
    mode: f"{mode} — {_DESCRIBED[mode]}"
    for mode in sorted(RETRIEVAL_MODES, key=lambda mode: mode != DEFAULT_RETRIEVAL_MODE)
}


class FormErrors(ValueError):
    """A rejected form: `errors` maps each field name to the message shown next to it."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class PresetForm:
    """The preset form as typed (strings), so a rejected form is shown back exactly as it was sent."""

    name: str = ""
    team: str = ""
    instruction: str = ""
    candidates_k: str = "20"
    top_n: str = "3"
    min_score: str = "0"
    collection: str = ""
    retrieval_mode: str = DEFAULT_RETRIEVAL_MODE

    @classmethod
    def from_preset(cls, preset: Preset | PresetVersion) -> PresetForm:
        return cls(
            name=getattr(preset, "name", ""),
            team=getattr(preset, "team", ""),
            instruction=preset.instruction,
            candidates_k=str(preset.candidates_k),
            top_n=str(preset.top_n),
            min_score=str(float(preset.min_score)),  # round-trips exactly: no false changes
            collection=preset.collection or "",
            retrieval_mode=preset.retrieval_mode or DEFAULT_RETRIEVAL_MODE,
        )

    def validate(self, *, new: bool) -> tuple[dict[str, Any], dict[str, str]]:
        """(typed values, field errors). `new`: name and team are checked too (they are fixed after creation)."""
        errors: dict[str, str] = {}
        values: dict[str, Any] = {}
        if new:
            for field in ("name", "team"):
                text = self.name.strip() if field == "name" else self.team.strip()
                if not NAME_RE.match(text):
                    errors[field] = f"The {field}: 1 to 64 letters, digits, - or _ (e.g. sales-emea)."
                values[field] = text
        instruction = self.instruction.replace("\r\n", "\n").strip()
        if not instruction:
            errors["instruction"] = "An instruction is required: tell the reranker what a good passage is."
        elif len(instruction) > MAX_INSTRUCTION_CHARS:
            errors["instruction"] = f"At most {MAX_INSTRUCTION_CHARS:,} characters (this one has {len(instruction):,})."
        values["instruction"] = instruction
        for field, (low, high) in (("candidates_k", CANDIDATES_K), ("top_n", TOP_N)):
            raw = getattr(self, field).strip()
            number = int(raw) if re.fullmatch(r"[+-]?\d+", raw) else None
            if number is None or not low <= number <= high:
                errors[field] = f"A whole number from {low} to {high}."
            values[field] = number
        try:
            score = float(self.min_score.strip())
        except ValueError:
            score = None
        if score is None or not 0.0 <= score <= 1.0:  # NaN fails the comparison too
            errors["min_score"] = "A number from 0 to 1 (the reranker's score scale), e.g. 0.3."
        values["min_score"] = score
        collection = self.collection.strip()
        if collection and not NAME_RE.match(collection):
            errors["collection"] = "Letters, digits, - or _ (up to 64), or empty for the default collection."
        values["collection"] = collection or None
        mode = self.retrieval_mode.strip()
        if mode not in RETRIEVAL_MODES:
            errors["retrieval_mode"] = f"One of {', '.join(RETRIEVAL_LABELS)}."
        values["retrieval_mode"] = mode
        return values, errors


def _record_version(session: Session, preset: Preset, author: str | None) -> PresetVersion:
    row = PresetVersion(preset_id=preset.id, version=preset.version, author=author)
    for field in VERSIONED:
        setattr(row, field, getattr(preset, field))
    session.add(row)
    return row


def version_row(session: Session, preset: Preset, version: int) -> PresetVersion | None:
    return session.scalar(
        select(PresetVersion).where(PresetVersion.preset_id == preset.id, PresetVersion.version == version)
    )


def versions(session: Session, preset: Preset) -> list[PresetVersion]:
    """Newest first."""
    return list(
        session.scalars(
            select(PresetVersion).where(PresetVersion.preset_id == preset.id).order_by(PresetVersion.version.desc())
        )
    )


def changed_fields(old: Preset | PresetVersion | None, new: Preset | PresetVersion) -> list[str]:
    if old is None:
        return []
    return [f for f in VERSIONED if getattr(old, f) != getattr(new, f)]


def rankings_per_version(session: Session, preset: Preset) -> dict[int, int]:
    """How many logged rankings each version of this preset produced."""
    rows = session.execute(
        select(RankingLog.preset_version, func.count())
        .where(RankingLog.preset_id == preset.id)
        .group_by(RankingLog.preset_version)
    )
    return {version: count for version, count in rows}


def _state(preset: Preset, fields: tuple[str, ...] | list[str] = VERSIONED) -> dict[str, Any]:
    """The preset's `fields` and version, as the audit log records them."""
    return {"version": preset.version, **{f: getattr(preset, f) for f in fields}}


def preset_teams(session: Session) -> list[str]:
    """The teams that own at least one preset, sorted."""
    return list(session.scalars(select(Preset.team).distinct().order_by(Preset.team)))


def create_preset(session: Session, form: PresetForm, author: str) -> Preset:
    """A new preset at version 1, with its version row and audit entry. FormErrors when the form is invalid or
    the name taken."""
    values, errors = form.validate(new=True)
    if "name" not in errors and session.scalar(select(Preset.id).where(Preset.name == values["name"])):
        errors["name"] = f"A preset named {values['name']!r} already exists."
    if errors:
        raise FormErrors(errors)
    preset = Preset(version=1, **values)
    session.add(preset)
    session.flush()
    _record_version(session, preset, author)
    audit.record(
        session,
        author,
        audit.Action.PRESET_CREATE,
        f"preset {preset.name}",
        None,
        {"team": preset.team, **_state(preset)},
    )
    session.flush()
    return preset


def update_preset(
    session: Session,
    preset: Preset,
    form: PresetForm,
    author: str,
    *,
    action: audit.Action = audit.Action.PRESET_UPDATE,
    note: dict[str, Any] | None = None,
) -> Preset:
    """Apply the form's versioned fields as a new version (none when nothing changed), audited as `action` with
    the changed fields before and after (plus `note` after). Name and team stay."""
    values, errors = form.validate(new=False)
    if errors:
        raise FormErrors(errors)
    values = {f: values[f] for f in VERSIONED}
    if all(getattr(preset, f) == v for f, v in values.items()):
        return preset
    if version_row(session, preset, preset.version) is None:
        # A preset made outside the admin app (the stock default) has no row yet: keep its old state first.
        _record_version(session, preset, None)
    changed = [f for f, v in values.items() if getattr(preset, f) != v]
    before = _state(preset, changed)
    for field, value in values.items():
        setattr(preset, field, value)
    preset.version += 1
    _record_version(session, preset, author)
    audit.record(session, author, action, f"preset {preset.name}", before, {**_state(preset, changed), **(note or {})})
    session.flush()
    return preset


def restore_version(session: Session, preset: Preset, version: int, author: str) -> Preset:
    """Make a NEW version equal to `version` (history is never rewritten). LookupError when it does not exist."""
    old = version_row(session, preset, version)
    if old is None:
        raise LookupError(f"Preset {preset.name!r} has no version {version}.")
    form = PresetForm.from_preset(old)
    return update_preset(session, preset, form, author, action=audit.Action.PRESET_RESTORE, note={"restored": version})


def word_diff(old: str, new: str) -> list[tuple[str, str]]:
    """(op, text) segments turning `old` into `new`, word by word; op is "same", "del" or "ins"."""
    a, b = re.findall(r"\s*\S+|\s+$", old), re.findall(r"\s*\S+|\s+$", new)  # words with their leading space
    segments: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            segments.append(("same", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            segments.append(("del", "".join(a[i1:i2])))
        if j2 > j1:
            segments.append(("ins", "".join(b[j1:j2])))
    return segments


# -- channel bindings -------------------------------------------------------------------------------


def channel_error(channel_id: str) -> str | None:
    if not CHANNEL_RE.match(channel_id):
        return (
            "Not a Slack channel id: it looks like C0123ABCD (C, G or D, then 8 or more capital letters or "
            "digits). In Slack: channel name > About > Channel ID. Channel names like #sales do not work."
        )
    return None


def bind(
    session: Session,
    channel_id: str,
    preset: Preset,
    may_edit_team: Callable[[str], bool] | None = None,
    *,
    actor: str,
) -> ChannelBinding:
    """Make `channel_id` use `preset`, moving its binding when it had one (audited as `actor`). `may_edit_team`
    says whether the binding may be taken from a preset of another team. FormErrors (field "channel_id")
    otherwise."""
    channel_id = channel_id.strip()
    error = channel_error(channel_id)
    if error:
        raise FormErrors({"channel_id": error})
    binding = session.scalar(select(ChannelBinding).where(ChannelBinding.channel_id == channel_id))
    target = f"channel {channel_id}"
    if binding is None:
        binding = ChannelBinding(channel_id=channel_id, preset=preset)
        session.add(binding)
        audit.record(session, actor, audit.Action.BINDING_CREATE, target, None, {"preset": preset.name})
    elif binding.preset_id != preset.id:
        owner = binding.preset
        if may_edit_team is not None and not may_edit_team(owner.team):
            raise FormErrors(
                {
                    "channel_id": f"{channel_id} is bound to preset {owner.name!r} of team {owner.team!r}; "
                    "only that team's admin or an admin can move it."
                }
            )
        audit.record(session, actor, audit.Action.BINDING_MOVE, target, {"preset": owner.name}, {"preset": preset.name})
        binding.preset = preset
    session.flush()
    return binding


def unbind(session: Session, binding: ChannelBinding, *, actor: str) -> None:
    """The channel goes back to the default preset (audited as `actor`)."""
    before = {"preset": binding.preset.name}
    audit.record(session, actor, audit.Action.BINDING_DELETE, f"channel {binding.channel_id}", before, None)
    session.delete(binding)
    session.flush()
