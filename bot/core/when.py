"""`<when>` in `/oncall override` and `/oncall swap`: a span of time as people type it.

    now for 4h                              from now, for a duration (`for 4h` alone is the same)
    until 18:00                             from now until the next 18:00 (today or tomorrow)
    tomorrow 09:00 for 8h                   `today`/`tomorrow HH:MM`, a bare `HH:MM` (its next
                                            occurrence) or a date/time, then `for` or `to`
    2026-12-24T18:00 to 2026-12-26T09:00    `2026-12-24 18:00` and a bare date (midnight) also work

Times are wall-clock times in the rotation's zone unless they carry an offset (`...T18:00-05:00`,
`Z`), read like the rotation file's times (`local_time.local_to_utc`: a time in a DST gap is the
moment the clock jumps, a repeated one its first occurrence). An end written as `HH:MM` is its next
occurrence after the start. The words after the span are returned (a swap's reason).

`check_span` refuses, one sentence each: a start in the past (`now` and the minute being typed
are fine), an end that is not after the start, a span over 90 days.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.core.durations import format_duration, parse_duration
from bot.core.errors import BadInput
from bot.core.local_time import local_to_utc

MAX_SPAN = timedelta(days=90)
GRACE = timedelta(minutes=1)  # a start this far in the past is read as now (typed a minute ago)
_CLOCK = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TO = frozenset({"to", "until", "till", "-", "–"})
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Span:
    start: datetime  # aware
    end: datetime  # aware, exclusive


def usage(zone: ZoneInfo) -> str:
    return (
        "Say when as `now for 4h`, `until 18:00`, `tomorrow 09:00 for 8h` or "
        f"`2026-12-24T18:00 to 2026-12-26T09:00` (times in {zone.key} unless they carry an offset)."
    )


def parse_when(words: Sequence[str], now: datetime, zone: ZoneInfo) -> tuple[Span, list[str]]:
    """The span the first words describe, and the words after it; BadInput when they describe none."""
    cursor = _Cursor(words)
    first = cursor.peek()
    if first in ("until", "till", "to"):
        cursor.take()
        start = now
        end = _moment(cursor, zone, after=now, strictly=True)
    else:
        if first == "now":
            cursor.take()
            start = now
        elif first == "for":
            start = now
        else:
            found = _moment(cursor, zone, after=now - GRACE, strictly=False)
            if found is None:
                raise BadInput(usage(zone))
            start = found
        link = cursor.take()
        if link == "for":
            end = start + _duration(cursor.take_raw(), zone)
        elif link in _TO:
            end = _moment(cursor, zone, after=start, strictly=True)
        else:
            raise BadInput(usage(zone))
    if end is None:
        raise BadInput(usage(zone))
    return Span(start, end), cursor.rest()


def check_span(span: Span, now: datetime, zone: ZoneInfo) -> Span:
    """The span, its start moved to `now` if it lies within the minute before; BadInput otherwise
    when it starts in the past, ends before it starts or lasts over 90 days."""
    if span.start < now - GRACE:
        raise BadInput(f"That starts in the past ({local_text(span.start, zone)}); start `now` or later.")
    start = max(span.start, now)
    if span.end <= start:
        raise BadInput(
            f"The end ({local_text(span.end, zone)}) is not after the start ({local_text(start, zone)})."
        )
    if span.end - start > MAX_SPAN:
        raise BadInput(
            f"An override lasts at most 90 days; this one would last {format_duration(span.end - start)}."
        )
    return Span(start, span.end)


def local_text(at: datetime, zone: ZoneInfo) -> str:
    """`Thu Dec 24 18:00 PST`: for answers and for the fallback of Slack's date formatting."""
    return at.astimezone(zone).strftime("%a %b %d %Y %H:%M %Z")


def slack_date(at: datetime, zone: ZoneInfo) -> str:
    """A time Slack shows in each reader's own zone (`<!date^…>`), with the rotation's as fallback."""
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{local_text(at, zone)}>"


class _Cursor:
    def __init__(self, words: Sequence[str]) -> None:
        self.words = [w for w in words if w]
        self.i = 0

    def peek(self, ahead: int = 0) -> str | None:
        j = self.i + ahead
        return self.words[j].lower() if j < len(self.words) else None

    def take(self) -> str | None:
        word = self.peek()
        self.i += word is not None
        return word

    def take_raw(self) -> str | None:
        word = self.words[self.i] if self.i < len(self.words) else None
        self.i += word is not None
        return word

    def rest(self) -> list[str]:
        return self.words[self.i :]


def _duration(word: str | None, zone: ZoneInfo) -> timedelta:
    if word is None:
        raise BadInput(usage(zone))
    try:
        value = parse_duration(word)
    except ValueError:
        value = timedelta(0)
    if value <= timedelta(0):
        raise BadInput(f"`{word}` is not a duration like 4h, 90m or 2d.")
    return value


def _moment(cursor: _Cursor, zone: ZoneInfo, *, after: datetime, strictly: bool) -> datetime | None:
    """One point in time at the cursor, consumed only when it is one: `today|tomorrow HH:MM`, a
    date and time, a bare date, or `HH:MM` (its next occurrence after `after`)."""
    word = cursor.peek()
    if word is None:
        return None
    if word in ("today", "tomorrow"):
        clock = _clock(cursor.peek(1))
        if clock is None:
            return None
        cursor.take(), cursor.take()
        day = after.astimezone(zone).date() + (_DAY if word == "tomorrow" else timedelta(0))
        return local_to_utc(datetime.combine(day, clock), zone)
    clock = _clock(word)
    if clock is not None:
        cursor.take()
        return _next(clock, zone, after, strictly)
    if _DATE.fullmatch(word) and _clock(cursor.peek(1)) is not None:
        day, clock = date.fromisoformat(word), _clock(cursor.peek(1))
        assert clock is not None
        cursor.take(), cursor.take()
        return local_to_utc(datetime.combine(day, clock), zone)
    if not word[:1].isdigit():
        return None
    try:
        parsed = datetime.fromisoformat(cursor.words[cursor.i].upper())
    except ValueError:
        return None
    cursor.take()
    return local_to_utc(parsed, zone) if parsed.tzinfo is None else parsed


def _clock(word: str | None) -> time | None:
    found = _CLOCK.fullmatch(word or "")
    return time(int(found[1]), int(found[2])) if found else None


def _next(clock: time, zone: ZoneInfo, after: datetime, strictly: bool) -> datetime:
    """The first instant the zone's clock shows `clock` that is after `after` (or at it)."""
    day = after.astimezone(zone).date() - _DAY
    while True:
        at = local_to_utc(datetime.combine(day, clock), zone)
        if at > after or (at == after and not strictly):
            return at
        day += _DAY
