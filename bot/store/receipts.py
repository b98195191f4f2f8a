"""Requests and deliveries already processed, kept only as long as a sender may still retry them.

Sources: "pagerduty" (deliveries retried for 48 h) and "slack" (signed requests, valid for 5
minutes; Slack retries an event 3 times within the hour). The unique (source, key) makes a second
copy lose at the database, across replicas.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel, col

from bot.store.db import transaction
from bot.store.tables import WebhookReceipt


def insert_new(session: Session, model: type[SQLModel], rows: list[dict[str, Any]], keys: list[str]) -> int:
    """Insert the rows whose `keys` are not taken yet (one statement, no error on a duplicate);
    how many were inserted."""
    if not rows:
        return 0
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    table = model.__table__  # type: ignore[attr-defined]
    statement = (
        dialect.insert(table).values(rows).on_conflict_do_nothing(index_elements=keys).returning(table.c.id)
    )
    # RETURNING, not rowcount: psycopg does not report a row count for this statement.
    return len(session.exec(statement).all())  # type: ignore[call-overload]


def first_time(engine: Engine, source: str, key: str, now: datetime) -> bool:
    """Record (source, key); False when it was already recorded (a replay or a retry)."""
    with transaction(engine) as session:
        row = {"source": source, "key": key, "received_at": now}
        return insert_new(session, WebhookReceipt, [row], ["source", "key"]) == 1


def prune(engine: Engine, before: datetime, *, source: str | None = None) -> int:
    """Forget receipts older than `before` (of one source, or all)."""
    query = delete(WebhookReceipt).where(col(WebhookReceipt.received_at) < before)
    if source is not None:
        query = query.where(col(WebhookReceipt.source) == source)
    with transaction(engine) as session:
        result = session.exec(query)  # type: ignore[call-overload]
        return int(result.rowcount or 0)
