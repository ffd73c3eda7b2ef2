"""Presets and channel bindings for the admin app: validation and versioned changes (a draft's comparison
with the saved preset is the answer service's, `AnswerService.compare`). A preset's Slack settings (suggested
prompts, follow-ups, escalation, external users) are saved and audited with it but make no version: they change
how Slack behaves, not what is ranked.

No HTTP here. Nothing commits: the caller owns the transaction. Every function that changes something
validates everything first, so a rejected change leaves the database as it was.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from admin import audit
from bot.answering import RETRIEVAL_MODES
from store import ChannelBinding, Preset, PresetVersion, RankingLog
from store.models import DEFAULT_RETRIEVAL_MODE, REPLY_VISIBILITIES

MAX_INSTRUCTION_CHARS = 1000
CANDIDATES_K = (1, 200)
TOP_N = (1, 10)
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CHANNEL_RE = re.compile(r"^[CGD][A-Z0-9]{8,}$")
USERGROUP_RE = re.compile(r"^S[A-Z0-9]{8,}$")
SUPPORT_CHANNEL_RE = re.compile(r"^[CG][A-Z0-9]{8,}$")  # a DM (D...) is no place to hand questions to
# Slack's assistant pane shows up to 4 suggested prompts, as short buttons: titles must stay short to be read.
MAX_PROMPTS = 4
MAX_PROMPT_TITLE = 75
MAX_PROMPT_MESSAGE = 300
# The Slack settings of a preset: saved and audited, never versioned (they change no ranking).
SLACK_FIELDS = (
    "suggested_prompts",
    "follow_ups",
    "escalation_usergroup",
    "escalation_channel",
    "allow_external",
    "reply_visibility",
)
# Who sees an answer to a question in a channel (DMs and the assistant pane are private either way).
REPLY_VISIBILITY_LABELS = {
    "thread": "in the thread, for everyone in the channel",
    "ephemeral": "only to the asker (an ephemeral message in the thread)",
}
# The preset fields a version records; a change to any of them makes a new version.
VERSIONED = (
    "instruction",
    "candidates_k",
    "top_n",
    "min_score",
    "collection",
    "retrieval_mode",
    "source_filter",
    "tag_filter",
)
# The retrieval filters (source names, tags): comma-separated in the form, a list or None (everything) stored.
FILTER_FIELDS = ("source_filter", "tag_filter")
MAX_FILTER_ENTRIES = 50
MAX_FILTER_ENTRY_CHARS = 100
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
    source_filter: str = ""  # "docs, wiki": only these sources; empty: every source
    tag_filter: str = ""
    # The Slack fieldset; `slack` says whether it was sent at all: a form without it (a script, a restore from a
    # version, which records no Slack settings) leaves the preset's Slack settings as they are.
    suggested_prompts: str = ""
    follow_ups: bool = True
    escalation_usergroup: str = ""
    escalation_channel: str = ""
    allow_external: bool = False
    reply_visibility: str = "thread"
    slack: bool = False

    @classmethod
    def from_preset(cls, preset: Preset | PresetVersion) -> PresetForm:
        form = cls(
            name=getattr(preset, "name", ""),
            team=getattr(preset, "team", ""),
            instruction=preset.instruction,
            candidates_k=str(preset.candidates_k),
            top_n=str(preset.top_n),
            min_score=str(float(preset.min_score)),  # round-trips exactly: no false changes
            collection=preset.collection or "",
            retrieval_mode=preset.retrieval_mode or DEFAULT_RETRIEVAL_MODE,
            source_filter=filter_text(preset.source_filter),
            tag_filter=filter_text(preset.tag_filter),
        )
        return form.with_slack_of(preset) if isinstance(preset, Preset) else form

    def with_slack_of(self, preset: Preset) -> PresetForm:
        """This form with `preset`'s Slack settings, as the form shows them."""
        return replace(
            self,
            suggested_prompts=prompts_text(preset.suggested_prompts),
            follow_ups=preset.follow_ups if preset.follow_ups is not None else True,
            escalation_usergroup=preset.escalation_usergroup or "",
            escalation_channel=preset.escalation_channel or "",
            allow_external=bool(preset.allow_external),
            reply_visibility=preset.reply_visibility or "thread",
            slack=True,
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
        for field in FILTER_FIELDS:
            names, error = parse_filter(getattr(self, field))
            if error:
                errors[field] = error
            values[field] = names
        if self.slack:
            self._validate_slack(values, errors)
        return values, errors

    def _validate_slack(self, values: dict[str, Any], errors: dict[str, str]) -> None:
        prompts, error = parse_prompts(self.suggested_prompts)
        if error:
            errors["suggested_prompts"] = error
        values["suggested_prompts"] = prompts
        values["follow_ups"] = bool(self.follow_ups)
        usergroup = self.escalation_usergroup.strip()
        if usergroup and not USERGROUP_RE.match(usergroup):
            errors["escalation_usergroup"] = (
                "Not a Slack user group id: it looks like S0123ABCD (S, then 8 or more capital letters or digits). "
                "In Slack: People > User groups > the group > ⋯ > Copy group ID. Handles like @support do not work."
            )
        values["escalation_usergroup"] = usergroup or None
        channel = self.escalation_channel.strip()
        if channel and not SUPPORT_CHANNEL_RE.match(channel):
            errors["escalation_channel"] = (
                "Not a Slack channel id: it looks like C0123ABCD (C or G, then 8 or more capital letters or "
                "digits). In Slack: channel name > About > Channel ID. Channel names like #support do not work."
            )
        values["escalation_channel"] = channel or None
        values["allow_external"] = bool(self.allow_external)
        visibility = self.reply_visibility.strip()
        if visibility not in REPLY_VISIBILITIES:
            errors["reply_visibility"] = "Answers go in the thread (thread) or only to the asker (ephemeral)."
        values["reply_visibility"] = visibility


def filter_text(names: list[str] | None) -> str:
    """A stored filter as the form's field shows it: the names, comma-separated ("" for no filter)."""
    return ", ".join(str(name) for name in names or [])


def parse_filter(text: str) -> tuple[list[str] | None, str | None]:
    """(names, error) from a comma-separated field: names trimmed, empty entries and repeats dropped; nothing
    left = None, no filter. At most MAX_FILTER_ENTRIES names of at most MAX_FILTER_ENTRY_CHARS characters."""
    names = list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    if len(names) > MAX_FILTER_ENTRIES:
        return None, f"At most {MAX_FILTER_ENTRIES} names (this has {len(names)})."
    long = [name for name in names if len(name) > MAX_FILTER_ENTRY_CHARS]
    if long:
        return None, f"Each name at most {MAX_FILTER_ENTRY_CHARS} characters ({long[0][:30]!r}… has {len(long[0])})."
    return names or None, None


def prompts_text(prompts: list[dict[str, str]] | None) -> str:
    """Stored prompts as the form's textarea shows them: one a line, `Title | message` (just the message when
    the title is the message itself)."""
    lines = []
    for prompt in prompts or []:
        if not isinstance(prompt, dict):
            continue
        title, message = str(prompt.get("title") or ""), str(prompt.get("message") or "")
        lines.append(message if title == message else f"{title} | {message}")
    return "\n".join(lines)


def parse_prompts(text: str) -> tuple[list[dict[str, str]] | None, str | None]:
    """(prompts, error) from the textarea: one prompt a line, `Title | message` or just the message (then its
    own title); blank lines skipped; nothing at all = None, the stock prompts."""
    lines = [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines:
        return None, None
    if len(lines) > MAX_PROMPTS:
        return None, f"At most {MAX_PROMPTS} prompts (Slack shows {MAX_PROMPTS}); this has {len(lines)}."
    prompts: list[dict[str, str]] = []
    problems: list[str] = []
    for number, line in enumerate(lines, 1):
        title, bar, message = line.partition("|")
        title, message = (title.strip(), message.strip()) if bar else (line, line)
        if not title or not message:
            problems.append(f"line {number}: write `Title | message`, both parts filled in")
        elif len(title) > MAX_PROMPT_TITLE:
            hint = "" if bar else " (give it a short title: `Title | message`)"
            problems.append(f"line {number}: the title has {len(title)} characters, at most {MAX_PROMPT_TITLE}{hint}")
        elif len(message) > MAX_PROMPT_MESSAGE:
            problems.append(f"line {number}: the message has {len(message)} characters, at most {MAX_PROMPT_MESSAGE}")
        prompts.append({"title": title, "message": message})
    if problems:
        text = "; ".join(problems)
        return None, text[0].upper() + text[1:] + "."
    return prompts, None


def slack_state(preset: Preset) -> dict[str, Any]:
    """The preset's Slack settings, as the audit log records them."""
    return {f: getattr(preset, f) for f in SLACK_FIELDS}


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
        {"team": preset.team, **_state(preset), **slack_state(preset)},
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
    """Apply the form's versioned fields as a new version (none when none changed) and its Slack settings (when
    the form has them; never a version), audited as one `action` entry with the changed fields before and after
    (plus `note` after). Name and team stay."""
    values, errors = form.validate(new=False)
    if errors:
        raise FormErrors(errors)
    versioned = {f: values[f] for f in VERSIONED}
    slack = {f: values[f] for f in SLACK_FIELDS if f in values}
    changed = [f for f, v in versioned.items() if getattr(preset, f) != v]
    changed_slack = [f for f, v in slack.items() if getattr(preset, f) != v]
    if not changed and not changed_slack:
        return preset
    before = _state(preset, changed + changed_slack)
    if changed:
        if version_row(session, preset, preset.version) is None:
            # A preset made outside the admin app (the stock default) has no row yet: keep its old state first.
            _record_version(session, preset, None)
        for field in changed:
            setattr(preset, field, versioned[field])
        preset.version += 1
        _record_version(session, preset, author)
    for field in changed_slack:
        setattr(preset, field, slack[field])
    after = {**_state(preset, changed + changed_slack), **(note or {})}
    audit.record(session, author, action, f"preset {preset.name}", before, after)
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
