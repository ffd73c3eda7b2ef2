"""Fixtures running every store test on SQLite and on PostgreSQL.

PostgreSQL: the server from ``TEST_POSTGRES_URL`` (default below). Each test gets its own database,
``ragbot_test_<random>``, created from the ``postgres`` maintenance database and dropped afterwards, so
parallel runs and leftovers from crashed runs never collide. When the server can't be reached the
PostgreSQL variants are skipped, except on CI (env ``CI`` set), where they fail.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # plain `pytest` (not `python -m pytest`) with ragbot not installed
    sys.path.insert(0, str(REPO_ROOT))

from store import make_engine, session_factory, upgrade_database  # noqa: E402
from store.db import mask_url  # noqa: E402

DEFAULT_TEST_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def postgres_test_url() -> URL:
    return make_url(os.environ.get("TEST_POSTGRES_URL") or DEFAULT_TEST_POSTGRES_URL)


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Engine]:
    """An AUTOCOMMIT engine on the maintenance database, for CREATE/DROP DATABASE (checked once per run)."""
    url = postgres_test_url()
    errors = []
    # The maintenance database first; the configured one if "postgres" is not there.
    for database in dict.fromkeys(["postgres", url.database]):
        engine = create_engine(
            url.set(database=database), isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
        )
        try:
            with engine.connect():
                pass
        except DBAPIError as exc:
            engine.dispose()
            errors.append(str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc))
            continue
        yield engine
        engine.dispose()
        return

    message = (
        f"PostgreSQL not reachable at {mask_url(url)} ({'; '.join(dict.fromkeys(errors))}); "
        "set TEST_POSTGRES_URL to a server where this user may CREATE DATABASE"
    )
    if _on_ci():
        pytest.fail(message + " (CI is set, so this is an error, not a skip)", pytrace=False)
    pytest.skip(message)


def _drop_database(admin: Engine, name: str) -> None:
    with admin.connect() as conn:
        try:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except DBAPIError:  # PostgreSQL < 13 has no WITH (FORCE)
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of a fresh, empty database (not migrated)."""
    if request.param == "sqlite":
        # A subfolder that doesn't exist yet: make_engine must create it.
        yield f"sqlite:///{tmp_path / 'db' / 'ragbot.db'}"
        return

    admin: Engine = request.getfixturevalue("postgres_admin")
    name = f"ragbot_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE template0')
    try:
        yield postgres_test_url().set(database=name).render_as_string(hide_password=False)
    finally:
        _drop_database(admin, name)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on the fresh database, not migrated yet."""
    engine = make_engine(db_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def migrated(engine: Engine) -> Engine:
    """The engine after ``upgrade_database``."""
    upgrade_database(engine)
    return engine


@pytest.fixture
def session(migrated: Engine) -> Iterator[Session]:
    with session_factory(migrated)() as session:
        yield session
