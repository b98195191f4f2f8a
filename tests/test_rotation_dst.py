"""Handoffs across DST changes (issue 21): the clock-time rule, table cases in the style of
GoAlert's rotation tests (expected person and handoffs written out by hand), and properties that
hold for any rotation and instant.

The rule under test (bot/core/rotations.py): a shift that divides a day or is whole days hands off
at local wall-clock times `start + k*shift`; a time in a DST gap hands off when the gap ends, a
repeated time at its first occurrence; handoff 0 is the instant the file wrote. Other lengths, and
`handoff: elapsed`, are elapsed time from handoff 0.
"""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bot.core.durations import parse_duration
from bot.core.rotations import Rotation, on_call, upcoming

MEMBERS = ("ann", "bob", "cat")
H = timedelta(hours=1)
US = timedelta(microseconds=1)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def rota(tz: str, start: datetime, shift: timedelta, handoff: str = "clock") -> Rotation:
    rule = {"handoff_rule": handoff} if handoff != "clock" else {}
    return Rotation("r", tz, start, shift, {"primary": MEMBERS}, **rule)  # type: ignore[arg-type]


# --- table: zone, start (local), shift, query instant, person on call, shift start, shift end ---
# Chicago: spring forward 2017-03-12, 2020-03-08, 2021-03-14, 2027-03-14 (02:00 CST -> 03:00 CDT);
# fall back 2017-11-05, 2020-11-01, 2021-11-07, 2026-11-01 (02:00 CDT -> 01:00 CST).
# Lord Howe (30-minute DST): spring forward 2020-10-04 (02:00 +10:30 -> 02:30 +11);
# fall back 2021-04-04 (02:00 +11 -> 01:30 +10:30).
ZONE = {"CHI": "America/Chicago", "LHI": "Australia/Lord_Howe"}
TABLE = [
    # Hourly, handoffs at :30: 02:30 does not exist, so that shift starts at 03:00 CDT (30 min long).
    "CHI 2020-03-06T02:30  1h 2020-03-08T07:45Z     cat 2020-03-08T01:30-06:00 2020-03-08T03:00-05:00",
    "CHI 2020-03-06T02:30  1h 2020-03-08T08:10Z     ann 2020-03-08T03:00-05:00 2020-03-08T03:30-05:00",
    # Hourly on the hour: 02:00 and 03:00 both hand off at 03:00 CDT; shift 48 (ann's) is empty, skipped.
    "CHI 2020-03-06T02:00  1h 2020-03-08T07:59Z     cat 2020-03-08T01:00-06:00 2020-03-08T03:00-05:00",
    "CHI 2020-03-06T02:00  1h 2020-03-08T08:00Z     bob 2020-03-08T03:00-05:00 2020-03-08T04:00-05:00",
    # Hourly across fall back: 01:30 hands off at its first occurrence; that shift lasts 2 hours.
    "CHI 2020-07-06T02:30  1h 2020-11-01T07:45Z     cat 2020-11-01T01:30-05:00 2020-11-01T02:30-06:00",
    "CHI 2020-07-06T02:00  1h 2020-11-01T07:30Z     cat 2020-11-01T01:00-05:00 2020-11-01T02:00-06:00",
    # 3h from midnight: 00:00-03:00 lasts 2 h in spring, 4 h in autumn.
    "CHI 2017-03-01T00:00  3h 2017-03-12T07:00Z     bob 2017-03-12T00:00-06:00 2017-03-12T03:00-05:00",
    "CHI 2017-03-01T00:00  3h 2017-11-05T07:00Z     ann 2017-11-05T00:00-05:00 2017-11-05T03:00-06:00",
    # 8h at 10:00/18:00/02:00 (GoAlert's legacy-advance case); 02:00 on spring-forward night is 03:00.
    "CHI 2018-11-21T10:00  8h 2021-03-10T15:00:01Z  cat 2021-03-10T02:00-06:00 2021-03-10T10:00-06:00",
    "CHI 2018-11-21T10:00  8h 2021-03-14T07:59Z     bob 2021-03-13T18:00-06:00 2021-03-14T03:00-05:00",
    "CHI 2018-11-21T10:00  8h 2021-03-14T08:30Z     cat 2021-03-14T03:00-05:00 2021-03-14T10:00-05:00",
    "CHI 2018-11-21T10:00  8h 2021-11-07T07:30Z     bob 2021-11-06T18:00-05:00 2021-11-07T02:00-06:00",
    # 12h follow-the-sun at 08:00/20:00: the night shift spanning the change is 13 h, then 11 h.
    "CHI 2026-10-26T08:00 12h 2026-11-01T12:00Z     cat 2026-10-31T20:00-05:00 2026-11-01T08:00-06:00",
    "CHI 2026-10-26T08:00 12h 2027-03-14T10:00Z     bob 2027-03-13T20:00-06:00 2027-03-14T08:00-05:00",
    # Daily at 02:30: on the spring-forward day at 03:00 CDT; daily at 01:30: first occurrence, 25 h.
    "CHI 2020-03-06T02:30  1d 2020-03-08T07:59:59Z  bob 2020-03-07T02:30-06:00 2020-03-08T03:00-05:00",
    "CHI 2020-03-06T02:30  1d 2020-03-08T08:15Z     cat 2020-03-08T03:00-05:00 2020-03-09T02:30-05:00",
    "CHI 2020-10-30T01:30  1d 2020-11-01T07:15Z     cat 2020-11-01T01:30-05:00 2020-11-02T01:30-06:00",
    # Weekly at 08:00: 167 h and 169 h; before the start the cycle counts backwards (shift -1 is cat).
    "CHI 2017-03-10T08:00  1w 2017-03-12T12:00Z     ann 2017-03-10T08:00-06:00 2017-03-17T08:00-05:00",
    "CHI 2017-11-04T08:00  1w 2017-11-10T12:00Z     ann 2017-11-04T08:00-05:00 2017-11-11T08:00-06:00",
    "CHI 2017-11-04T08:00  1w 2017-11-01T12:00Z     cat 2017-10-28T08:00-05:00 2017-11-04T08:00-05:00",
    # Lord Howe hourly: 01:30 first occurrence, the shift lasts 1 h 30 m.
    "LHI 2021-04-03T02:30  1h 2021-04-03T15:15Z     cat 2021-04-04T01:30+11:00 2021-04-04T02:30+10:30",
    # Lord Howe daily at 02:00 after the fold (24 h 30 m); daily at 02:15 in the gap: 02:30 +11.
    "LHI 2021-04-01T02:00  1d 2021-04-03T15:10Z     cat 2021-04-03T02:00+11:00 2021-04-04T02:00+10:30",
    "LHI 2020-10-02T02:15  1d 2020-10-03T15:29Z     bob 2020-10-03T02:15+10:30 2020-10-04T02:30+11:00",
    "LHI 2020-10-02T02:15  1d 2020-10-03T15:40Z     cat 2020-10-04T02:30+11:00 2020-10-05T02:15+11:00",
    # Lord Howe 30m: 02:00 and 02:30 both hand off at 02:30 +11 (bob's shift 148 is empty).
    "LHI 2020-10-01T00:00 30m 2020-10-03T15:29Z     ann 2020-10-04T01:30+10:30 2020-10-04T02:30+11:00",
    "LHI 2020-10-01T00:00 30m 2020-10-03T15:30Z     cat 2020-10-04T02:30+11:00 2020-10-04T03:00+11:00",
    "LHI 2021-04-01T00:00 30m 2021-04-03T15:10Z     ann 2021-04-04T01:30+11:00 2021-04-04T02:00+10:30",
]


@pytest.mark.parametrize("row", TABLE)
def test_goalert_style_transition_cases(row: str) -> None:
    zone, start, shift, query, person, begins, ends = row.split()
    rotation = rota(ZONE[zone], datetime.fromisoformat(start), parse_duration(shift))
    shift_now = on_call(rotation, "primary", at(query))
    assert (shift_now.person, shift_now.start, shift_now.end) == (person, at(begins), at(ends))


@pytest.mark.parametrize(
    ("shift", "handoff", "person", "begins", "ends"),
    [
        # 36h has no fixed local time: elapsed from 08:00 CDT (13:00 UTC), whatever the clocks do.
        (36 * H, "clock", "cat", "2026-11-02T19:00-06:00", "2026-11-04T07:00-06:00"),
        # `handoff: elapsed` keeps exact 12-hour shifts: 07:00/19:00 CST after the change.
        (12 * H, "elapsed", "bob", "2026-11-03T07:00-06:00", "2026-11-03T19:00-06:00"),
    ],
)
def test_elapsed_time_shifts(shift: timedelta, handoff: str, person: str, begins: str, ends: str) -> None:
    rotation = rota(ZONE["CHI"], datetime(2026, 10, 26, 8), shift, handoff)
    shift_now = on_call(rotation, "primary", at("2026-11-03T13:30Z"))
    assert (shift_now.person, shift_now.start, shift_now.end) == (person, at(begins), at(ends))
    assert shift_now.end - shift_now.start == shift


# --- a start written in the repeated hour (fold=1, from an explicit offset) --------------------
SECOND_0130 = datetime.fromisoformat("2026-11-01T01:30-05:00").astimezone(ZoneInfo("America/New_York"))


@pytest.mark.parametrize("shift", [15 * timedelta(minutes=1), H, 12 * H, 24 * H, 168 * H, 36 * H])
def test_handoff_zero_is_the_instant_written_for_every_shift_length(shift: timedelta) -> None:
    start = SECOND_0130.replace(tzinfo=None)  # naive, fold=1: the catalog's reading of the offset
    assert start.fold == 1
    rotation = rota("America/New_York", start, shift)
    assert rotation.handoff(0) == at("2026-11-01T06:30Z")
    assert on_call(rotation, "primary", at("2026-11-01T06:29Z")).end == at("2026-11-01T06:30Z")
    assert on_call(rotation, "primary", at("2026-11-01T06:30Z")).person == "ann"


def test_later_handoffs_after_a_second_occurrence_start() -> None:
    start = SECOND_0130.replace(tzinfo=None)
    daily = rota("America/New_York", start, 24 * H)
    # Later days: 01:30 local; a later fold day (2027-11-07) uses the first 01:30 (EDT) as usual.
    assert daily.handoff(1) == at("2026-11-02T01:30-05:00")
    assert daily.handoff(371) == at("2027-11-07T01:30-04:00")
    assert daily.handoff(-1) == at("2026-10-31T01:30-04:00")
    # 15-minute shifts: 01:45 and 02:00 follow the written 01:30 EST, never fall back before it.
    quarter = rota("America/New_York", start, 15 * timedelta(minutes=1))
    assert [quarter.handoff(k) for k in (-1, 0, 1, 2)] == [
        at("2026-11-01T01:15-04:00"),
        at("2026-11-01T01:30-05:00"),
        at("2026-11-01T01:45-05:00"),
        at("2026-11-01T02:00-05:00"),
    ]


def test_a_start_in_the_gap_begins_when_the_gap_ends() -> None:
    rotation = rota(ZONE["CHI"], datetime(2027, 3, 14, 2, 30), 12 * H)
    assert rotation.handoff(0) == at("2027-03-14T03:00-05:00")
    assert rotation.handoff(1) == at("2027-03-14T14:30-05:00")
    assert rotation.handoff(-1) == at("2027-03-13T14:30-06:00")


def test_an_empty_shift_is_skipped_and_the_cycle_keeps_its_local_times() -> None:
    # Hourly on the hour in Chicago, 2020-03-08: 02:00 and 03:00 both hand off at 03:00 CDT.
    rotation = rota(ZONE["CHI"], datetime(2020, 3, 6, 2), H)
    assert rotation.handoff(48) == rotation.handoff(49) == at("2020-03-08T03:00-05:00")
    around = upcoming(rotation, "primary", at("2020-03-08T07:30Z"), 3)
    assert [(s.person, s.start, s.end) for s in around] == [
        ("cat", at("2020-03-08T01:00-06:00"), at("2020-03-08T03:00-05:00")),
        ("bob", at("2020-03-08T03:00-05:00"), at("2020-03-08T04:00-05:00")),
        ("cat", at("2020-03-08T04:00-05:00"), at("2020-03-08T05:00-05:00")),
    ]
    # The next day ann has 02:00 again: the cycle is tied to local time, not to elapsed turns.
    assert on_call(rotation, "primary", at("2020-03-09T02:30-05:00")).person == "ann"


def test_finding_the_shift_does_not_walk_every_shift_since_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    rotation = rota("Australia/Lord_Howe", datetime(2019, 1, 1), timedelta(minutes=1))
    calls = 0
    handoff = Rotation.handoff

    def counted(self: Rotation, k: int) -> datetime:
        nonlocal calls
        calls += 1
        return handoff(self, k)

    monkeypatch.setattr(Rotation, "handoff", counted)
    # Eleven years of one-minute shifts, queried inside the repeated half hour of a fall back.
    shift = on_call(rotation, "primary", at("2030-04-06T15:10Z"))
    assert shift.start <= at("2030-04-06T15:10Z") < shift.end
    assert calls <= 40, f"{calls} handoffs computed for one query"


# --- properties ---------------------------------------------------------------------------------
ZONES = ["America/Chicago", "America/New_York", "Australia/Lord_Howe", "Europe/London", "Asia/Kolkata"]
CLOCK = [
    timedelta(minutes=30),
    H,
    2 * H,
    3 * H,
    4 * H,
    6 * H,
    8 * H,
    12 * H,
    24 * H,
    48 * H,
    168 * H,
    336 * H,
]
ELAPSED = [5 * H, 7 * H, 10 * H, 36 * H, timedelta(minutes=50)]
TIMES = [time(0), time(1, 30), time(2), time(2, 15), time(2, 30), time(8), time(17, 45), time(23, 30)]


@st.composite
def rotations(draw: st.DrawFn) -> Rotation:
    tz = draw(st.sampled_from(ZONES))
    zone = ZoneInfo(tz)
    day = draw(st.dates(min_value=datetime(2019, 1, 1).date(), max_value=datetime(2030, 12, 31).date()))
    start = datetime.combine(day, draw(st.sampled_from(TIMES)))
    how = draw(st.sampled_from(["any day", "DST day", "written with an offset"]))
    if how != "any day" and TRANSITIONS[tz]:
        change = draw(st.sampled_from(TRANSITIONS[tz]))
        if how == "DST day":  # a wall time on the day of a change: in the gap, the fold, or near
            start = datetime.combine(change.astimezone(zone).date(), start.time())
        else:  # an instant in the hour after a change, as the catalog reads `start` with an offset
            minutes = timedelta(minutes=draw(st.integers(0, 60)))
            start = (change + minutes).astimezone(zone).replace(tzinfo=None)  # fold=1 if repeated
    shift = draw(st.sampled_from(CLOCK + ELAPSED))
    handoff = draw(st.sampled_from(["clock", "clock", "elapsed"]))
    members = tuple(draw(st.lists(st.sampled_from(MEMBERS), min_size=1, max_size=4)))
    return Rotation("r", tz, start, shift, {"primary": members}, handoff_rule=handoff)  # type: ignore[arg-type]


instants = st.datetimes(
    min_value=datetime(2018, 6, 1), max_value=datetime(2031, 6, 1), timezones=st.just(UTC)
)


def transitions(tz: str) -> list[datetime]:
    """The zone's offset changes in 2019-2030 (to the minute), so queries can be drawn near them."""
    zone, found = ZoneInfo(tz), []
    day = datetime(2019, 1, 1, tzinfo=UTC)
    while day.year < 2031:
        if day.astimezone(zone).utcoffset() != (day + 24 * H).astimezone(zone).utcoffset():
            lo, hi = day, day + 24 * H
            while hi - lo > timedelta(minutes=1):
                mid = lo + (hi - lo) / 2
                same = mid.astimezone(zone).utcoffset() == lo.astimezone(zone).utcoffset()
                lo, hi = (mid, hi) if same else (lo, mid)
            found.append(hi)
        day += 24 * H
    return found


TRANSITIONS = {tz: transitions(tz) for tz in ZONES}


@st.composite
def queries(draw: st.DrawFn) -> tuple[Rotation, datetime]:
    """A rotation and an instant: anywhere, or within a few shifts of one of the zone's DST
    changes, or of the rotation's start (which is often on the day of a change itself)."""
    rotation = draw(rotations())
    assert rotation.shift is not None and rotation.start is not None
    where = draw(st.sampled_from(["anywhere", "transition", "start"]))
    if where == "anywhere" or (where == "transition" and not TRANSITIONS[rotation.timezone]):
        return rotation, draw(instants)
    if where == "transition":
        around = draw(st.sampled_from(TRANSITIONS[rotation.timezone]))
    else:
        around = rotation.start.replace(tzinfo=ZoneInfo(rotation.timezone)).astimezone(UTC)
    spread = int((3 * rotation.shift + 26 * H).total_seconds())
    return rotation, around + timedelta(seconds=draw(st.integers(-spread, spread)))


def wall(u: datetime, zone: ZoneInfo) -> datetime:
    return u.astimezone(zone).replace(tzinfo=None)


def earliest_showing(local: datetime, zone: ZoneInfo, after: datetime | None = None) -> datetime:
    """Oracle, from the definition: the earliest instant (not before `after`) at which the zone's
    clock shows `local` or later. Occurrences come from the offsets around it; gaps by bisection."""
    probe = local.replace(tzinfo=UTC)
    offsets = {probe.astimezone(zone).utcoffset(), (probe - 2 * H).astimezone(zone).utcoffset()}
    offsets |= {(probe + d).astimezone(zone).utcoffset() for d in (-26 * H, 26 * H)}
    occurrences = sorted(
        u
        for o in offsets
        if o is not None and wall(u := probe - o, zone) == local and (after is None or u >= after)
    )
    if occurrences:
        return occurrences[0]
    lo, hi = (
        probe - max(o for o in offsets if o is not None),
        probe - min(o for o in offsets if o is not None),
    )
    while hi - lo > timedelta(seconds=1):  # gap: wall(lo) < local <= wall(hi)
        mid = lo + (hi - lo) / 2
        lo, hi = (mid, hi) if wall(mid, zone) < local else (lo, mid)
    return hi.replace(microsecond=0)  # transitions are on whole seconds


def clock_rule(rotation: Rotation) -> bool:
    assert rotation.shift is not None
    day = timedelta(days=1)
    return rotation.handoff_rule == "clock" and (
        day % rotation.shift == timedelta(0) or rotation.shift % day == timedelta(0)
    )


def oracle_handoff(rotation: Rotation, k: int) -> datetime:
    assert rotation.start is not None and rotation.shift is not None
    zone = ZoneInfo(rotation.timezone)
    first = rotation.start.replace(tzinfo=zone).astimezone(UTC)
    if wall(first, zone) != rotation.start.replace(fold=0):  # a start in a gap
        first = earliest_showing(rotation.start, zone)
    if k == 0:
        return first
    if not clock_rule(rotation):
        return first + k * rotation.shift
    return earliest_showing(rotation.start + k * rotation.shift, zone, first if k > 0 else None)


def oracle_index(rotation: Rotation, t: datetime) -> int:
    assert rotation.start is not None and rotation.shift is not None
    k = (wall(t, ZoneInfo(rotation.timezone)) - rotation.start) // rotation.shift
    return max(i for i in range(k - 4, k + 5) if oracle_handoff(rotation, i) <= t)


@given(queries())
@settings(max_examples=150, deadline=None)
def test_the_person_changes_exactly_at_handoffs(query: tuple[Rotation, datetime]) -> None:
    rotation, t = query
    shift = on_call(rotation, "primary", t)
    k = oracle_index(rotation, t)
    members = rotation.layers["primary"]
    assert shift.person == members[k % len(members)]
    assert (shift.start, shift.end) == (oracle_handoff(rotation, k), oracle_handoff(rotation, k + 1))
    for inside in (shift.start, shift.start + (shift.end - shift.start) / 2, shift.end - US):
        assert on_call(rotation, "primary", inside).person == shift.person


@given(queries())
@settings(max_examples=150, deadline=None)
def test_clock_handoffs_are_at_the_configured_local_time_or_the_end_of_a_gap(
    query: tuple[Rotation, datetime],
) -> None:
    rotation, t = query
    assume(clock_rule(rotation))
    assert rotation.start is not None and rotation.shift is not None
    zone = ZoneInfo(rotation.timezone)
    shift = on_call(rotation, "primary", t)
    for h in (shift.start, shift.end):
        local = wall(h, zone)
        if (local - rotation.start) % rotation.shift == timedelta(0):
            # The configured time: its first occurrence, except after a start written in the second.
            first = h.astimezone(zone).fold == 0
            assert first or (rotation.start.fold == 1 and h >= rotation.handoff(0))
        else:
            # The end of a DST gap that swallowed a configured time.
            before = wall(h - US, zone)
            assert h.astimezone(zone).utcoffset() != (h - US).astimezone(zone).utcoffset()
            skipped = before + US + (rotation.start - before - US) % rotation.shift
            assert before < skipped < local, (before, skipped, local)


@given(queries())
@settings(max_examples=150, deadline=None)
def test_shifts_tile_time_and_differ_from_nominal_only_by_the_dst_change(
    query: tuple[Rotation, datetime],
) -> None:
    rotation, t = query
    assert rotation.shift is not None
    zone = ZoneInfo(rotation.timezone)
    before, now, after = upcoming(rotation, "primary", on_call(rotation, "primary", t).start - US, 3)
    assert before.end == now.start and now.end == after.start and now.start <= t < now.end
    for shift in (before, now, after):
        assert shift.end > shift.start
        length = shift.end - shift.start
        offsets = [
            u.astimezone(zone).utcoffset() for u in (shift.start - US, shift.start, shift.end - US, shift.end)
        ]
        change = max(o for o in offsets if o is not None) - min(o for o in offsets if o is not None)
        if not clock_rule(rotation):
            assert length == rotation.shift
        assert abs(length - rotation.shift) <= change
