"""A saved preset against a draft on one question: the same candidates (unless the draft retrieves another
way), reranked with each instruction, side by side."""

from __future__ import annotations

from itertools import zip_longest

from bot.answering.errors import CompareError, QuestionError
from bot.answering.questions import validate_question
from bot.answering.ranking import RerankerSlot, first_sentence, rerank_candidates
from bot.answering.results import CompareRow, Comparison, PresetSnapshot
from retrieval import RetrievalError, Retriever


def compare_presets(
    retriever: Retriever,
    reranker: RerankerSlot,
    saved: PresetSnapshot,
    draft_instruction: str,
    question: str,
    draft_mode: str | None = None,
) -> Comparison:
    """Retrieve the saved preset's candidates, rerank them with the saved instruction and with the draft. The
    draft retrieves again only when `draft_mode` (None: the saved one) differs. CompareError when it cannot run."""
    try:
        question = validate_question(question)
    except QuestionError as exc:
        raise CompareError(str(exc)) from exc
    draft = draft_instruction.replace("\r\n", "\n").strip()
    if not draft:
        raise CompareError("The draft instruction is empty.")
    model = reranker.get()
    if model is None:
        raise CompareError(
            f"The reranker is not available ({first_sentence(reranker.error or 'it did not load')}), "
            "so there are no scores to compare. Fix RERANK_MODEL and restart ragbot."
        )
    draft_mode = draft_mode or saved.retrieval_mode
    k, collection = saved.candidates_k, saved.collection
    try:
        filters = saved.filters()  # the draft changes the instruction or mode, not what the preset may search
        saved_run = retriever.search(question, collection, k, filters=filters, mode=saved.retrieval_mode)
        same = draft_mode == saved.retrieval_mode
        draft_run = saved_run if same else retriever.search(question, collection, k, filters=filters, mode=draft_mode)
    except RetrievalError as exc:
        raise CompareError(f"Retrieval from collection {collection!r} failed: {exc}") from exc
    try:
        saved_ranking = rerank_candidates(model, question, saved_run.candidates, saved.instruction)
        draft_ranking = rerank_candidates(model, question, draft_run.candidates, draft)
    except Exception as exc:  # a broken model must not take the editor down
        raise CompareError(f"The reranker failed: {type(exc).__name__}: {exc}") from exc

    saved_rank = {rc.candidate.point_id: rc.rerank_rank for rc in saved_ranking}
    rows = []
    for s, d in zip_longest(saved_ranking, draft_ranking):
        was = saved_rank.get(d.candidate.point_id) if d is not None else None
        moved = was - d.rerank_rank if d is not None and was is not None else None
        rows.append(CompareRow(s, d, moved if d is not None else 0))
    notes = list(dict.fromkeys(run.note for run in (saved_run, draft_run) if run.note))
    return Comparison(rows, saved_run.mode, draft_run.mode, notes)
