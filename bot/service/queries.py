"""Read-only answers for people: `/incident status`, `list`, `timeline`."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session, col, func, select

from bot.core.durations import format_duration
from bot.core.incident import OPEN_STATUSES, Status
from bot.core.people import People
from bot.core.text import escape, escape_keeping_mentions, safe_mrkdwn, slack_date
from bot.service.context import Context
from bot.service.escalation_plan import pending_step
from bot.service.people import people_paged
from bot.service.responders import mention
from bot.store.db import reading
from bot.store.tables import Incident, Page, TimelineEntry


def _get(session: Session, incident_id: int) -> Incident:
    incident = session.get(Incident, incident_id)
    assert incident is not None
    return incident


def _when(at: datetime) -> str:
    """A time each reader sees in their own zone."""
    return slack_date(at, "{date_short_pretty} {time}", f"{at.astimezone(UTC):%b %d %H:%M} UTC")


def status(ctx: Context, incident_id: int) -> str:
    with reading(ctx.engine) as session:
        incident = _get(session, incident_id)
        now = ctx.clock()
        people = people_paged(ctx, session, incident_id)
        lines = [
            f"*#{incident.id} {escape(incident.title)}*",
            f"State: *{incident.status}* · {incident.severity} · "
            f"open for {format_duration(now - incident.created_at)} (since {_when(incident.created_at)})",
        ]
        if incident.acknowledged_at:
            lines.append(
                f"Acknowledged by {mention(incident.acknowledged_by)} after "
                f"{format_duration(incident.acknowledged_at - incident.created_at)}"
                f" ({_when(incident.acknowledged_at)})"
            )
        if incident.lead:
            lines.append(f"Lead: {mention(incident.lead)}")
        pages = list(
            session.exec(select(Page).where(col(Page.incident_id) == incident_id).order_by(col(Page.id)))
        )
        names = [_who(p, people) for p in pages if p.failed_at is None]
        lines.append("Paged: " + (", ".join(dict.fromkeys(names)) if names else "nobody yet"))
        # A page Slack refused is not a page: shown apart, with Slack's answer.
        failed = [
            f"{_who(p, people)}: {escape(p.failure or 'failed')}" for p in pages if p.failed_at is not None
        ]
        if failed:
            lines.append("Could not page " + "; ".join(dict.fromkeys(failed)))
        timer = pending_step(session, incident) if Status(incident.status) in OPEN_STATUSES else None
        if timer is not None:
            what = "final @here notice" if timer.kind == "final_notice" else "next escalation step"
            wait = format_duration(max(timer.due_at - now, now - now))
            lines.append(f"Pending: {what} in {wait} ({_when(max(timer.due_at, now))})")
        elif incident.status == Status.TRIGGERED:
            lines.append("Pending: nothing (every step has paged)")
        return "\n".join(lines)


def _who(page: Page, people: People) -> str:
    return f"<@{page.slack_user}>" if page.slack_user else escape(people.name(page.person))


LIST_MAX = 50


def open_incidents(ctx: Context) -> str:
    """Open incidents, newest first; a storm's folded groups are counted on its line, not listed."""
    is_open = col(Incident.status).in_([s.value for s in OPEN_STATUSES])
    with reading(ctx.engine) as session:
        total = session.exec(
            select(func.count(col(Incident.id))).where(is_open, col(Incident.parent_id).is_(None))
        ).one()
        rows = session.exec(
            select(Incident)
            .where(is_open, col(Incident.parent_id).is_(None))
            .order_by(col(Incident.id).desc())
            .limit(LIST_MAX)
        ).all()
        if not rows:
            return "No open incidents. :sunny:"
        storms = [inc.id for inc in rows if inc.source == "storm"]
        groups: dict[int, int] = dict(
            session.exec(
                select(Incident.parent_id, func.count(col(Incident.id)))
                .where(is_open, col(Incident.parent_id).in_(storms))
                .group_by(col(Incident.parent_id))
            ).all()
        )
        now = ctx.clock()
        shown = f", the newest {len(rows)}" if total > len(rows) else ""
        lines = [f"*{total} open incident(s){shown}:*"]
        for inc in rows:
            where = f"<#{inc.channel_id}>" if inc.channel_id else f"#{inc.channel_name}"
            held = f" · {groups[inc.id]} open alert groups" if inc.id in groups else ""
            lines.append(
                f"• {inc.severity} {where} {escape(inc.title)} · {inc.status} · "
                f"{format_duration(now - inc.created_at)}{held}"
            )
        return "\n".join(lines)


# What people typed in Slack keeps its safe markup (links, mentions), marked by what it is.
_TYPED = {"note": ":memo:", "action": ":ballot_box_with_check:", "pinned": ":pushpin:"}
# The bot's own echoes of what is already in the channel would drown the entries people want.
_NOT_FOR_PEOPLE = ("posted", "announced")


def timeline(ctx: Context, incident_id: int, limit: int = 20) -> str:
    with reading(ctx.engine) as session:
        rows = session.exec(
            select(TimelineEntry)
            .where(
                col(TimelineEntry.incident_id) == incident_id, col(TimelineEntry.kind).not_in(_NOT_FOR_PEOPLE)
            )
            .order_by(col(TimelineEntry.at).desc(), col(TimelineEntry.id).desc())
            .limit(limit)
        ).all()
        lines = [f"*Last {len(rows)} timeline entries (UTC):*"]
        for entry in reversed(rows):
            typed = _TYPED.get(entry.kind) if entry.actor.startswith("slack:") else None
            if typed:
                text = f"{typed} {safe_mrkdwn(entry.text[:300])}"
            else:
                text = escape_keeping_mentions(entry.text[:300], entry.data.get("mentions", ()))
            lines.append(f"`{entry.at:%H:%M:%S}` {mention(entry.actor)} · {text}")
        return "\n".join(lines)
