"""SQLite writers queue on a file lock beside the database: held from BEGIN IMMEDIATE to
COMMIT/ROLLBACK, never by readers, so another process's writer is let in as soon as it is free."""

import fcntl
import os
import threading

import pytest
from sqlalchemy import text

from bot.store.db import make_engine, reading, transaction, upgrade


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'bot.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def held(tmp_path) -> bool:
    """Whether some connection holds the writer lock (asked as another process would)."""
    fd = os.open(tmp_path / "bot.db-writer", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the lock if we got it
    return False


def test_a_write_transaction_holds_the_lock_until_commit(engine, tmp_path):
    with transaction(engine) as session:
        session.connection().execute(text("SELECT 1"))
        assert held(tmp_path)
    assert not held(tmp_path)


def test_a_failed_write_transaction_releases_it(engine, tmp_path):
    with pytest.raises(RuntimeError), transaction(engine) as session:
        session.connection().execute(text("SELECT 1"))
        raise RuntimeError("boom")
    assert not held(tmp_path)


def test_readers_do_not_take_it(engine, tmp_path):
    with reading(engine) as session:
        session.connection().execute(text("SELECT count(*) FROM incident"))
        assert not held(tmp_path)


def test_a_second_writer_waits_for_the_first_then_runs(engine, tmp_path):
    other = make_engine(f"sqlite:///{tmp_path / 'bot.db'}")  # as another process would
    order: list[str] = []
    first_in = threading.Event()
    release = threading.Event()

    def first() -> None:
        with transaction(engine) as session:
            session.connection().execute(text("SELECT 1"))
            first_in.set()
            release.wait(10)
            order.append("first commits")

    def second() -> None:
        first_in.wait(10)
        with transaction(other) as session:
            session.connection().execute(text("SELECT 1"))  # BEGIN IMMEDIATE happens here
            order.append("second began")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    first_in.wait(10)
    threads[1].join(0.3)
    assert threads[1].is_alive() and order == [], "the second writer waits on the lock"
    release.set()
    for t in threads:
        t.join(10)
    assert order == ["first commits", "second began"]
    other.dispose()
