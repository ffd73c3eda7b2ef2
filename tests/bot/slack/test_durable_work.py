"""Durable work through real processes: `ragbot serve` stopped with SIGTERM or killed with SIGKILL while it
answers, then started again. Every acknowledged question is answered exactly once, or its asker is told."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

import store
from tests.bot.slack.conftest import SIGNING_SECRET, mention
from tests.bot.slack.test_serve_command import free_port, wait_for_health
from tests.fake_openai import FakeOpenAI


def start_serve(port: int, fake_slack, llm_url: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("ragbot")), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env={
            **os.environ,
            "SLACK_BOT_TOKEN": "xoxb-durable",
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": fake_slack.api_url,
            "LLM_BASE_URL": llm_url,
            "SLACK_WORKERS": "1",
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def send(port: int, text: str, ts: str, event_id: str) -> None:
    body = json.dumps({"type": "event_callback", "event_id": event_id, "event": mention(text, ts=ts)})
    stamp = str(int(time.time()))
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=stamp, body=body)
    headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}
    assert httpx.post(f"http://127.0.0.1:{port}/slack/events", content=body, headers=headers).status_code == 200


def ask_three_and_wait_for_the_first_to_run(process: subprocess.Popen, port: int, base: str) -> list[str]:
    """Three mentions to a one-worker bot; returns their timestamps once the first is waiting for the LLM."""
    stamps = [f"{base}.00000{i}" for i in range(3)]
    wait_for_health(process, port)
    for i, ts in enumerate(stamps):
        send(port, f"Question {i}: how do I set up SCIM provisioning?", ts, f"Ev{base}-{i}")
    wait_until(lambda: len(FakeOpenAI.requests) == 1)
    return stamps


def wait_until(condition, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def jobs(env: Path) -> list[store.AnswerJob]:
    engine = create_engine(os.environ["DATABASE_URL"])
    try:
        with Session(engine) as session:
            return list(session.scalars(select(store.AnswerJob).order_by(store.AnswerJob.id)))
    finally:
        engine.dispose()


def answers(fake_slack) -> list[str]:
    """The thread of every answer given: posted (answers carry blocks; notices do not) or, with the LLM
    streaming, a stream stopped with its sources and buttons."""
    posted = [c.args["thread_ts"] for c in fake_slack.calls_to("chat.postMessage") if c.args.get("blocks")]
    stopped = [c.args["ts"] for c in fake_slack.calls_to("chat.stopStream") if c.args.get("blocks")]
    return posted + [fake_slack.streams[ts].thread_ts for ts in stopped]


def test_sigterm_finishes_the_running_answer_and_a_restart_answers_the_queued_ones(env, fake_slack, llm_server):
    FakeOpenAI.delay = 3.0  # a slow LLM: the first answer is running when SIGTERM comes
    port = free_port()
    first = start_serve(port, fake_slack, llm_server, SHUTDOWN_GRACE_S="20")
    try:
        stamps = ask_three_and_wait_for_the_first_to_run(first, port, "1700000300")
        first.send_signal(signal.SIGTERM)
        output, _ = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, output
    assert "Traceback" not in output
    assert answers(fake_slack) == [stamps[0]]  # the running answer was finished, not dropped
    assert [c.args["timestamp"] for c in fake_slack.calls_to("reactions.remove")] == [stamps[0]]  # 👀 stays on the rest
    assert [j.state for j in jobs(env)] == ["answered", "queued", "queued"]
    notices = fake_slack.calls_to("chat.postEphemeral")
    assert len(notices) == 2 and all("queued" in n.args["text"] for n in notices)

    FakeOpenAI.delay = 0.0
    second = start_serve(port, fake_slack, llm_server)
    try:
        wait_until(lambda: len(answers(fake_slack)) == 3, timeout=120)
    finally:
        second.send_signal(signal.SIGTERM)
        output, _ = second.communicate(timeout=60)
    assert sorted(answers(fake_slack)) == stamps  # each question answered once
    assert [(j.state, j.attempts) for j in jobs(env)] == [("answered", 1)] * 3
    assert sorted(c.args["timestamp"] for c in fake_slack.calls_to("reactions.remove")) == stamps
    assert second.returncode == 0 and "Traceback" not in output


def test_a_killed_process_loses_nothing_the_next_one_answers_after_the_lease(env, fake_slack, llm_server):
    """SIGKILL while answering the first of three questions: the next process answers the two that waited at
    once and the first when its lease runs out, each once."""
    FakeOpenAI.delay = 30.0
    port = free_port()
    first = start_serve(port, fake_slack, llm_server, ANSWER_LEASE_S="3")
    try:
        stamps = ask_three_and_wait_for_the_first_to_run(first, port, "1700000400")
        first.kill()  # SIGKILL mid-answer: no shutdown code runs
        first.communicate(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    assert [(j.state, j.attempts) for j in jobs(env)] == [("answering", 1), ("queued", 0), ("queued", 0)]
    assert answers(fake_slack) == []

    FakeOpenAI.delay = 0.0
    second = start_serve(port, fake_slack, llm_server, ANSWER_LEASE_S="3")
    try:
        wait_until(lambda: len(answers(fake_slack)) == 3, timeout=120)
        time.sleep(1.0)  # a second answer would show up by now
    finally:
        second.send_signal(signal.SIGTERM)
        output, _ = second.communicate(timeout=60)
    assert sorted(answers(fake_slack)) == stamps
    done = jobs(env)
    assert [(j.state, j.attempts) for j in done] == [("answered", 2), ("answered", 1), ("answered", 1)]
    assert all(j.ranking_id is not None for j in done)
    assert "Traceback" not in output


def test_a_process_killed_mid_stream_leaves_one_answer_the_next_attempt_replaces_the_half_streamed_message(
    env, fake_slack, llm_server
):
    """SIGKILL while the LLM's answer streams into the thread: the next process answers after the lease, in the
    message the first one began (updated with the whole answer, sources and buttons), not in a second one."""
    FakeOpenAI.piece_delay = 2.0  # a slow stream: the process is killed between two pieces
    port = free_port()
    first = start_serve(port, fake_slack, llm_server, ANSWER_LEASE_S="3")
    try:
        wait_for_health(first, port)
        send(port, "How do I set up SCIM provisioning?", "1700000450.000001", "EvStream")
        [started] = fake_slack.wait_for("chat.startStream")
        wait_until(lambda: jobs(env)[0].reply_ts in fake_slack.streams)  # the job knows the message it streams
        first.kill()  # SIGKILL mid-stream: the message holds a piece of the answer
        first.communicate(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    [half] = fake_slack.streams.values()
    assert half.streaming and half.text and half.thread_ts == started.args["thread_ts"] == "1700000450.000001"

    FakeOpenAI.piece_delay = 0.0
    second = start_serve(port, fake_slack, llm_server, ANSWER_LEASE_S="3")
    try:
        wait_until(lambda: [j.state for j in jobs(env)] == ["answered"], timeout=120)
        time.sleep(1.0)  # a second answer would show up by now
    finally:
        second.send_signal(signal.SIGTERM)
        output, _ = second.communicate(timeout=60)
    [update] = [c for c in fake_slack.calls_to("chat.update") if c.args["ts"] == half.ts]
    assert any(b["type"] == "context_actions" for b in update.args["blocks"])  # the whole answer, with feedback
    assert half.updated and "Business plan" in half.text
    assert len(fake_slack.calls_to("chat.startStream")) == 1  # the second attempt did not stream a new message
    assert answers(fake_slack) == []  # nothing posted or streamed besides the replaced message
    [job] = jobs(env)
    assert (job.attempts, job.reply_ts) == (2, half.ts) and job.ranking_id is not None
    assert "Traceback" not in output


def test_a_question_whose_processes_died_three_times_is_told_it_failed(slack, fake_slack) -> None:
    """A job taken three times and never finished (each process died on it) is not taken a fourth time: the
    asker gets the never-silent message with the job's reference."""
    with slack.parts.sessions.begin() as session:
        job = store.enqueue_job(
            session, kind="mention", question="What is SCIM?", channel="C0SUPPORT1", ts="1.5", thread_ts="1.5"
        )
        job.attempts = 3
        job_id = job.id
    slack.service.workers.wake()
    [reply] = fake_slack.wait_for("chat.postMessage")
    assert "Sorry, something went wrong" in reply.args["text"] and f"J-{job_id}" in reply.args["text"]
    assert reply.args["thread_ts"] == "1.5"
    with slack.parts.sessions() as session:
        failed = session.get(store.AnswerJob, job_id)
        assert (failed.state, failed.attempts) == ("failed", 4) and "gave up after 3 attempts" in failed.error
        assert session.scalars(select(store.RankingLog)).all() == []  # nothing was answered


def test_a_database_outage_mid_answer_still_posts_the_answer_and_logs_it_once(
    env, fake_slack, llm_server, private_postgres, tmp_path
):
    """PostgreSQL stops while the LLM writes the answer: the answer is posted, its ranking waits on disk and is
    written once when PostgreSQL is back, and the job ends answered (not answered twice)."""
    FakeOpenAI.delay = 3.0
    port = free_port()
    database = {"DATABASE_URL": private_postgres.url, "RANKING_SPOOL_DIR": str(tmp_path / "spool")}
    bot = start_serve(port, fake_slack, llm_server, **database)
    try:
        wait_for_health(bot, port)
        send(port, "How do I set up SCIM provisioning?", "1700000500.000001", "EvOutage")
        wait_until(lambda: len(FakeOpenAI.requests) == 1)
        private_postgres.stop()  # mid-answer: the preset was read, the ranking is not written yet
        wait_until(lambda: len(answers(fake_slack)) == 1)
        wait_until(lambda: list((tmp_path / "spool").glob("*.json")) != [])  # the ranking waits on disk
        readiness = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=30)
        assert readiness.status_code == 503 and readiness.json()["database"].startswith("unreachable")
        private_postgres.start()
        engine = create_engine(private_postgres.url)
        try:

            def logged() -> list[tuple[str, str | None, int]]:
                with Session(engine) as session:
                    rows = session.scalars(select(store.RankingLog))
                    return [(r.status, r.record_key, len(r.candidates)) for r in rows]

            def job_state() -> str:
                with Session(engine) as session:
                    return session.scalars(select(store.AnswerJob.state)).one()

            wait_until(lambda: len(logged()) == 1 and job_state() == "answered", timeout=90)
            time.sleep(6)  # a second write or a second answer would show up by now
            [(status, record_key, candidates)] = logged()
            assert status == "ok" and record_key and candidates == 20
            assert job_state() == "answered" and len(answers(fake_slack)) == 1
            assert list((tmp_path / "spool").glob("*.json")) == []
        finally:
            engine.dispose()
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=30).json()["database"] == "ok"
    finally:
        bot.send_signal(signal.SIGTERM)
        output, _ = bot.communicate(timeout=60)
    assert bot.returncode == 0 and "Traceback" not in output.split("ragbot is listening")[0]


def test_two_processes_on_one_postgresql_the_survivor_finishes_the_killed_ones_work(
    env, fake_slack, llm_server, private_postgres, tmp_path
):
    """Two `ragbot serve` on one PostgreSQL (each its own copy of the embedded index): the one answering is
    killed, the other takes the question when the lease runs out and answers it, once."""
    import shutil

    FakeOpenAI.delay = 60.0  # a is still waiting for the LLM when it is killed
    other_index = tmp_path / "qdrant-b"
    shutil.copytree(os.environ["QDRANT_PATH"], other_index)
    shared = {"DATABASE_URL": private_postgres.url, "ANSWER_LEASE_S": "3"}
    port_a, port_b = free_port(), free_port()
    a = start_serve(port_a, fake_slack, llm_server, **shared)
    b = None
    try:
        wait_for_health(a, port_a)
        send(port_a, "How do I set up SCIM provisioning?", "1700000600.000001", "EvTwo")
        wait_until(lambda: len(FakeOpenAI.requests) == 1)  # a holds the question
        b = start_serve(port_b, fake_slack, llm_server, QDRANT_PATH=str(other_index), **shared)
        wait_for_health(b, port_b)
        a.kill()
        a.communicate(timeout=30)
        FakeOpenAI.delay = 0.0
        wait_until(lambda: len(answers(fake_slack)) == 1, timeout=120)
        time.sleep(3.0)  # a second answer would show up by now
        assert answers(fake_slack) == ["1700000600.000001"]
        engine = create_engine(private_postgres.url)
        try:
            with Session(engine) as session:
                job = session.scalars(select(store.AnswerJob)).one()
                assert (job.state, job.attempts) == ("answered", 2)
                assert session.scalar(select(func.count()).select_from(store.RankingLog)) == 1
        finally:
            engine.dispose()
    finally:
        for process in (a, b):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.communicate(timeout=60)


def test_a_qdrant_server_that_is_down_gets_the_never_silent_message_and_readyz_says_so(
    env, monkeypatch, fake_slack, embedder
) -> None:
    """QDRANT_URL points at a port where nothing listens: the question is answered with the reference of its
    logged failure, the job ends failed-but-told, and /readyz names the index."""
    from tests.bot.slack.conftest import RunningServer, start_service

    monkeypatch.setenv("QDRANT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("QDRANT_TIMEOUT", "2")
    parts, service = start_service(monkeypatch, fake_slack, embedder)
    server = RunningServer(service)
    try:
        server.event(mention("What is SCIM?", ts="1700000700.000001"))
        [reply] = fake_slack.wait_for("chat.postMessage")
        with parts.sessions() as session:
            [ranking] = session.scalars(select(store.RankingLog)).all()
            assert ranking.status == "error"
        assert "Sorry, something went wrong" in reply.args["text"] and f"R-{ranking.id}" in reply.args["text"]
        fake_slack.wait_for("reactions.remove")
        ready = server.http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["index"].startswith("unreachable")
        metrics = server.http.get("/metrics").text
        assert 'ragbot_answers_total{outcome="error"} 1.0' in metrics
        assert 'ragbot_answer_errors_total{error="' in metrics and 'stage="retrieve"} 1.0' in metrics
        wait_until(lambda: [j.state for j in jobs(env)] == ["failed"])  # and the asker was told
        [job] = jobs(env)
        assert job.ranking_id == ranking.id and job.error.startswith(f"R-{ranking.id}: ")
    finally:
        server.stop()
        parts.close()
