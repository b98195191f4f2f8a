"""iCalendar feeds of the effective schedule (`GET /calendar/<rotation>.ics`,
`GET /calendar/people/<person>.ics`) and the same shifts as rows for `incidentbot oncall --weeks`.

One event per shift (as `core.schedule.shifts_between` cuts them: a handoff, an override's start or
end), for the next WEEKS weeks, overrides included. UIDs are derived from the rotation, the layer,
the shift's start and the person, so a calendar client updates events instead of duplicating them,
and an override only changes the events it touches. Times are written in the rotation's zone
(TZID, with a VTIMEZONE made from the zone database by the `icalendar` library), so a 09:00
handoff stays at 09:00 across DST; an instant that is the second occurrence of a repeated local
time (a fall-back night) is written in UTC, because local time cannot say which one it is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event

from bot.catalog.rotations import Catalog
from bot.core.rotations import Rotation, Shift
from bot.core.schedule import shifts_between
from bot.service.context import Context
from bot.service.oncall_schedule import effective
from bot.store.db import reading

WEEKS = 12
PRODID = "-//incidentbot//on-call//EN"


@dataclass(frozen=True)
class Row:
    rotation: str
    layer: str
    shift: Shift
    zone: ZoneInfo


def rows(
    rotations: Mapping[str, Rotation], start: datetime, end: datetime, person: str | None = None
) -> Iterator[Row]:
    """Every shift of every layer overlapping [start, end) (one person's only, if given)."""
    for name, rotation in rotations.items():
        if rotation.source != "file":
            continue
        zone = ZoneInfo(rotation.timezone)
        for layer in rotation.layers:
            for shift in shifts_between(rotation, layer, start, end):
                if person is None or shift.person == person:
                    yield Row(name, layer, shift, zone)


def uid(row: Row) -> str:
    key = f"{row.rotation}\n{row.layer}\n{row.shift.start.isoformat()}\n{row.shift.person}"
    return f"{hashlib.sha256(key.encode()).hexdigest()[:32]}@incidentbot"


def ics(catalog: Catalog, items: list[Row], title: str, now: datetime) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", title)
    stamp = now.astimezone(UTC).replace(microsecond=0)
    for row in items:
        person = catalog.people.get(row.shift.person)
        who = person.display_name if person and person.display_name else row.shift.person
        event = Event()
        event.add("uid", uid(row))
        event.add("dtstamp", stamp)
        event.add("dtstart", _written(row.shift.start, row.zone))
        event.add("dtend", _written(row.shift.end, row.zone))
        event.add(
            "summary", f"{row.rotation} {row.layer}: {who}" + (" (override)" if row.shift.override else "")
        )
        event.add("transp", "TRANSPARENT")  # being on call does not make anyone busy
        calendar.add_component(event)
    first = min((r.shift.start for r in items), default=now)
    calendar.add_missing_timezones(
        first_date=_day(first) - timedelta(days=1), last_date=_day(now) + timedelta(weeks=WEEKS + 2)
    )
    return calendar.to_ical()


def _day(at: datetime) -> date:
    return at.astimezone(UTC).date()


def _written(at: datetime, zone: ZoneInfo) -> datetime:
    """Local time in the rotation's zone, unless that local time would name another instant."""
    local = at.astimezone(zone)
    if local.replace(fold=0).astimezone(UTC) != at.astimezone(UTC):
        return at.astimezone(UTC)
    return local.replace(fold=0)


def rotation_feed(ctx: Context, name: str) -> bytes | None:
    """The rotation's feed, or None when there is no such rotation (or its on-call is PagerDuty's)."""
    catalog = ctx.rotations
    if catalog is None or name not in catalog.rotations or catalog.rotations[name].source != "file":
        return None
    now = ctx.clock()
    end = now + timedelta(weeks=WEEKS)
    with reading(ctx.engine) as session:
        rotations = effective(ctx, session, [name], now, end)
    return ics(catalog, list(rows(rotations, now, end)), f"On call: {name}", now)


def person_feed(ctx: Context, person: str) -> bytes | None:
    """One person's shifts in every rotation, or None when people.yaml has no such person."""
    catalog = ctx.rotations
    if catalog is None or person not in catalog.people:
        return None
    now = ctx.clock()
    end = now + timedelta(weeks=WEEKS)
    with reading(ctx.engine) as session:
        rotations = effective(ctx, session, None, now, end)
    items = sorted(rows(rotations, now, end, person), key=lambda r: (r.shift.start, r.rotation, r.layer))
    return ics(catalog, items, f"On call: {person}", now)
