"""The retention thread `ragbot serve` runs: purges at start and again every turn, survives a database that is
away (it tries again at the next turn), and stops when the server closes."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from pathlib import Path

import pytest

import store
from bot.app.retention import RetentionWorker
from tests.e2e.test_cli import closed_port


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline
        time.sleep(0.02)


def test_it_purges_at_start_and_every_turn_then_stops(tmp_path: Path) -> None:
    engine = store.make_engine(f"sqlite:///{tmp_path / 'ragbot.db'}")
    store.upgrade_database(engine)
    worker = RetentionWorker(store.session_factory(engine), keep=timedelta(days=90), every_s=0.05)
    worker.start()
    try:
        wait_for(lambda: worker.runs >= 3)
    finally:
        worker.stop()
    runs = worker.runs
    time.sleep(0.2)
    assert worker.runs == runs  # stopped
    engine.dispose()


def test_a_database_that_is_away_is_logged_and_tried_again(caplog: pytest.LogCaptureFixture) -> None:
    engine = store.make_engine(f"postgresql+psycopg://ragbot:s3cret@127.0.0.1:{closed_port()}/ragbot?connect_timeout=1")
    worker = RetentionWorker(store.session_factory(engine), keep=timedelta(days=90), every_s=0.05)
    with caplog.at_level(logging.WARNING, logger="bot.app.retention"):
        worker.start()
        try:
            wait_for(lambda: len([r for r in caplog.records if "purge failed" in r.getMessage()]) >= 2)
        finally:
            worker.stop()
    assert worker.runs == 0
    engine.dispose()
