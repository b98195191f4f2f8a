"""One SQLite writer at a time, handed over at once, across the web and worker processes.

SQLite lets one writer in at a time; the others retry in its busy handler, which sleeps 1, 2, 5,
10, ... 100 ms between attempts. With two busy processes a webhook's write could sleep through
several of those steps while the lock was free most of the time. An exclusive `flock` on a file
beside the database, taken just before `BEGIN IMMEDIATE` and released right after `COMMIT` or
`ROLLBACK`, queues writers in the kernel instead: the next one runs as soon as the lock is free.
The busy timeout stays as the fallback for anything that writes without this lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from typing import Any


def lock_path(database: str | None) -> str | None:
    """The lock file of a file database; None for in-memory ones (a single process anyway)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return f"{database}-writer"


class WriterLockedConnection(sqlite3.Connection):
    """A sqlite3 connection that holds the writer lock from `lock_for_write` to commit/rollback."""

    lock_file: str | None = None  # set per engine through a subclass (see `factory`)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fd: int | None = None
        self._held = False

    def lock_for_write(self) -> None:
        if self.lock_file is None or self._held:
            return
        if self._fd is None:
            self._fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)  # blocks without the GIL
        self._held = True

    def unlock(self) -> None:
        if self._held and self._fd is not None:
            self._held = False
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.unlock()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.unlock()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.unlock()
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._fd)
                self._fd = None


def factory(database: str | None) -> type[WriterLockedConnection]:
    """A connection class bound to `database`'s lock file (for `sqlite3.connect(factory=...)`)."""
    return type("WriterLocked", (WriterLockedConnection,), {"lock_file": lock_path(database)})
