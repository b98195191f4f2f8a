"""Queries for the inbox: accept a webhook in one write, claim lane heads, settle, park, prune.

Claiming takes only the head (lowest id) of each lane, so notifications of one alert group (or
events of one PagerDuty incident) are applied in the order they arrived, also across replicas:
`FOR UPDATE SKIP LOCKED` on PostgreSQL lets a replica pass over the heads another one holds, and
the later rows of those lanes wait, since their lane still has an earlier pending row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, exists, func, insert, text
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, delete, select, update

from bot.store.db import is_postgres, look, reading, transaction
from bot.store.inbox_table import InboxRow
from bot.store.receipts import insert_new
from bot.store.tables import WebhookReceipt

_TABLE = InboxRow.__table__  # type: ignore[attr-defined]
_INSERT = insert(_TABLE).returning(_TABLE.c.id)


def lane_of(source: str, group_key: str) -> str:
    """A short fixed-size key for the index (group keys can take 2 KB)."""
    return hashlib.blake2b(f"{source}|{group_key}".encode(), digest_size=16).hexdigest()


def accept(
    engine: Engine,
    source: str,
    group_key: str,
    payload: dict[str, Any],
    now: datetime,
    receipts: list[str] = [],  # noqa: B006 (never mutated)
) -> int | None:
    """Store one webhook; its inbox id, or None when one of `receipts` (PagerDuty's `event:<id>`,
    `webhook:<X-Webhook-Id>`) was stored before: a redelivery, refused at the unique key."""
    with transaction(engine) as session:
        if receipts:
            rows = [{"source": source, "key": key, "received_at": now} for key in receipts]
            if insert_new(session, WebhookReceipt, rows, ["source", "key"]) < len(rows):
                session.rollback()
                return None
        values = {
            "source": source,
            "group_key": group_key,
            "lane": lane_of(source, group_key),
            "payload": payload,
            "received_at": now,
            "status": "pending",
            "attempts": 0,
            "not_before": now,
        }
        return int(session.connection().execute(_INSERT, values).scalar_one())


def claim(session: Session, now: datetime, limit: int) -> list[InboxRow]:
    """Lock up to `limit` ready lane heads, oldest first, in the caller's transaction: the caller
    applies them and settles them before it commits (a crash rolls all of it back)."""
    earlier = aliased(InboxRow)
    query = (
        select(InboxRow)
        .where(
            col(InboxRow.status) == "pending",
            col(InboxRow.not_before) <= now,
            ~exists().where(
                col(earlier.status) == "pending",
                col(earlier.lane) == col(InboxRow.lane),
                col(earlier.id) < col(InboxRow.id),
            ),
        )
        .order_by(col(InboxRow.id))
        .limit(limit)
    )
    if is_postgres(session.get_bind()):
        query = query.with_for_update(skip_locked=True)
    return list(session.exec(query))


_FIRST = text("SELECT min(not_before) AS not_before FROM inbox WHERE status = 'pending'").columns(
    _TABLE.c.not_before
)


def next_ready(engine: Engine) -> datetime | None:
    """When the first pending row may be tried (now or earlier: it is ready), None if none is
    pending: the drain's one cheap read-only look while it is idle."""
    return look(engine, _FIRST)


@dataclass(frozen=True)
class Depth:
    pending: int
    oldest: datetime | None  # received time of the oldest pending row
    parked: int


def depth(engine: Engine) -> Depth:
    pending_rows = col(InboxRow.status) == "pending"
    with reading(engine) as session:
        pending = session.exec(select(func.count()).where(pending_rows)).one()
        oldest = session.exec(
            select(InboxRow.received_at).where(pending_rows).order_by(col(InboxRow.id)).limit(1)
        ).first()
        parked = session.exec(select(func.count()).where(col(InboxRow.status) == "parked")).one()
    return Depth(int(pending), oldest, int(parked))


def listing(engine: Engine, status: str | None = None, limit: int = 100) -> list[InboxRow]:
    """Rows by status (all but `done` when None), newest first."""
    query = select(InboxRow).order_by(col(InboxRow.id).desc()).limit(limit)
    if status is None:
        query = query.where(col(InboxRow.status) != "done")
    else:
        query = query.where(col(InboxRow.status) == status)
    with reading(engine) as session:
        return list(session.exec(query))


def get(engine: Engine, row_id: int) -> InboxRow | None:
    with reading(engine) as session:
        return session.get(InboxRow, row_id)


def retry(engine: Engine, row_id: int, now: datetime) -> bool:
    """A parked row becomes pending again, with fresh attempts; False if it is not parked."""
    with transaction(engine) as session:
        result = session.exec(  # type: ignore[call-overload]
            update(InboxRow)
            .where(col(InboxRow.id) == row_id, col(InboxRow.status) == "parked")
            .values(status="pending", attempts=0, not_before=now)
        )
        return bool(result.rowcount)


def prune(engine: Engine, before: datetime, batch: int = 500) -> int:
    """Delete rows processed before `before`, `batch` at a time (short transactions: accepting
    webhooks never waits long behind the cleanup)."""
    total = 0
    while True:
        with transaction(engine) as session:
            ids = list(
                session.exec(
                    select(InboxRow.id)
                    .where(col(InboxRow.status) == "done", col(InboxRow.done_at) < before)
                    .limit(batch)
                )
            )
            if ids:
                session.exec(delete(InboxRow).where(col(InboxRow.id).in_(ids)))  # type: ignore[call-overload]
        total += len(ids)
        if len(ids) < batch:
            return total
