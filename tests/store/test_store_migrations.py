"""Schema, migrations and engine setup, on SQLite and PostgreSQL (see conftest.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Engine, MetaData, String, inspect, select, text
from sqlalchemy.orm import Session

import store.db
from store import (
    Base,
    ChannelBinding,
    DatabaseError,
    Preset,
    RankingLog,
    bind_channel,
    default_preset,
    make_engine,
    record_ranking,
    session_factory,
    upgrade_database,
)
from store.db import MIGRATIONS_DIR, alembic_config, mask_url
from store.models import DEFAULT_PRESET_INSTRUCTION, NAMING_CONVENTION

REPO_ROOT = Path(__file__).resolve().parents[2]
TABLES = {
    "presets",
    "teams",
    "channel_bindings",
    "ranking_logs",
    "ranked_candidates",
    "feedback",
    "slack_events",
    "answer_jobs",
    "users",
    "preset_versions",
    "candidate_labels",
    "admin_sessions",
    "login_throttle",
    "assistant_threads",
    "escalations",
    "slack_refusals",
    "audit_log",
    "sources",
    "source_syncs",
    "source_documents",
}
HEAD = "0011"


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_upgrade_creates_tables_and_default_preset(engine: Engine) -> None:
    assert current_revision(engine) is None
    upgrade_database(engine)

    assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
    assert current_revision(engine) == head_revision() == HEAD
    with session_factory(engine)() as session:
        presets = session.scalars(select(Preset)).all()
    assert len(presets) == 1
    (preset,) = presets
    assert (preset.name, preset.team, preset.instruction) == ("default", "default", DEFAULT_PRESET_INSTRUCTION)
    assert (preset.candidates_k, preset.top_n, preset.min_score) == (20, 3, 0.0)
    assert (preset.collection, preset.version) == (None, 1)
    # Server-side timestamps come back timezone-aware UTC on both backends.
    for stamp in (preset.created_at, preset.updated_at):
        assert stamp.utcoffset() is not None and stamp.utcoffset().total_seconds() == 0


def test_upgrade_from_url_string(db_url: str) -> None:
    upgrade_database(db_url)
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_upgrade_twice_is_a_noop(migrated: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("upgrade_database ran migrations on a database already at head")

    monkeypatch.setattr(store.db.command, "upgrade", must_not_run)
    started = time.perf_counter()
    upgrade_database(migrated)
    upgrade_database(migrated.url.render_as_string(hide_password=False))
    assert time.perf_counter() - started < 2.0

    assert current_revision(migrated) == head_revision()
    with Session(migrated) as session:
        assert session.scalar(select(Preset).where(Preset.name == "default")) is not None
        assert len(session.scalars(select(Preset)).all()) == 1


def test_no_autogenerate_drift(migrated: Engine) -> None:
    opts = {"compare_type": True, "compare_server_default": True}
    with migrated.connect() as conn:
        context = MigrationContext.configure(conn, opts=opts)
        assert compare_metadata(context, Base.metadata) == []

        # The comparison is live: a column the migrations don't create is reported.
        changed = MetaData(naming_convention=NAMING_CONVENTION)
        for table in Base.metadata.sorted_tables:
            table.to_metadata(changed)
        changed.tables["presets"].append_column(Column("extra", String(), nullable=True))
        diffs = compare_metadata(context, changed)
    assert [(d[0], d[2], d[3].name) for d in diffs] == [("add_column", "presets", "extra")]


def test_downgrade_to_base_and_upgrade_again(migrated: Engine) -> None:
    cfg = alembic_config(migrated.url)
    command.downgrade(cfg, "base")
    assert set(inspect(migrated).get_table_names()) <= {"alembic_version"}
    assert current_revision(migrated) is None

    upgrade_database(migrated)
    assert set(inspect(migrated).get_table_names()) == TABLES | {"alembic_version"}
    with Session(migrated) as session:
        assert session.scalars(select(Preset.name)).all() == ["default"]


def test_alembic_command_line(db_url: str, tmp_path: Path) -> None:
    """`alembic upgrade head` in the repo root uses DATABASE_URL; `-c alembic.ini` works from elsewhere."""
    env = {**os.environ, "DATABASE_URL": db_url}
    env.pop("PYTHONPATH", None)
    upgrade = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert upgrade.returncode == 0, upgrade.stderr
    current = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(REPO_ROOT / "alembic.ini"), "current"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert current.returncode == 0, current.stderr
    assert f"{HEAD} (head)" in current.stdout

    engine = make_engine(db_url)
    try:
        with Session(engine) as session:
            assert session.scalars(select(Preset.name)).all() == ["default"]
    finally:
        engine.dispose()


def test_migrations_found_relative_to_package_not_cwd(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert MIGRATIONS_DIR == REPO_ROOT / "migrations"
    upgrade_database(db_url)
    assert not (tmp_path / "data").exists()


def test_unreachable_database_raises_quickly_with_masked_url() -> None:
    url = "postgresql+psycopg://postgres:s3cret@127.0.0.1:1/x"
    started = time.perf_counter()
    with pytest.raises(DatabaseError) as info:
        upgrade_database(url)
    assert time.perf_counter() - started < 5.0
    message = str(info.value)
    assert "s3cret" not in message
    assert "postgresql+psycopg://postgres:***@127.0.0.1:1/x" in message
    assert "running" in message and "DATABASE_URL" in message


def test_unreachable_database_given_as_engine_raises_database_error() -> None:
    engine = make_engine("postgresql+psycopg://postgres:s3cret@127.0.0.1:1/x")
    try:
        with pytest.raises(
            DatabaseError, match=r"Cannot connect to the database at .*postgres:\*\*\*@127\.0\.0\.1:1/x"
        ):
            upgrade_database(engine)
    finally:
        engine.dispose()


def test_database_newer_than_the_code_raises(migrated: Engine) -> None:
    with migrated.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(DatabaseError, match="at revision 9999, which this version of ragbot does not know"):
        upgrade_database(migrated)


def test_sqlite_folder_that_cannot_be_created_raises_database_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(DatabaseError, match="Cannot connect to the database at sqlite:///"):
        upgrade_database(f"sqlite:///{tmp_path / 'file' / 'sub' / 'ragbot.db'}")


def test_make_engine_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "ragbot.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        assert path.parent.is_dir()
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        engine.dispose()


def test_make_engine_sqlite_memory_and_server() -> None:
    memory = make_engine("sqlite://")
    try:
        upgrade_database(memory)
        assert current_revision(memory) == head_revision()
    finally:
        memory.dispose()

    server = make_engine("postgresql+psycopg://u:p@db.invalid/ragbot")  # no connection is made
    assert server.pool._pre_ping  # type: ignore[attr-defined]
    server.dispose()


def test_mask_url() -> None:
    assert mask_url("postgresql+psycopg://bob:hunter2@h:5432/d") == "postgresql+psycopg://bob:***@h:5432/d"
    assert mask_url("sqlite:///./data/ragbot.db") == "sqlite:///./data/ragbot.db"


BATCH_REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "0099"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("scratch", sa.Column("id", sa.Integer, primary_key=True))
    # On SQLite this recreates "presets", which ranking_logs and channel_bindings reference.
    with op.batch_alter_table("presets") as batch:
        batch.add_column(sa.Column("extra", sa.String(), nullable=True))
    op.execute("INSERT INTO scratch (id) VALUES (1)")
    FAIL


def downgrade():
    with op.batch_alter_table("presets") as batch:
        batch.drop_column("extra")
    op.drop_table("scratch")
"""


def test_failed_migration_leaves_the_database_unchanged(
    migrated: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each upgrade is one transaction (SQLite too), and SQLite batch table rebuilds keep referencing rows."""
    with session_factory(migrated)() as session:
        bind_channel(session, "C1", "default")
        log = record_ranking(
            session,
            question="q",
            channel="C1",
            user=None,
            preset=default_preset(session),
            instruction="i",
            collection="kb",
            answer=None,
            status="no_answer",
            error=None,
            rerank_status="ok",
            reranker=None,
            timings_ms={},
            candidates=[],
        )
        session.commit()
        log_id = log.id

    copy = tmp_path / "migrations_copy"
    shutil.copytree(MIGRATIONS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(store.db, "MIGRATIONS_DIR", copy)
    failing = copy / "versions" / "0099_failing.py"
    failing.write_text(BATCH_REVISION.replace("    FAIL\n", '    op.execute("SELECT * FROM no_such_table")\n'))

    with pytest.raises(DatabaseError, match=r"Upgrading the database at .* failed: .*no_such_table"):
        upgrade_database(migrated)
    assert current_revision(migrated) == HEAD
    assert set(inspect(migrated).get_table_names()) == TABLES | {"alembic_version"}
    assert "extra" not in {c["name"] for c in inspect(migrated).get_columns("presets")}

    failing.unlink()
    (copy / "versions" / "0099_working.py").write_text(BATCH_REVISION.replace("    FAIL\n", ""))
    upgrade_database(migrated)
    assert current_revision(migrated) == "0099"
    assert "extra" in {c["name"] for c in inspect(migrated).get_columns("presets")}
    with Session(migrated) as session:
        kept = session.get(RankingLog, log_id)
        assert kept is not None and kept.preset_id is not None
        assert session.scalars(select(ChannelBinding.channel_id)).all() == ["C1"]
    if migrated.dialect.name == "sqlite":
        with migrated.connect() as conn:  # switched off for the rebuild, and back on afterwards
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1

    command.downgrade(alembic_config(migrated.url), HEAD)
    assert current_revision(migrated) == HEAD


def test_concurrent_upgrades_of_a_fresh_database(db_url: str) -> None:
    """The bot and a CLI command starting together: one migrates, the others wait and find it done."""
    start_at = time.time() + 2.0  # past every process's imports, so the upgrades really overlap
    code = f"import time, store; time.sleep(max(0.0, {start_at!r} - time.time())); store.upgrade_database({db_url!r})"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    errors = [proc.communicate(timeout=120)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0, 0], "\n".join(errors)

    engine = make_engine(db_url)
    try:
        assert current_revision(engine) == head_revision()
        with Session(engine) as session:
            assert session.scalars(select(Preset.name)).all() == ["default"]
    finally:
        engine.dispose()
