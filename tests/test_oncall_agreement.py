"""Issue 19's property: for any rotation file (any zone, start, shift length and handoff rule, near
DST changes too), any file overrides and any overrides made from Slack, "who is on call at t" is
the same in the layered core, in the calendar export (parsed back with `icalendar`) and in
`/oncall`'s text."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from icalendar import Calendar

from bot.catalog.rotations import Catalog
from bot.core.rotations import Person, Rotation, on_call
from bot.core.schedule import layered
from bot.service.oncall import describe
from bot.service.oncall_calendar import ics, rows
from tests.test_oncall_core import override_sets
from tests.test_rotation_dst import queries

PEOPLE = {name: Person(name) for name in ("ann", "bob", "cat", "dan", "eve", "fay")}
LINE = re.compile(r"• primary: (\S+)( \(override\))?")


def read_back(body: bytes) -> list[tuple[datetime, datetime, str]]:
    return [
        (e.decoded("dtstart"), e.decoded("dtend"), str(e["summary"]))
        for e in Calendar.from_ical(body).walk("VEVENT")
        if str(e["summary"]).startswith("r primary: ")
    ]


def from_calendar(events: list[tuple[datetime, datetime, str]], t: datetime) -> tuple[str, bool]:
    found = [summary for start, end, summary in events if start <= t < end]
    assert len(found) == 1, found
    summary = found[0].removeprefix("r primary: ")
    return summary.removesuffix(" (override)"), summary.endswith(" (override)")


def from_oncall_text(catalog: Catalog, rotation: Rotation, t: datetime) -> tuple[str, bool]:
    text = describe(catalog, "r", t, slack=False, rotations={"r": rotation})
    match = LINE.search(text)
    assert match, text
    return match.group(1), bool(match.group(2))


@settings(max_examples=120, deadline=None)
@given(st.data())
def test_core_calendar_and_oncall_agree(data: st.DataObject) -> None:
    base, t = data.draw(queries())
    file_overrides, database = data.draw(override_sets(t))
    rotation = Rotation(
        "r", base.timezone, base.start, base.shift, base.layers, tuple(file_overrides),
        handoff_rule=base.handoff_rule,
    )  # fmt: skip
    effective, _ = layered(rotation, database, PEOPLE)
    catalog = Catalog(PEOPLE, {"r": rotation}, {}, [])
    window = list(rows({"r": effective}, t - timedelta(hours=30), t + timedelta(hours=30)))
    events = read_back(ics(catalog, window, "r", t))
    probes = [t, *(o.start for o in database), *(s.shift.start for s in window[:12])]
    for probe in probes:
        if not t - timedelta(hours=30) <= probe < t + timedelta(hours=30):
            continue
        shift = on_call(effective, "primary", probe)
        expected = (shift.person, shift.override)
        assert from_calendar(events, probe) == expected, probe
        assert from_oncall_text(catalog, effective, probe) == expected, probe
