"""The passages an answer is written from: the best-ranked chunks grouped by the place they come from (one
document's one section), so overlapping chunks of a section become one passage and one citation."""

from __future__ import annotations

import dataclasses

import store
from bot.answering.results import RankedCandidate
from bot.answering.writers import Passage
from retrieval import Candidate

_MIN_OVERLAP = 12  # characters: shorter shared edges are coincidence, not the chunker's overlap


def place_of(candidate: Candidate | store.LoggedCandidate) -> tuple[str, str]:
    """Where a chunk comes from: its document and section (heading path); the same for a logged chunk."""
    return (candidate.doc_id or candidate.source, candidate.section)


def choose_places(ranked: list[RankedCandidate], limit: int) -> list[list[RankedCandidate]]:
    """The first `limit` distinct places in rank order, each with its chunks ranked above the next new place
    (best first). Three places are three different sections, not one section's three overlapping chunks."""
    places: dict[tuple[str, str], list[RankedCandidate]] = {}
    for rc in ranked:
        key = place_of(rc.candidate)
        if key not in places:
            if len(places) >= limit:
                break
            places[key] = []
        places[key].append(rc)
    return list(places.values())


def merged_passage(n: int, place: list[RankedCandidate]) -> Passage:
    """One passage for a place: its chunks' texts joined where they overlap, with the best chunk's score."""
    best = place[0]
    text = join_overlapping([rc.candidate.text for rc in place])
    return Passage(n, dataclasses.replace(best.candidate, text=text), best.rerank_score)


def join_overlapping(texts: list[str]) -> str:
    """Texts of one section's chunks as one text: a chunk contained in another is dropped, and one that starts
    with the end of the other (the chunker's overlap) is joined there, whichever order they were ranked in."""
    merged = texts[0]
    for text in texts[1:]:
        if text in merged:
            continue
        if merged in text:
            merged = text
        elif k := _overlap(merged, text):
            merged += text[k:]
        elif k := _overlap(text, merged):
            merged = text + merged[k:]
        else:
            merged += "\n\n" + text
    return merged


def _overlap(first: str, second: str) -> int:
    """Length of the longest end of `first` that `second` starts with (0 when under `_MIN_OVERLAP`)."""
    head = second[:_MIN_OVERLAP]
    if len(head) < _MIN_OVERLAP:
        return 0
    i = first.find(head, max(0, len(first) - len(second)))
    while i != -1:
        if second.startswith(first[i:]):
            return len(first) - i
        i = first.find(head, i + 1)
    return 0
