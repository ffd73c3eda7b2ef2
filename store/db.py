"""Engines, sessions and schema upgrades.

Nothing here reads settings: callers pass the database URL (``settings.database_url``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

import migrations
from redact import mask_secrets

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent

# Seconds a PostgreSQL connection attempt may take before giving up (unless the URL sets connect_timeout).
CONNECT_TIMEOUT_S = 10
# The zero-setup database: `DATABASE_URL`'s default for ragbot and for a bare `alembic upgrade head`.
DEFAULT_DATABASE_URL = "sqlite:///./data/ragbot.db"


class DatabaseError(RuntimeError):
    """The database can't be reached or brought up to date; the message says what to do."""


def mask_url(url: str | URL) -> str:
    """A database URL as text with its password replaced by ``***`` (SQLAlchemy's own parsing, for passwords
    URL parsers read differently), and then any other credential :func:`redact.mask_secrets` finds in it (a
    ``?password=`` in the query, which psycopg accepts)."""
    try:
        return mask_secrets(make_url(url).render_as_string(hide_password=True))
    except Exception:  # not even parseable: don't echo it, it may hold a password
        return "<unparseable database URL>"


def _sqlite_file(url: URL) -> Path | None:
    """The file a SQLite URL points at, or None for in-memory databases."""
    database = url.database or ""
    if url.query.get("uri") in ("true", "1", "True"):
        if url.query.get("mode") == "memory":
            return None
        database = database.removeprefix("file:").split("?", 1)[0]
    if not database or database == ":memory:":
        return None
    return Path(database)


def _enable_sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    # SQLite ignores FOREIGN KEY clauses (and so ON DELETE CASCADE) unless asked, per connection.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An engine for ``url``, set up the way ragbot needs it.

    SQLite: the file's folder is created, and foreign keys are enforced on every connection.
    Servers: ``pool_pre_ping`` (connections dropped by the server are replaced), a connect timeout, and a pool
    large enough for bursts of Slack events.
    Extra keyword arguments go to :func:`sqlalchemy.create_engine`.
    """
    try:
        sa_url = make_url(url)
    except (SQLAlchemyError, ValueError) as exc:
        raise DatabaseError(f"DATABASE_URL is not a database URL ({exc}). {_URL_HINT}") from exc
    try:
        return _create_engine(sa_url, **kwargs)
    except OSError as exc:  # SQLite: the file's folder can't be created
        raise _connect_error(sa_url, exc) from exc
    except (SQLAlchemyError, ImportError) as exc:  # an unknown dialect, or its driver is not installed
        raise DatabaseError(
            f"DATABASE_URL={mask_url(sa_url)} cannot be used: {_first_line(exc)}. ragbot supports SQLite and "
            f"PostgreSQL through psycopg. {_URL_HINT}"
        ) from exc


_URL_HINT = (
    "Set DATABASE_URL to a SQLite URL such as sqlite:///./data/ragbot.db or a PostgreSQL one beginning "
    "postgresql+psycopg://."
)


def _create_engine(sa_url: URL, **kwargs: Any) -> Engine:
    if sa_url.get_backend_name() == "sqlite":
        path = _sqlite_file(sa_url)
        if path is not None:
            path.expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(sa_url, **kwargs)
        event.listen(engine, "connect", _enable_sqlite_foreign_keys)
        return engine

    kwargs.setdefault("pool_pre_ping", True)
    # Slack's listener threads (a claim per event), the answer workers and their lease heartbeat share the pool:
    # SQLAlchemy's default of 5 + 10 makes acks wait for a connection under bursts (bench/slack_load.py).
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 40)
    if sa_url.get_backend_name() == "postgresql" and "connect_timeout" not in sa_url.query:
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
        kwargs["connect_args"] = connect_args
    return create_engine(sa_url, **kwargs)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine``; objects stay readable after commit (``expire_on_commit=False``)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def alembic_config(url: str | URL | None = None) -> Config:
    """An Alembic config for the bundled migrations, independent of the current directory."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if url is not None:
        # configparser interpolation: a URL-encoded password may contain "%".
        rendered = make_url(url).render_as_string(hide_password=False)
        cfg.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return cfg


def _first_line(exc: BaseException) -> str:
    """The driver's own message without SQLAlchemy's statement dump and background link."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return lines[0].strip() if lines else type(exc).__name__


def _connect_error(url: URL, exc: BaseException) -> DatabaseError:
    detail = _first_line(exc)
    if url.get_backend_name() == "sqlite":
        path = _sqlite_file(url)
        where = f" (file {path.expanduser().resolve()})" if path is not None else ""
        detail += where  # relative to the working folder: say which file that is
        hint = "Check that the folder exists and is writable, or set DATABASE_URL to another file."
    else:
        hint = (
            "Check that the database server is running and reachable from here, and that DATABASE_URL "
            "(host, port, user, password, database name) is right; for a local setup without a server, "
            "use a SQLite URL such as sqlite:///./data/ragbot.db."
        )
    return DatabaseError(f"Cannot connect to the database at {mask_url(url)}: {detail}. {hint}")


def upgrade_database(url_or_engine: str | URL | Engine) -> None:
    """Bring the database schema up to the newest migration (``alembic upgrade head``).

    Cheap when already up to date: only the current revision is read. Raises :class:`DatabaseError` when
    the database can't be reached, is newer than this code, or a migration fails.
    """
    if isinstance(url_or_engine, Engine):
        engine, owned = url_or_engine, False
    else:
        engine, owned = make_engine(url_or_engine), True  # a bad URL raises DatabaseError
    try:
        _upgrade(engine)
    finally:
        if owned:
            engine.dispose()


def _upgrade(engine: Engine) -> None:
    url = engine.url
    cfg = alembic_config(url)
    script = ScriptDirectory.from_config(cfg)
    heads = set(script.get_heads())

    try:
        conn = engine.connect()
    except (DBAPIError, OSError) as exc:
        raise _connect_error(url, exc) from exc

    with conn:
        try:
            current = set(MigrationContext.configure(conn).get_current_heads())
        except DBAPIError as exc:
            raise _connect_error(url, exc) from exc
        conn.rollback()  # end the read-only transaction; the migration opens its own
        if current == heads:
            return
        unknown = [rev for rev in current if rev not in {r.revision for r in script.walk_revisions()}]
        if unknown:
            raise DatabaseError(
                f"The database at {mask_url(url)} is at revision {', '.join(sorted(unknown))}, which this "
                "version of ragbot does not know (it was migrated by a newer version). Upgrade ragbot, "
                "or point DATABASE_URL at another database."
            )

        log.info("Upgrading database %s from %s to %s", mask_url(url), sorted(current) or "empty", sorted(heads))
        cfg.attributes["connection"] = conn
        try:
            command.upgrade(cfg, "head")
            conn.commit()
        except SQLAlchemyError as exc:
            conn.rollback()
            raise DatabaseError(
                f"Upgrading the database at {mask_url(url)} failed: {_first_line(exc)}. The upgrade runs in "
                "one transaction, so the database was left as it was; fix the cause and start again, or run "
                "`alembic upgrade head` in the ragbot folder to see the full error."
            ) from exc
