"""The ranking log: every question, answered or failed, with the preset it ran with and every candidate.

When the database is away at the moment a record is written, the record waits on disk (`spool_dir`, one JSON
file each) and a background thread writes it once the database is back. Each spooled record carries a key
that the database keeps unique, so a record is written once even if the process dies between writing it and
deleting its file."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

import store
from bot.answering.results import AnswerStatus, AskResult, PresetSnapshot, RankedCandidate, RerankStatus, leg_fields
from redact import mask_secrets

log = logging.getLogger(__name__)
# What "the database is away" looks like from here: the driver's errors (connection refused, server gone) and
# a pool that cannot hand out a connection in time.
DATABASE_AWAY = (DBAPIError, PoolTimeout)
RETRY_S = 5.0


def _candidate_row(rc: RankedCandidate) -> dict[str, Any]:
    c = rc.candidate
    return {
        "point_id": c.point_id,
        "doc_id": c.doc_id,
        "title": c.title,
        "source": c.source,
        "section": c.section,
        "text": c.text,
        "retrieval_rank": c.retrieval_rank,
        "retrieval_score": c.retrieval_score,
        **leg_fields(c),
        "rerank_rank": rc.rerank_rank,
        "rerank_score": rc.rerank_score,
        "used": rc.used,
        "citation": rc.citation,
    }


class RankingRecorder:
    """Writes one `ranking_logs` row (and its candidates) per question, in one transaction. With `spool_dir`,
    a record the database cannot take now is kept there and written later (the call then returns None)."""

    def __init__(self, sessions: sessionmaker[Session], spool_dir: Path | None = None) -> None:
        self._sessions = sessions
        self._spool = spool_dir
        self._retrying = threading.Lock()
        self._retry_thread: threading.Thread | None = None
        if self.spooled():  # an earlier process left records behind
            self._retry_later()

    def answered(self, result: AskResult, channel: str | None, user: str | None) -> int | None:
        """Log an answered (or not-answered) question; returns the ranking id (None: kept on disk for now)."""
        return self._record(
            question=result.question,
            asked=result.asked,
            channel=channel,
            user=user,
            preset=dataclasses.asdict(result.preset),
            answer=result.answer,
            status=result.status.value,
            error=result.note,
            rerank_status=str(result.rerank),
            reranker=result.reranker,
            timings_ms=result.timings_ms,
            retrieval_mode=result.retrieval_mode,
            candidates=[_candidate_row(rc) for rc in result.candidates],
        )

    def failed(
        self,
        question: str,
        channel: str | None,
        user: str | None,
        preset: PresetSnapshot,
        exc: BaseException,
        timings_ms: dict[str, float],
        asked: str | None = None,
    ) -> int | None:
        """Log a failed question so reviewers see it; a failing database must not hide `exc` (returns None)."""
        try:
            return self._record(
                question=question,
                asked=asked if asked != question else None,
                channel=channel,
                user=user,
                preset=dataclasses.asdict(preset),
                answer=None,
                status=AnswerStatus.ERROR.value,
                error=f"{type(exc).__name__}: {exc}",
                rerank_status=str(RerankStatus.skipped("the question failed")),
                reranker=None,
                timings_ms=timings_ms,
                retrieval_mode=None,
                candidates=[],
            )
        except Exception:
            log.exception("Could not log the failed question")
            return None

    def spooled(self) -> list[Path]:
        """The records waiting on disk, oldest first."""
        if self._spool is None or not self._spool.is_dir():
            return []
        return sorted(self._spool.glob("*.json"))

    def flush(self) -> int:
        """Write what waits on disk; returns how many are left (the database is still away)."""
        for path in self.spooled():
            fields = json.loads(path.read_text(encoding="utf-8"))
            try:
                self._write(fields, record_key=path.stem)
            except IntegrityError:  # written before, by a process that died before deleting the file
                pass
            except DATABASE_AWAY:
                return len(self.spooled())
            path.unlink(missing_ok=True)
            log.warning("Wrote a ranking kept on disk through a database outage (%s)", path.stem)
        return 0

    # -- internals ---------------------------------------------------------------------------------
    def _record(self, **fields: Any) -> int | None:
        # Errors and statuses quote configured URLs: whatever built them, no credential is kept in the log.
        for name in ("error", "rerank_status", "reranker"):
            if fields.get(name):
                fields[name] = mask_secrets(fields[name])
        try:
            return self._write(fields)
        except DATABASE_AWAY:
            if self._spool is None:
                raise
            log.warning("The database is away: keeping this ranking on disk until it is back", exc_info=True)
            self._spool.mkdir(parents=True, exist_ok=True)
            # Time-ordered names keep the log's order; the write is atomic (rename), so no half file is read.
            name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
            partial = self._spool / f"{name}.part"
            partial.write_text(json.dumps(fields, ensure_ascii=False), encoding="utf-8")
            partial.rename(self._spool / f"{name}.json")
            self._retry_later()
            return None

    def _write(self, fields: dict[str, Any], record_key: str | None = None) -> int:
        fields = dict(fields)
        preset = fields.pop("preset")
        with self._sessions.begin() as session:
            row = store.record_ranking(
                session,
                preset=session.get(store.Preset, preset["id"]) if preset["id"] else None,
                instruction=preset["instruction"],
                collection=preset["collection"],
                record_key=record_key,
                **fields,
            )
            return row.id

    def _retry_later(self) -> None:
        with self._retrying:
            if self._retry_thread is not None and self._retry_thread.is_alive():
                return
            self._retry_thread = threading.Thread(target=self._retry, name="ragbot-spool", daemon=True)
            self._retry_thread.start()

    def _retry(self) -> None:
        while True:
            time.sleep(RETRY_S)
            try:
                if self.flush() == 0:
                    return
            except Exception:
                log.exception("Writing the rankings kept on disk failed; trying again later")
