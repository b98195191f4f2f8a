"""Read-only looks at the outbox for /metrics: rows that failed for good, rows held by credentials.

Computed from the database at each scrape, so they are right whichever process delivers (the worker
runs in a child process of `serve`, and on several replicas) and across restarts. Failed rows are
never pruned (`outbox.prune_delivered` keeps them), so their count only grows: a counter.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine, func
from sqlmodel import col, select

from bot.store.db import reading
from bot.store.tables import Outbox


def failed_by_op_and_error(engine: Engine) -> list[tuple[str, str | None, int]]:
    with reading(engine) as session:
        rows = session.exec(
            select(Outbox.op, Outbox.last_error, func.count())
            .where(col(Outbox.status) == "failed")
            .group_by(col(Outbox.op), col(Outbox.last_error))
        )
        return [(op, error, int(count)) for op, error, count in rows]


def waiting_on(engine: Engine, errors: Iterable[str]) -> bool:
    """Some pending row's last attempt ended with one of `errors`."""
    with reading(engine) as session:
        found = session.exec(
            select(Outbox.id)
            .where(col(Outbox.status) == "pending", col(Outbox.last_error).in_(list(errors)))
            .limit(1)
        ).first()
        return found is not None
