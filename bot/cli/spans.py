"""Time spans given on the command line (`90d`, `36h`, `12w`, `30m`): one parser for every option that takes one."""

from __future__ import annotations

import re
from datetime import timedelta

import typer

_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_SPAN = re.compile(r"(\d{1,6})([a-z])")


def parse_span(text: str, option: str, units: str = "mhdw") -> timedelta:
    """`text` as a positive span in one of `units` (m, h, d, w); a `typer.BadParameter` naming `option` and what
    it accepts otherwise, so a typo is said before anything is opened."""
    match = _SPAN.fullmatch(text.strip().lower())
    if match is None or match[2] not in units or int(match[1]) == 0:
        examples = ", ".join(example for example in ("90d", "36h", "12w", "30m") if example[-1] in units)
        raise typer.BadParameter(
            f"{text!r} is not a span: give a number and a unit, e.g. {examples}.", param_hint=f"'{option}'"
        )
    return timedelta(**{_UNITS[match[2]]: int(match[1])})
