"""Handoffs: the moments a layer's person changes, and what is said then (issue 19, item 3).

A handoff of a layer is an instant B where the person on call just before B differs from the one
at B (overrides included: the schedule passed in is the effective one). Consecutive shifts of one
person are one stretch of duty, so [mike, mike, lisa] hands off twice in three weeks.

Planning keeps one pending notice per layer: `due_handoff(after, now)` is the next handoff to
announce. Normally the first one after `after`; when the bot was down across several, only the
latest one that already happened (its incoming person is the one on call now): older ones are
history nobody needs a DM about. A notice more than `LATE` after its handoff says so.

The texts are built here (no Slack client): `<!date^…>` dates, each reader's own zone, with the
person's zone from people.yaml as the written fallback.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.core.rotations import Person, Rotation, Shift, hands_over, on_call
from bot.core.text import escape, slack_date

LATE = timedelta(minutes=3)
HORIZON = 60  # shifts walked before giving up (a one-member layer never hands off)
_TICK = timedelta(microseconds=1)
HANDOFF_KIND = "handoff"
REMINDER_KIND = "handoff_reminder"
LATE_NOTE = " (late: the bot was down at the handoff)"
LATE_REMINDER_NOTE = " (late: the bot was down when this reminder was due)"


def handoff_key(rotation: str, layer: str, at: datetime) -> str:
    return f"handoff:{rotation}:{layer}:{at.astimezone(UTC).isoformat()}"


def reminder_key(rotation: str, layer: str, at: datetime) -> str:
    return f"reminder:{rotation}:{layer}:{at.astimezone(UTC).isoformat()}"


def is_handoff(rotation: Rotation, layer: str, at: datetime) -> bool:
    """Whether the layer's person changes exactly at `at`."""
    return on_call(rotation, layer, at - _TICK).person != on_call(rotation, layer, at).person


def run_start(rotation: Rotation, layer: str, shift: Shift) -> datetime:
    """When the person of `shift` took the layer over (the start of their stretch of duty)."""
    start = shift.start
    for _ in range(HORIZON):
        before = on_call(rotation, layer, start - _TICK)
        if before.person != shift.person:
            return start
        start = before.start
    return start


def next_handoff(rotation: Rotation, layer: str, after: datetime) -> datetime | None:
    """The first handoff strictly after `after` (None: none within HORIZON shifts)."""
    return hands_over(rotation, layer, on_call(rotation, layer, after), HORIZON)


def due_handoff(rotation: Rotation, layer: str, after: datetime, now: datetime) -> datetime | None:
    """The handoff to announce next, given the last one announced (or planned from) `after`."""
    current = run_start(rotation, layer, on_call(rotation, layer, now))
    if after < current <= now:
        return current  # missed while down (or it is now): the latest one that happened
    return next_handoff(rotation, layer, max(after, now))


def reminder_due(handoff: datetime, before: timedelta, now: datetime) -> datetime | None:
    """When to remind the incoming person: `before` ahead of the handoff, or now if that has
    passed while the handoff is still ahead; None when reminders are off or it is too late."""
    if before <= timedelta(0) or handoff <= now:
        return None
    return max(handoff - before, now)


@dataclass(frozen=True)
class Handoff:
    rotation: str
    layer: str
    at: datetime
    outgoing: str
    incoming: str
    outgoing_since: datetime  # when the outgoing person took over
    incoming_until: datetime | None  # their real handover (None: not within HORIZON shifts)
    override: bool  # the incoming person covers by an override


def handoff_at(rotation: Rotation, layer: str, at: datetime) -> Handoff:
    before = on_call(rotation, layer, at - _TICK)
    after = on_call(rotation, layer, at)
    return Handoff(
        rotation.name,
        layer,
        at,
        before.person,
        after.person,
        run_start(rotation, layer, before),
        hands_over(rotation, layer, after, HORIZON),
        after.override,
    )


@dataclass(frozen=True)
class ShiftSummary:
    """What happened during the outgoing person's stretch of duty (gathered by the service)."""

    incidents: int = 0
    pages: int = 0
    acknowledged: int = 0
    open_incidents: tuple[str, ...] = ()  # "#12 Disk full" of the rotation, still unresolved


def when(at: datetime, person: Person | None, rotation_zone: str) -> str:
    """A Slack date; the written fallback in the person's own zone (else the rotation's)."""
    zone = ZoneInfo(person.timezone if person and person.timezone else rotation_zone)
    return slack_date(at, "{date_short_pretty} {time}", at.astimezone(zone).strftime("%a %b %d %H:%M %Z"))


def _until(h: Handoff, person: Person | None, zone: str) -> str:
    return f"until {when(h.incoming_until, person, zone)}" if h.incoming_until else "until further notice"


def incoming_text(h: Handoff, person: Person | None, zone: str, late: bool) -> str:
    cover = " (an override)" if h.override else ""
    return (
        f":pager: You are on call for {escape(h.rotation)} {escape(h.layer)}{cover} from "
        f"{when(h.at, person, zone)} {_until(h, person, zone)}." + (LATE_NOTE if late else "")
    )


def outgoing_text(h: Handoff, summary: ShiftSummary, person: Person | None, zone: str, late: bool) -> str:
    lines = [
        f":wave: Your {escape(h.rotation)} {escape(h.layer)} shift ended at {when(h.at, person, zone)}"
        + (LATE_NOTE if late else "")
        + ".",
        f"Since {when(h.outgoing_since, person, zone)}: {summary.incidents} incident(s), "
        f"{summary.pages} page(s) to you, {summary.acknowledged} acknowledged by you.",
    ]
    if summary.open_incidents:
        lines.append("Handed over unresolved: " + ", ".join(escape(i) for i in summary.open_incidents))
    else:
        lines.append("No unresolved incidents handed over.")
    return "\n".join(lines)


def channel_text(h: Handoff, who: str, previous: str, zone: str, late: bool) -> str:
    """One line for the rotation's channel; `who`/`previous` are mentions or escaped names."""
    return (
        f":arrows_counterclockwise: {escape(h.rotation)} {escape(h.layer)}: {who} takes over from "
        f"{previous} {_until(h, None, zone)}." + (LATE_NOTE if late else "")
    )


def reminder_text(h: Handoff, person: Person | None, zone: str, late: bool) -> str:
    return (
        f":alarm_clock: Reminder: you are on call for {escape(h.rotation)} {escape(h.layer)} from "
        f"{when(h.at, person, zone)} {_until(h, person, zone)}." + (LATE_REMINDER_NOTE if late else "")
    )
