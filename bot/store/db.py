"""Engine, transactions and migrations for SQLite (default) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.sql import Executable
from sqlmodel import Session

from bot.store.sqlite_writer import WriterLockedConnection, factory

MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 727274  # PostgreSQL advisory lock id: replicas starting together migrate once


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.drivername.startswith("postgresql") and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_size=10, max_overflow=10, pool_pre_ping=True)

    connect_args = {"check_same_thread": False, "timeout": 30, "factory": factory(parsed.database)}
    engine = create_engine(parsed, connect_args=connect_args)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let us issue BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # Writers take the write lock up front (IMMEDIATE): a deferred transaction that later
        # upgrades to a writer can fail with "database is locked" instead of waiting its turn.
        # Readers (see `reading`) stay DEFERRED, so with WAL they never queue behind writers.
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        raw = conn.connection.dbapi_connection
        if mode == "IMMEDIATE" and isinstance(raw, WriterLockedConnection):
            raw.lock_for_write()  # see bot/store/sqlite_writer.py
        try:
            conn.exec_driver_sql(f"BEGIN {mode}")
        except BaseException:
            if isinstance(raw, WriterLockedConnection):
                raw.unlock()
            raise

    return engine


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One use case, one transaction: commit on success, roll back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def reader(engine: Engine) -> Engine:
    """`engine` for read-only work: on SQLite its transactions begin DEFERRED (no write lock).
    Made once per engine: a fresh option engine per call doubled the cost of an idle poll."""
    ro: Engine | None = engine.__dict__.get("_reader")
    if ro is None:
        ro = engine.__dict__["_reader"] = engine.execution_options(sqlite_begin="DEFERRED")
    return ro


@contextmanager
def reading(engine: Engine) -> Iterator[Session]:
    """A read-only unit of work: on SQLite it does not take the write lock."""
    with Session(reader(engine), expire_on_commit=False) as session:
        yield session


def look(engine: Engine, query: Executable) -> Any:
    """One read-only scalar without an ORM session: the scheduler's and worker's idle looks."""
    with reader(engine).connect() as conn:
        return conn.execute(query).scalar()


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def upgrade(engine: Engine) -> None:
    """Apply Alembic migrations up to head (safe to run from several replicas at once)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as conn:
        if is_postgres(engine):
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
            conn.commit()
        try:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()
        finally:
            if is_postgres(engine):
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
                conn.commit()


def ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
