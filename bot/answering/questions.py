"""What makes a question usable: not empty, not longer than a question should be."""

from __future__ import annotations

from bot.answering.errors import QuestionError

MAX_QUESTION_CHARS = 4000


def validate_question(question: str) -> str:
    """The question stripped, or QuestionError with a message that says what to do."""
    text = question.strip()
    if not text:
        raise QuestionError('The question is empty: ask something, e.g. ragbot ask "How do I set up SAML?"')
    if len(text) > MAX_QUESTION_CHARS:
        raise QuestionError(
            f"The question is {len(text):,} characters long; the limit is {MAX_QUESTION_CHARS:,}. "
            "Ask about one thing at a time."
        )
    return text
