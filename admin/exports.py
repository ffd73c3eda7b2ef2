"""What every CSV the admin app exports shares: cells a spreadsheet will not run as formulas."""

from __future__ import annotations

from typing import Any

# A cell starting with one of these is a formula (or becomes one) in Excel, LibreOffice and Google Sheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A CSV cell: None as empty, text that a spreadsheet would run as a formula with a leading apostrophe;
    numbers as they are (a negative score stays a number)."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
