"""Watching the watcher: Alertmanager's always-firing heartbeat alert (`Watchdog`) must keep
arriving; when it stops, the alerting pipeline itself is broken and someone is paged.

The switch arms on the first heartbeat seen (a bot whose Alertmanager sends none is not
alarmed), and every heartbeat pushes the deadline out by HEARTBEAT_TIMEOUT. The deadline is a
timer row like any other, so it survives restarts and fires once across replicas; the incident's
unique open key keeps a second replica from opening it twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from bot.core.durations import format_duration
from bot.core.incident import Severity, Status
from bot.service import escalation
from bot.service.context import Context
from bot.service.incidents import open_incident, resolve_incident
from bot.store.tables import Incident, Timer

KIND = "heartbeat"


def _open_key(ctx: Context) -> str:
    return f"heartbeat|{ctx.heartbeat_alertname}"


def beat(ctx: Context, session: Session, now: datetime) -> None:
    """A heartbeat arrived: move the deadline and resolve a 'pipeline is silent' incident."""
    due = now + ctx.heartbeat_timeout
    timer = session.exec(
        select(Timer)
        .where(
            col(Timer.kind) == KIND, col(Timer.key) == ctx.heartbeat_alertname, col(Timer.status) == "pending"
        )
        .with_for_update()
    ).first()
    if timer is None:
        session.add(Timer(kind=KIND, key=ctx.heartbeat_alertname, due_at=due))
    else:
        timer.due_at = due
        session.add(timer)
    silent = session.exec(select(Incident).where(col(Incident.open_key) == _open_key(ctx))).first()
    if silent is not None and silent.status in (Status.TRIGGERED, Status.ACKNOWLEDGED):
        resolve_incident(
            ctx,
            session,
            silent,
            now,
            "alertmanager",
            f"by the heartbeat: {ctx.heartbeat_alertname} arrived again",
        )


def silent(ctx: Context, session: Session, timer: Timer, now: datetime) -> None:
    """The deadline passed without a heartbeat: open a SEV1 and page as usual."""
    timer.status, timer.fired_at = "fired", now
    session.add(timer)
    if session.exec(select(Incident.id).where(col(Incident.open_key) == _open_key(ctx))).first():
        return
    quiet_for = format_duration(now - (timer.due_at - ctx.heartbeat_timeout))
    incident = open_incident(
        ctx,
        session,
        source="heartbeat",
        title="Alerting pipeline is silent",
        severity=Severity.SEV1,
        slug_source="alerting-pipeline-silent",
        now=now,
        actor="bot",
        open_key=_open_key(ctx),
        group_labels={"alertname": ctx.heartbeat_alertname},
        common_annotations={
            "summary": "Alerting pipeline is silent",
            "description": f"No {ctx.heartbeat_alertname} heartbeat from Alertmanager for {quiet_for}: "
            "alerts may not be reaching anyone. Check Prometheus, Alertmanager and the route to this bot.",
        },
    )
    escalation.start(
        ctx, session, incident, {"alertname": ctx.heartbeat_alertname, "severity": "critical"}, now
    )
