"""Use case: an Alertmanager notification arrives.

One notification = one transaction: the incident change, its alerts, its timeline rows and the
Slack calls they imply are committed together, or not at all (the webhook then answers 503 and
Alertmanager retries).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.core.alerts import Alert, GroupDecision, KnownAlert, Notification, Reason, decide
from bot.core.incident import Status
from bot.service import escalation, heartbeat, runbooks, storm
from bot.service.context import Context
from bot.service.incidents import open_incident, resolve_incident, sync
from bot.service.timeline import record
from bot.store import tables
from bot.store.db import transaction

log = logging.getLogger(__name__)

ACTOR = "alertmanager"


@dataclass(frozen=True)
class IngestResult:
    reason: Reason
    incident_id: int | None


def ingest(ctx: Context, note: Notification) -> IngestResult:
    # A replica racing us on the same new group loses on the unique open_key; rerun as a join.
    for attempt in range(3):
        try:
            with transaction(ctx.engine) as session:
                result = _ingest(ctx, session, note)
            break
        except IntegrityError:
            if attempt == 2:
                raise
            log.info("concurrent open of group %s, retrying as join", note.group_key)
    if result.reason not in (Reason.REPEAT, Reason.IGNORE_RESOLVED, Reason.STALE):
        ctx.wake()
    log.info(
        "alertmanager notification",
        extra={"group_key": note.group_key, "decision": result.reason.value, "incident": result.incident_id},
    )
    return result


def apply(ctx: Context, session: Session, note: Notification) -> IngestResult:
    """The notification's effect, in the caller's transaction (the inbox drain)."""
    return _ingest(ctx, session, note)


def _known(session: Session, incident_id: int) -> dict[str, tables.Alert]:
    rows = session.exec(select(tables.Alert).where(col(tables.Alert.incident_id) == incident_id))
    return {row.fingerprint: row for row in rows}


def _as_known(rows: dict[str, tables.Alert]) -> dict[str, KnownAlert]:
    return {fp: KnownAlert(r.status, r.starts_at, r.annotations) for fp, r in rows.items()}


def _ingest(ctx: Context, session: Session, note: Notification) -> IngestResult:
    now = ctx.clock()
    if note.alertname == ctx.heartbeat_alertname:
        if note.firing:
            heartbeat.beat(ctx, session, now)
        return IngestResult(Reason.HEARTBEAT, None)
    query = select(tables.Incident).where(col(tables.Incident.open_key) == note.key)
    incident = session.exec(query.with_for_update()).first()
    previous: tables.Incident | None = None
    rows: dict[str, tables.Alert] = {}
    if incident is not None:
        rows = _known(session, incident.id)  # type: ignore[arg-type]
        decision = decide(note, _as_known(rows), truncated=incident.truncated_alerts)
    else:
        previous = session.exec(
            select(tables.Incident)
            .where(col(tables.Incident.group_key) == note.key)
            .order_by(col(tables.Incident.id).desc())
        ).first()
        prev_alerts = _as_known(_known(session, previous.id)) if previous else None  # type: ignore[arg-type]
        decision = decide(note, None, prev_alerts)

    if not decision.writes:
        return IngestResult(decision.reason, incident.id if incident else None)

    if decision.opens:
        return _open(ctx, session, note, decision, previous, now)
    assert incident is not None and incident.id is not None
    incident.truncated_alerts = note.truncated_alerts
    _apply_alerts(session, incident.id, decision, rows, now)
    if incident.parent_id is not None:  # a group folded into a storm: the storm shows it
        if decision.resolves and incident.status != Status.RESOLVED:
            storm.resolve_child(ctx, session, incident, now)
        elif (parent := session.get(tables.Incident, incident.parent_id)) is not None:
            sync(ctx, session, parent, now)
        return IngestResult(decision.reason, incident.id)
    if decision.added:
        runbooks.attach(ctx, session, incident, now)
    if decision.resolves and incident.status != Status.RESOLVED:
        resolve_incident(
            ctx, session, incident, now, ACTOR, "by Alertmanager: every alert of the group has resolved"
        )
    else:
        sync(ctx, session, incident, now)
    return IngestResult(decision.reason, incident.id)


def _open(
    ctx: Context,
    session: Session,
    note: Notification,
    decision: GroupDecision,
    previous: tables.Incident | None,
    now: datetime,
) -> IngestResult:
    labels = {**note.common_labels, **note.group_labels}
    key = storm.route_key(ctx, labels)
    parent = storm.storm_for(ctx, session, key, now)
    if parent is not None:
        child = storm.fold(ctx, session, parent, note, now)
        child.truncated_alerts = note.truncated_alerts
        assert child.id is not None
        _apply_alerts(session, child.id, decision, {}, now)
        return IngestResult(Reason.FOLD, child.id)
    incident = open_incident(
        ctx,
        session,
        source="alertmanager",
        title=note.title,
        severity=note.severity,
        slug_source=note.alertname or note.title,
        now=now,
        actor=ACTOR,
        open_key=note.key,
        group_key=note.key,
        group_labels=dict(note.group_labels),
        common_annotations=dict(note.common_annotations),
        external_url=note.external_url,
        previous=previous,
    )
    incident.route_key = key
    incident.truncated_alerts = note.truncated_alerts
    assert incident.id is not None
    route = escalation.start(ctx, session, incident, labels, now, fresh=True)
    _apply_alerts(session, incident.id, decision, {}, now)
    runbook = route.runbook if route else None
    runbooks.attach(ctx, session, incident, now, runbook, fresh_alerts=decision.added)
    return IngestResult(decision.reason, incident.id)


def _apply_alerts(
    session: Session, incident_id: int, decision: GroupDecision, rows: dict[str, tables.Alert], now
) -> None:
    for alert in decision.added:
        session.add(_row(incident_id, alert, now))
        verb = "firing" if alert.firing else "already resolved"
        record(
            session,
            incident_id,
            now,
            ACTOR,
            "alert_added",
            f"{_describe(alert)} {verb}",
            {"fingerprint": alert.fingerprint},
        )
    for alert in (*decision.resolved, *decision.refired, *decision.changed):
        row = rows[alert.fingerprint]
        row.status, row.ends_at, row.annotations = alert.status, _ended(alert, now), dict(alert.annotations)
        row.starts_at = alert.starts_at
        session.add(row)
    for alert in decision.resolved:
        record(
            session,
            incident_id,
            now,
            ACTOR,
            "alert_resolved",
            f"{_describe(alert)} resolved",
            {
                "fingerprint": alert.fingerprint,
                "ends_at": alert.ends_at.isoformat() if alert.ends_at else None,
            },
        )
    for alert in decision.refired:
        record(
            session,
            incident_id,
            now,
            ACTOR,
            "alert_refired",
            f"{_describe(alert)} firing again",
            {"fingerprint": alert.fingerprint},
        )


def _describe(alert: Alert) -> str:
    extra = alert.labels.get("instance") or alert.labels.get("service") or alert.fingerprint
    return f"{alert.name or 'alert'} ({extra})"


def _ended(alert: Alert, now: datetime) -> datetime | None:
    """When a resolved alert ended: Alertmanager's `endsAt`, or when we heard of it if it sent none
    (the card and the post-mortem say when each alert resolved)."""
    return alert.ends_at or (None if alert.firing else now)


def _row(incident_id: int, alert: Alert, now: datetime) -> tables.Alert:
    return tables.Alert(
        incident_id=incident_id,
        fingerprint=alert.fingerprint,
        name=alert.name,
        status=alert.status,
        labels=dict(alert.labels),
        annotations=dict(alert.annotations),
        starts_at=alert.starts_at,
        ends_at=_ended(alert, now),
        generator_url=alert.generator_url,
    )
