"""The admin pages' Jinja environment and the one way a route renders a page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from admin.channels import channel_choices, channel_label
from admin.deps import CurrentUser, csrf_token
from admin.presets import REPLY_VISIBILITY_LABELS, RETRIEVAL_LABELS

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals["csrf_token"] = csrf_token
templates.env.globals["retrieval_labels"] = RETRIEVAL_LABELS
templates.env.globals["reply_visibility_labels"] = REPLY_VISIBILITY_LABELS
templates.env.globals["channel_label"] = channel_label
templates.env.globals["channel_choices"] = channel_choices
SNIPPET_CHARS = 240


def snippet(text: str) -> str:
    """A passage on one line, cut to SNIPPET_CHARS with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1].rstrip() + "…"


templates.env.filters["snippet"] = snippet


def render(
    request: Request, template: str, user: CurrentUser | None, status_code: int = 200, **context: Any
) -> Response:
    return templates.TemplateResponse(request, template, {"user": user, **context}, status_code=status_code)
