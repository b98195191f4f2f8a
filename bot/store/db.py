"""Engine, transactions and migrations for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql import Executable
from sqlmodel import Session

from bot.core.errors import IncidentBotError
from bot.store.sqlite_writer import WriterLockedConnection, factory

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_CACHE_KIB = 512
_MIGRATION_LOCK = 727274  # PostgreSQL advisory lock id: replicas starting together migrate once
# A PostgreSQL connection attempt gives up after this (libpq's default waits for TCP, ~2 min, on a
# host that drops packets); a `connect_timeout` in DATABASE_URL wins.
CONNECT_TIMEOUT_SECONDS = 5


class DatabaseUnreachable(IncidentBotError):
    """PostgreSQL did not let us connect, said in one line: where, and why in a few words."""

    def __init__(self, where: str, reason: str) -> None:
        self.where, self.reason = where, reason
        super().__init__(f"database unreachable at {where} ({reason})")


# libpq's and psycopg's words for why a connection failed -> ours.
_REASONS = (
    (re.compile(r"connection refused", re.I), "connection refused"),
    (re.compile(r"timeout expired|timed out", re.I), "timeout"),
    (re.compile(r'authentication failed|no password supplied|role ".*" does not exist', re.I), "auth failed"),
    (
        re.compile(r"resolve host|translate host name|name or service not known|nodename", re.I),
        "unknown host",
    ),
    (re.compile(r'database ".*" does not exist', re.I), "no such database"),
)


def unreachable(engine: Engine, exc: OperationalError) -> DatabaseUnreachable:
    """`exc` from a failed connection, as one short line (SQLAlchemy's text runs to kilobytes)."""
    where = f"{engine.url.host or 'localhost'}:{engine.url.port or 5432}"
    said = str(exc.orig or exc)
    for pattern, reason in _REASONS:
        if pattern.search(said):
            return DatabaseUnreachable(where, reason)
    last = said.strip().splitlines()[0].rsplit("failed:", 1)[-1].replace("FATAL:", "").strip()
    return DatabaseUnreachable(where, last[:120] or type(exc.orig or exc).__name__)


def connect(engine: Engine) -> Connection:
    """A connection, or DatabaseUnreachable when PostgreSQL does not let us in."""
    try:
        return engine.connect()
    except OperationalError as exc:
        if not is_postgres(engine):
            raise
        raise unreachable(engine, exc) from None


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.drivername.startswith("postgresql") and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() != "sqlite":
        timeout = {} if "connect_timeout" in parsed.query else {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
        return create_engine(parsed, pool_size=10, max_overflow=10, pool_pre_ping=True, connect_args=timeout)

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
        # Each connection keeps its own page cache (2 MiB by default) and each process holds up to
        # 15 connections: with a large database that was tens of MiB per process. Pages a small
        # cache misses come from the OS page cache, which both processes share.
        cur.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
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


def advisory_lock(session: Session, key: str) -> None:
    """On PostgreSQL, serialise on `key` until the transaction ends (SQLite has one writer anyway).
    Advisory locks are per database, not per schema: the schema is part of the key, so two
    deployments (or test runs) in one database never wait on each other's locks."""
    if is_postgres(session.get_bind()):  # type: ignore[arg-type]
        sql = "SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':' || :key))"
        session.execute(text(sql), {"key": key})


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def upgrade(engine: Engine) -> None:
    """Apply Alembic migrations up to head (safe to run from several replicas at once);
    DatabaseUnreachable if PostgreSQL does not let us connect."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with connect(engine) as conn:
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
