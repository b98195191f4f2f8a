"""Recording finished deliveries: the worker keeps each delivery's outcome until its next claim,
then records them all (row status and the handler's completion) and claims in one transaction,
so a busy worker commits once per round instead of once per Slack call."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session

from bot.observability import OUTBOX_DELIVERED
from bot.service.delivery_failures import report_failure
from bot.slack.delivery import Completion
from bot.store import outbox
from bot.store.db import transaction
from bot.store.tables import Outbox

log = logging.getLogger(__name__)

Claim = Callable[[Session], list[Outbox]]


@dataclass(frozen=True)
class Outcome:
    """How a delivery ended, to be recorded with the row's completion in one transaction."""

    row_id: int
    op: str
    status: str
    completion: Completion | None
    error: str | None
    incident_id: int | None = None
    notice: bool = False  # failed for good: tell people (never for a row that is itself a notice)


def record_and_claim(
    engine: Engine, outcomes: list[Outcome], now: datetime, claim: Claim | None
) -> list[Outbox]:
    """One transaction: record the outcomes, then `claim`. If a completion fails, the outcomes are
    recorded one by one so that one bug holds up no other row; the failed row's lease expires and
    it is delivered again (after looking first). A failing claim raises."""
    try:
        with transaction(engine) as session:
            _record(session, outcomes, now)
            rows = claim(session) if claim else []
    except Exception:
        if not outcomes:
            raise
        for outcome in outcomes:
            _record_alone(engine, outcome, now)
        if claim is None:
            return []
        with transaction(engine) as session:
            return claim(session)
    _count(outcomes)
    return rows


def _record(session: Session, outcomes: list[Outcome], now: datetime) -> None:
    for outcome in outcomes:
        if outcome.completion is not None:
            outcome.completion(session)
    session.flush()
    outbox.settle(session, [(o.row_id, o.status, o.error) for o in outcomes], now)
    for outcome in outcomes:
        if outcome.notice and outcome.status == "failed" and outcome.incident_id is not None:
            _report(session, outcome, now)


def _report(session: Session, outcome: Outcome, now: datetime) -> None:
    """Under a savepoint: a bug in telling people must not keep the row from being settled."""
    assert outcome.incident_id is not None
    try:
        with session.begin_nested():
            report_failure(session, outcome.incident_id, outcome.op, outcome.error or "", now)
    except Exception:
        log.exception("outbox %s (%s): could not report its failure", outcome.row_id, outcome.op)


def _record_alone(engine: Engine, outcome: Outcome, now: datetime) -> None:
    try:
        with transaction(engine) as session:
            _record(session, [outcome], now)
    except Exception:
        log.exception("outbox %s (%s) could not be settled; it will be retried", outcome.row_id, outcome.op)
        return
    _count([outcome])


def _count(outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        OUTBOX_DELIVERED.labels(outcome.op, outcome.status).inc()
