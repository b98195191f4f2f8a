"""The effective schedule: a rotation file's schedule with the overrides made from Slack on top.

Precedence, lowest first: the layers' rotation, the file's own `overrides:`, then the database's
overrides in the order they were made. Each override wins over everything below it for its span
[start, end) only: a file override that a database override covers partly keeps the parts outside
it (it may be split in two). The result is an ordinary `Rotation` whose overrides never overlap
within a layer, so `on_call`, `hands_over`, escalation steps, `/oncall`, calendars and post-mortems
all read one schedule through the same pure functions.

Database overrides naming a layer or a person the files no longer have (the files changed after the
override was made) are left out: paging a name nobody can resolve would page nobody. `layered`
returns them, so callers can say so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable
from datetime import datetime

from bot.core.rotations import Override, Rotation, Shift, on_call

# A window of shifts is walked one shift at a time; a 1-minute rotation over 12 weeks would be
# 120,960 shifts per layer. Past this many the listing stops (the caller says so).
MAX_SHIFTS = 4000


def layered(
    rotation: Rotation, extra: Iterable[Override], people: Collection[str] | None = None
) -> tuple[Rotation, list[Override]]:
    """`rotation` with `extra` (database overrides, oldest first) on top, and the overrides left out
    because their layer or person is unknown. A rotation without layers of its own (PagerDuty's)
    is returned as it is."""
    extra = list(extra)
    if not extra or rotation.source != "file":
        return rotation, [o for o in extra if rotation.source != "file"]
    usable = [o for o in extra if o.layer in rotation.layers and (people is None or o.who in people)]
    left_out = [o for o in extra if o not in usable]
    stack = list(rotation.overrides)
    for newer in usable:
        stack = [piece for older in stack for piece in _outside(older, newer)]
        stack.append(newer)
    return dataclasses.replace(rotation, overrides=tuple(stack)), left_out


def _outside(older: Override, newer: Override) -> list[Override]:
    """The parts of `older` that `newer` does not cover (all of it when the layers differ)."""
    if older.layer != newer.layer or older.end <= newer.start or newer.end <= older.start:
        return [older]
    parts = []
    if older.start < newer.start:
        parts.append(dataclasses.replace(older, end=newer.start))
    if newer.end < older.end:
        parts.append(dataclasses.replace(older, start=newer.end))
    return parts


def shifts_between(rotation: Rotation, layer: str, start: datetime, end: datetime) -> list[Shift]:
    """The shifts of `layer` that overlap [start, end), in order, each as `on_call` returns it (so
    the first may begin before `start` and the last end after `end`); at most MAX_SHIFTS."""
    shifts: list[Shift] = []
    at = start
    while at < end and len(shifts) < MAX_SHIFTS:
        shift = on_call(rotation, layer, at)
        shifts.append(shift)
        at = shift.end
    return shifts


def covered_people(rotation: Rotation, layer: str, start: datetime, end: datetime) -> list[str]:
    """Who holds `layer` at some moment of [start, end): the people an override there covers."""
    found: dict[str, None] = {}
    for shift in shifts_between(rotation, layer, start, end):
        found.setdefault(shift.person)
    return list(found)


def runs(shifts: Iterable[Shift]) -> list[Shift]:
    """Consecutive shifts of one person merged into one (same layer, same override or not):
    a stretch of duty as people think of it ([mike, mike, lisa] is two weeks of mike)."""
    merged: list[Shift] = []
    for shift in shifts:
        last = merged[-1] if merged else None
        if (
            last is not None
            and last.person == shift.person
            and last.override == shift.override
            and last.ref == shift.ref
            and last.end == shift.start
        ):
            merged[-1] = dataclasses.replace(last, end=shift.end)
        else:
            merged.append(shift)
    return merged
