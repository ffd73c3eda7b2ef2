"""How an answer in the making reports its progress: the stages it goes through and, when the answer writer
streams, the answer's text as it is written. Surfaces subclass `AnswerProgress` (the Slack pane shows a status and
streams the text); every method does nothing by default, and a failing one never costs the answer."""

from __future__ import annotations


class AnswerProgress:
    """Called by `AnswerService.ask` from the thread that answers, in this order: `searching` once, `reading` once
    retrieval found candidates, `writing` before the answer is written, then `text` for each piece of a streamed
    answer (never for an extractive one)."""

    def searching(self, question: str) -> None:
        """Retrieval starts; `question` is what is searched (a follow-up's standalone form)."""

    def reading(self, passages: int) -> None:
        """The reranker reads `passages` candidates."""

    def writing(self) -> None:
        """The answer is being written from the top passages."""

    def text(self, delta: str) -> None:
        """The next piece of the answer's text, its citations already numbered as the final answer numbers them
        (the streamed pieces joined are the answer's text, up to white space). A stream that breaks off is
        replaced: the result is then the extractive answer (`answer_writer` "extractive", `note` says why), and
        the pieces shown so far are not part of it. The writer streams only when a subclass overrides this."""
