"""Queries for the outbox: enqueue in the caller's transaction, claim, settle.

Claiming takes only the head (lowest id) of each lane, so calls of one incident are delivered in
order even across replicas; a lease marks a claimed row, and `FOR UPDATE SKIP LOCKED` on
PostgreSQL keeps two replicas from claiming the same row at the same instant.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, exists, func, insert, or_, text, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, delete, select

from bot.store.db import is_postgres, look, reading, transaction
from bot.store.tables import Outbox

# Priorities: lower goes first when several lanes are ready. A page (a DM, an SMS, a call) goes
# before the channel work of earlier incidents: with a backlog, a new incident's page must not
# queue behind the channels, cards and invites of the incidents before it.
PAGE = 1
CHANNEL = 3  # the incident's channel, its card, who is in it: before everything but pages
NORMAL = 5
COSMETIC = 8

# Idempotent "make Slack show the current state" operations: a newer one replaces older ones.
COALESCED_OPS = frozenset({"sync", "usergroup_sync"})

_INSERT = insert(Outbox.__table__)  # type: ignore[attr-defined]


def enqueue(
    session: Session,
    lane: str,
    op: str,
    now: datetime,
    payload: dict[str, Any] | None = None,
    *,
    incident_id: int | None = None,
    priority: int = NORMAL,
) -> None:
    """Add a call to `lane` in the caller's transaction. A plain INSERT, not an ORM object: opening
    an incident enqueues several rows, and the lane's order is the order of these calls."""
    tails, row = _tails(session), (op, payload or {}, incident_id, priority)
    if op in COALESCED_OPS and tails.get(lane) == row:
        return  # this transaction's last row in the lane is this very call already
    tails[lane] = row
    if op in COALESCED_OPS:
        session.exec(  # type: ignore[call-overload]
            delete(Outbox).where(
                col(Outbox.lane) == lane,
                col(Outbox.op) == op,
                col(Outbox.status) == "pending",
                col(Outbox.attempts) == 0,
                col(Outbox.lease_until).is_(None),
            )
        )
    session.connection().execute(
        _INSERT,
        {
            "lane": lane,
            "incident_id": incident_id,
            "op": op,
            "payload": payload or {},
            "priority": priority,
            "status": "pending",
            "attempts": 0,
            "in_flight": False,
            "not_before": now,
            "created_at": now,
        },
    )


def _tails(session: Session) -> dict[str, tuple[Any, ...]]:
    """The last row this transaction enqueued per lane. Kept per innermost transaction:
    a savepoint rolled back (or released) starts afresh, so a row that was undone is never
    counted as already there."""
    session.connection()  # begins the transaction if nothing did yet, so it has its identity
    tx = session.get_nested_transaction() or session.get_transaction()
    held = session.info.get("outbox_tails")
    if held is None or held[0] is not tx:
        held = session.info["outbox_tails"] = (tx, {})
    return held[1]


def claim(
    session: Session,
    owner: str,
    now: datetime,
    limit: int,
    lease: timedelta,
    held_ops: frozenset[str] = frozenset(),
    pages_in_flight: bool = False,
    only_pages: bool = False,
) -> list[Outbox]:
    """Lease up to `limit` ready lane heads to `owner`, most urgent first, and count the attempt.

    On the rows returned, `in_flight` tells whether an EARLIER attempt may have reached the far
    side (it was started and its outcome never recorded): the handler then checks before it
    repeats a non-idempotent call. In the database the row is marked in flight from now on
    (once the caller's transaction commits).

    `held_ops` are not claimed (their far side is down). Cosmetic rows are not claimed beside
    pages, nor while pages are in flight: a page must reach Slack before any cosmetic update.
    `only_pages`: nothing but pages (the worker's slot kept for them).
    """
    # A lane head is a ready row with no earlier pending row in its lane. Walking the ready rows in
    # (priority, id) order on ix_outbox_ready and probing ix_outbox_pending per row costs
    # O(limit log n): claiming stays cheap with a backlog of tens of thousands of rows.
    earlier = aliased(Outbox)
    query = (
        select(Outbox)
        .where(
            col(Outbox.status) == "pending",
            col(Outbox.not_before) <= now,
            or_(col(Outbox.lease_until).is_(None), col(Outbox.lease_until) < now),
            ~exists().where(
                col(earlier.status) == "pending",
                col(earlier.lane) == col(Outbox.lane),
                col(earlier.id) < col(Outbox.id),
            ),
        )
        .order_by(col(Outbox.priority), col(Outbox.id))
        .limit(limit)
    )
    if held_ops:
        query = query.where(col(Outbox.op).not_in(held_ops))
    if only_pages:
        query = query.where(col(Outbox.priority) <= PAGE)
    if is_postgres(session.get_bind()):
        query = query.with_for_update(skip_locked=True)
    rows = list(session.exec(query))
    if pages_in_flight or any(row.priority <= PAGE for row in rows):
        rows = [row for row in rows if row.priority < COSMETIC]
    was_in_flight = [row.in_flight for row in rows]
    for row in rows:
        row.lease_until, row.lease_owner = now + lease, owner
        row.in_flight, row.attempts = True, row.attempts + 1
    session.flush()
    for row, before in zip(rows, was_in_flight, strict=True):
        session.expunge(row)  # detached copies: what the handler needs to know
        row.in_flight = before
    return rows


# Plain SQL for the idle poll (see timers.next_due); `now` is bound with the columns' own type.
_READY = text(
    "SELECT id FROM outbox WHERE status = 'pending' AND not_before <= :now"
    " AND (lease_until IS NULL OR lease_until < :now) LIMIT 1"
).bindparams(bindparam("now", type_=Outbox.__table__.c.not_before.type))  # type: ignore[attr-defined]


def has_ready(engine: Engine, now: datetime) -> bool:
    """A cheap read-only look before taking the write lock to claim (idle polls stay cheap)."""
    return look(engine, _READY.bindparams(now=now)) is not None


_OUTBOX = Outbox.__table__  # type: ignore[attr-defined]
_SETTLE = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id == bindparam("row_id"))
    .values(
        status=bindparam("new_status"),
        done_at=bindparam("now"),
        in_flight=False,
        lease_until=None,
        last_error=bindparam("error"),
    )
)


def settle(session: Session, outcomes: list[tuple[int, str, str | None]], now: datetime) -> None:
    """Record how deliveries ended: (row id, status, error) each, in one statement (a Core
    executemany: the ORM's per-row UPDATE with its session bookkeeping cost more than the call)."""
    if outcomes:
        rows = [{"row_id": rid, "new_status": st, "now": now, "error": err} for rid, st, err in outcomes]
        session.connection().execute(_SETTLE, rows)


def retry_later(engine: Engine, row_id: int, when: datetime, error: str, maybe_done: bool) -> None:
    with transaction(engine) as session:
        session.exec(  # type: ignore[call-overload]
            update(Outbox)
            .where(col(Outbox.id) == row_id)
            .values(
                not_before=when, in_flight=maybe_done, lease_until=None, lease_owner=None, last_error=error
            )
        )


def pending_count(engine: Engine) -> int:
    with reading(engine) as session:
        return session.exec(select(func.count()).where(col(Outbox.status) == "pending")).one()


def release_dead_leases(engine: Engine, alive: Callable[[str], bool]) -> int:
    """Free rows leased by processes that are gone (a crash on this host), so a restart does not
    wait for their leases to expire. `alive(owner)` says whether an owner still runs."""
    with transaction(engine) as session:
        owners = set(
            session.exec(select(Outbox.lease_owner).where(col(Outbox.lease_owner).is_not(None)).distinct())
        )
        dead = [o for o in owners if o and not alive(o)]
        if not dead:
            return 0
        result = session.exec(  # type: ignore[call-overload]
            update(Outbox)
            .where(col(Outbox.lease_owner).in_(dead), col(Outbox.status) == "pending")
            .values(lease_until=None, lease_owner=None)
        )
        return int(result.rowcount or 0)


def prune_delivered(engine: Engine, before: datetime) -> int:
    """Forget rows delivered long ago (failed ones stay, for a person to look at)."""
    with transaction(engine) as session:
        result = session.exec(  # type: ignore[call-overload]
            delete(Outbox).where(col(Outbox.status).in_(("sent", "superseded")), col(Outbox.done_at) < before)
        )
        return int(result.rowcount or 0)


def retry_now(engine: Engine, now: datetime, keep: frozenset[int] = frozenset()) -> int:
    """After a recovery: every pending row waiting out a backoff becomes ready now, but those in
    `keep` (their last call may still be landing: they keep their backoff)."""
    query = update(Outbox).where(
        col(Outbox.status) == "pending", col(Outbox.attempts) > 0, col(Outbox.not_before) > now
    )
    if keep:
        query = query.where(col(Outbox.id).not_in(keep))
    with transaction(engine) as session:
        result = session.exec(query.values(not_before=now))  # type: ignore[call-overload]
        return int(result.rowcount or 0)
