"""Use cases around the silences made from the incident card.

* `silence`: Silence 1h/4h was clicked. Only the offered durations are accepted (a button's value
  is text anyone can forge); the outbox asks Alertmanager for the silence.
* `made`: Alertmanager made it (the `silence` row's completion): remember it, show "Silenced until
  ... by ..." and Unsilence on the card, and arm the check timer.
* `unsilence`: Unsilence was clicked: the outbox expires the card's silences; `expired` (that row's
  completion) clears the card's silence state and says who unsilenced.
* `check_due`: the check timer fired (claimed like every timer, so one replica asks). Alertmanager
  sends no resolved notification for silenced alerts, so while the silence lasts the bot asks it
  (an outbox `check_silenced` row) and re-arms; when the silence runs out, one last look, and the
  card gets its Silence buttons back.
* `alerts_checked`: Alertmanager listed the group's active alerts; `core.silences.after_check`
  decides, and an incident none of whose alerts fire any more resolves.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session, col, select

from bot.core.durations import format_duration
from bot.core.errors import BadInput, IllegalTransition
from bot.core.incident import OPEN_STATUSES, Status
from bot.core.permissions import Action
from bot.core.silences import after_check, offered, offered_text
from bot.service.context import Context
from bot.service.incidents import expire_silences, resolve_incident, say, sync
from bot.service.permissions import require
from bot.service.responders import Answer, load, mention
from bot.service.timeline import record
from bot.store import outbox
from bot.store.db import transaction
from bot.store.tables import Alert, Incident, Outbox, Timer

log = logging.getLogger(__name__)

CHECK_KIND = "silence_check"  # one timer row per incident, re-armed while the silence lasts
CHECK_KEY = "card"
CHECK_OP = "check_silenced"
RESOLVED_WHY = "its alerts stopped firing while silenced"


def am_lane(incident_id: int | None) -> str:
    """Calls to Alertmanager about one incident, in order (silence, check, expire)."""
    return f"alertmanager:{incident_id}"


def _is_open(incident: Incident) -> bool:
    return Status(incident.status) in OPEN_STATUSES


def silence(ctx: Context, incident_id: int, user: str, seconds: int) -> Answer:
    """Ask Alertmanager for a silence matching the group's labels (delivered by the outbox)."""
    duration = offered(seconds)
    if duration is None:
        raise BadInput(f"No silence was made: a silence from the card lasts {offered_text()}.")
    with transaction(ctx.engine) as session:
        incident = load(session, incident_id)
        require(ctx, session, incident, Action.SILENCE, user)
        if incident.source != "alertmanager":
            raise IllegalTransition("Only Alertmanager incidents can be silenced from here.")
        if not _is_open(incident):
            raise IllegalTransition(f"Incident #{incident_id} is {incident.status}; nothing to silence.")
        now = ctx.clock()
        outbox.enqueue(
            session,
            am_lane(incident_id),
            "silence",
            now,
            {"seconds": int(duration.total_seconds()), "by": user},
            incident_id=incident_id,
        )
        record(
            session,
            incident_id,
            now,
            f"slack:{user}",
            "silence_requested",
            f"Silence for {format_duration(duration)} requested",
        )
    ctx.wake()
    return Answer(f"Silencing the alert group for {format_duration(duration)}.", changed=True)


def made(
    ctx: Context,
    session: Session,
    incident_id: int,
    silence_id: str,
    until: datetime,
    by: str,
    text: str,
    now: datetime,
) -> None:
    """Alertmanager made silence `silence_id` (until `until`, asked by Slack user `by`)."""
    # Locked: a resolve committing meanwhile either sees this silence (and expires it) or is seen here.
    stored = session.get(Incident, incident_id, with_for_update=True)
    assert stored is not None and stored.id is not None
    stored.silences = [*stored.silences, silence_id]
    session.add(stored)
    if not _is_open(stored):  # resolved while Alertmanager answered
        record(session, stored.id, now, "bot", "silence", "Silence made after the incident resolved")
        expire_silences(session, stored, now, [silence_id])
        return
    stored.silenced_until = max(until, stored.silenced_until or until)
    stored.silenced_by = f"slack:{by}"
    record(
        session,
        stored.id,
        now,
        f"slack:{by}",
        "silence",
        f"Silenced until {until:%Y-%m-%d %H:%M} UTC",
        {"silence_id": silence_id, "until": until.isoformat()},
    )
    say(session, stored, now, text, trusted=True)
    sync(ctx, session, stored, now)
    _arm_check(ctx, session, stored, now)


def _arm_check(ctx: Context, session: Session, incident: Incident, now: datetime) -> None:
    due = _next_check(ctx, incident, now)
    timer = session.exec(
        select(Timer).where(
            col(Timer.incident_id) == incident.id, col(Timer.kind) == CHECK_KIND, col(Timer.key) == CHECK_KEY
        )
    ).first()
    if timer is None:
        session.add(Timer(incident_id=incident.id, kind=CHECK_KIND, key=CHECK_KEY, due_at=due))
        return
    timer.status, timer.due_at, timer.fired_at = "pending", due, None
    session.add(timer)


def _next_check(ctx: Context, incident: Incident, now: datetime) -> datetime:
    """The next look, and at the latest when the silence runs out (so its end is noticed then)."""
    due = now + ctx.silence_check_interval
    return min(due, incident.silenced_until) if incident.silenced_until else due


def unsilence(ctx: Context, incident_id: int, actor: str) -> Answer:
    """Expire the card's silences now (through the outbox); `expired` says who in the channel."""
    with transaction(ctx.engine) as session:
        incident = load(session, incident_id)
        require(ctx, session, incident, Action.SILENCE, actor)
        if not _is_open(incident):
            raise IllegalTransition(
                f"Incident #{incident_id} is {incident.status}; its silences ended with it."
            )
        if not incident.silences:
            return Answer(f"Incident #{incident_id} has no silence from the card.")
        now = ctx.clock()
        expire_silences(session, incident, now, by=actor)
        assert incident.id is not None
        record(session, incident.id, now, actor, "unsilence_requested", "Unsilence requested")
    ctx.wake()
    return Answer("Unsilencing the alert group.", changed=True)


def expired(ctx: Context, session: Session, incident_id: int, ids: list[str], by: str | None) -> None:
    """Alertmanager expired `ids` (unsilenced by `by`, or the incident ended)."""
    now = ctx.clock()
    stored = session.get(Incident, incident_id, with_for_update=True)
    if stored is None or stored.id is None:
        return
    stored.silences = [s for s in stored.silences if s not in ids]
    record(
        session,
        stored.id,
        now,
        "bot",
        "silence_expired",
        f"Expired {len(ids)} silence(s)",
        {"silence_ids": ids},
    )
    if not stored.silences and stored.silenced_until is not None:
        stored.silenced_until = stored.silenced_by = None
        sync(ctx, session, stored, now)
    session.add(stored)
    if by:
        record(session, stored.id, now, by, "unsilenced", "Unsilenced")
        say(
            session,
            stored,
            now,
            f":bell: Unsilenced by {mention(by)}: the group's alerts notify again.",
            trusted=True,
        )


def check_due(ctx: Context, session: Session, timer: Timer, now: datetime) -> None:
    """The check timer fired: ask Alertmanager again while the card silence lasts."""
    incident = session.get(Incident, timer.incident_id)
    if incident is None or not _is_open(incident) or incident.silenced_until is None:
        timer.status, timer.fired_at = "fired", now  # unsilenced or resolved: nothing to watch
        session.add(timer)
        return
    _ask(session, incident, now)
    if incident.silenced_until > now:
        timer.due_at = _next_check(ctx, incident, now)  # stays pending: re-armed
        session.add(timer)
        return
    timer.status, timer.fired_at = "fired", now
    session.add(timer)
    _ran_out(ctx, session, incident, now)


def _ask(session: Session, incident: Incident, now: datetime) -> None:
    """One look at a time: a look still waiting (Alertmanager slow, a lane busy) is enough."""
    waiting = session.exec(
        select(Outbox.id).where(
            col(Outbox.lane) == am_lane(incident.id),
            col(Outbox.op) == CHECK_OP,
            col(Outbox.status) == "pending",
        )
    ).first()
    if waiting is None:
        outbox.enqueue(session, am_lane(incident.id), CHECK_OP, now, incident_id=incident.id)


def _ran_out(ctx: Context, session: Session, incident: Incident, now: datetime) -> None:
    """The silence ended by itself (Alertmanager expired it): the card offers Silence again."""
    assert incident.id is not None
    incident.silenced_until = incident.silenced_by = None
    incident.silences = []
    session.add(incident)
    record(session, incident.id, now, "bot", "silence_ended", "The silence ended")
    say(session, incident, now, ":bell: The silence ended; the group's alerts notify again.", trusted=True)
    sync(ctx, session, incident, now)


def alerts_checked(ctx: Context, session: Session, incident_id: int, listed: set[str]) -> None:
    """Alertmanager lists `listed` (fingerprints) as the group's active alerts: resolve the incident
    if none of its alerts is among them (its silence kept Alertmanager from telling us)."""
    now = ctx.clock()
    incident = session.get(Incident, incident_id, with_for_update=True)
    if incident is None or incident.id is None or not _is_open(incident) or incident.source != "alertmanager":
        return
    alerts = list(session.exec(select(Alert).where(col(Alert.incident_id) == incident_id)))
    firing = {a.fingerprint for a in alerts if a.status == "firing"}
    decision = after_check(firing, listed, truncated=incident.truncated_alerts > 0)
    log.info("silenced group checked", extra={"incident": incident_id, "decision": decision.reason.value})
    for alert in alerts:
        if alert.fingerprint in decision.stopped:
            alert.status, alert.ends_at = "resolved", now
            session.add(alert)
    if decision.resolves:
        record(
            session,
            incident.id,
            now,
            "alertmanager",
            "silence_check",
            f"Resolved: {RESOLVED_WHY}",
            {"stopped": sorted(decision.stopped)},
        )
        resolve_incident(ctx, session, incident, now, "alertmanager", f"by Alertmanager: {RESOLVED_WHY}")
    elif decision.stopped:
        record(
            session,
            incident.id,
            now,
            "alertmanager",
            "silence_check",
            f"{len(decision.stopped)} alert(s) stopped firing while silenced",
            {"stopped": sorted(decision.stopped), "reason": decision.reason.value},
        )
        sync(ctx, session, incident, now)
