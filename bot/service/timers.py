"""Use case: fire the timers that are due, each in the same transaction as its effects."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from bot.service import (
    escalation,
    handoffs,
    heartbeat,
    lifecycle,
    notifications,
    notify_plan,
    notify_receipts,
    silences,
    swaps,
)
from bot.service.context import Context
from bot.store import timers
from bot.store.db import is_postgres, transaction
from bot.store.tables import Incident, Timer

log = logging.getLogger(__name__)

BATCH = 200


@dataclass(frozen=True)
class Pass:
    fired: int
    next_due: datetime | None  # the earliest timer still pending afterwards (None: none)


def fire_due(ctx: Context) -> Pass:
    """Fire everything due now. An idle pass is one read-only query that also says when to look next."""
    next_due = timers.next_due(ctx.engine)
    if next_due is None or next_due > ctx.clock():
        return Pass(0, next_due)
    total = 0
    while True:
        now = ctx.clock()
        with transaction(ctx.engine) as session:
            batch = timers.due(session, ctx.engine, now, BATCH)
            for timer in batch:
                if not incident_free(ctx, session, timer):
                    continue  # someone is acknowledging or resolving it right now: next tick
                try:
                    with session.begin_nested():  # one bad timer must not block the others
                        _dispatch(ctx, session, timer, now)
                except SQLAlchemyError:
                    raise  # the database, not the timer: roll the tick back, it stays due
                except Exception:
                    log.exception(
                        "timer %s (%s %s) failed; marking it failed", timer.id, timer.kind, timer.key
                    )
                    timer.status = "failed"
                    session.add(timer)
        total += len(batch)
        if len(batch) < BATCH:
            return Pass(total, timers.next_due(ctx.engine))


def incident_free(ctx: Context, session: Session, timer: Timer) -> bool:
    """Lock the timer's incident without waiting. People's use cases lock the incident first and
    then its timers; the tick holds timers, so waiting here could deadlock (PostgreSQL)."""
    if timer.incident_id is None or not is_postgres(ctx.engine):
        return True  # SQLite runs one writer at a time
    query = select(Incident.id).where(col(Incident.id) == timer.incident_id).with_for_update(skip_locked=True)
    return session.exec(query).first() is not None


def _dispatch(ctx: Context, session: Session, timer: Timer, now: datetime) -> None:
    if timer.kind in ("escalation", "final_notice"):
        escalation.on_timer(ctx, session, timer, now)
    elif timer.kind == notify_plan.KIND:
        notifications.on_timer(ctx, session, timer, now)
    elif timer.kind == notify_receipts.KIND:
        notify_receipts.on_timer(ctx, session, timer, now)
    elif timer.kind == "heartbeat":
        heartbeat.silent(ctx, session, timer, now)
    elif timer.kind == "archive":
        lifecycle.archive_due(ctx, session, timer, now)
    elif timer.kind == silences.CHECK_KIND:
        silences.check_due(ctx, session, timer, now)
    elif timer.kind == swaps.EXPIRY_KIND:
        swaps.expire_due(ctx, session, timer, now)
    elif timer.kind in handoffs.KINDS:
        handoffs.on_timer(ctx, session, timer, now)
    else:
        log.warning("unknown timer kind %r", timer.kind)
        timer.status = "failed"
        session.add(timer)
