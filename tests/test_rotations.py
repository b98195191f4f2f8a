from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.rotations import Override, Rotation, local_to_utc, on_call, on_call_all, upcoming
from tests.test_rotation_dst import oracle_index

ZONES = ["America/Los_Angeles", "Europe/Berlin", "Australia/Sydney", "Asia/Kolkata", "UTC"]
CALENDAR_SHIFTS = [timedelta(days=1), timedelta(days=3), timedelta(weeks=1), timedelta(weeks=2)]
# Sub-day lengths that divide a day keep their local handoff times too (issue 21).
SUB_DAY_SHIFTS = [timedelta(hours=12), timedelta(hours=8), timedelta(minutes=90)]
# Lengths with no fixed local time stay elapsed time.
ELAPSED_SHIFTS = [timedelta(hours=36), timedelta(hours=5), timedelta(hours=10)]
# Handoff times that fall into DST gaps/folds somewhere (02:30, 01:30, 03:00) plus ordinary ones.
HANDOFF_TIMES = [time(9), time(0), time(2, 30), time(1, 30), time(3), time(23, 59), time(17, 45)]
NAMES = ["alex", "sarah", "david", "mike", "lisa"]
US = timedelta(microseconds=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def weekly(tz: str, start: datetime, members: tuple[str, ...] = ("alex", "sarah", "david")) -> Rotation:
    return Rotation("platform", tz, start, timedelta(weeks=1), {"primary": members})


@st.composite
def rotations(draw: st.DrawFn, shifts: list[timedelta] | None = None) -> Rotation:
    tz = draw(st.sampled_from(ZONES))
    day = draw(st.dates(min_value=datetime(2019, 1, 1).date(), max_value=datetime(2030, 12, 31).date()))
    start = datetime.combine(day, draw(st.sampled_from(HANDOFF_TIMES)))
    shift = draw(st.sampled_from(shifts or CALENDAR_SHIFTS + SUB_DAY_SHIFTS + ELAPSED_SHIFTS))
    layers = {
        layer: tuple(draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=5)))
        for layer in draw(
            st.lists(st.sampled_from(["primary", "secondary", "manager"]), min_size=1, unique=True)
        )
    }
    return Rotation("r", tz, start, shift, layers)


instants = st.datetimes(
    min_value=datetime(2018, 1, 1), max_value=datetime(2032, 1, 1), timezones=st.just(UTC)
)


def expected_shift_index(rotation: Rotation, at: datetime) -> int:
    """Independent oracle (tests/test_rotation_dst.py): handoffs from the definition of the rule."""
    return oracle_index(rotation, at)


# --- properties -------------------------------------------------------------------------------


@given(rotations(), instants)
def test_exactly_one_person_per_layer_and_it_is_the_scheduled_one(rotation: Rotation, at: datetime) -> None:
    shifts = on_call_all(rotation, at)
    assert list(shifts) == list(rotation.layers)
    k = expected_shift_index(rotation, at)
    for layer, shift in shifts.items():
        members = rotation.layers[layer]
        assert shift.start <= at < shift.end
        assert shift.person == members[k % len(members)]
        assert shift.layer == layer and not shift.override


@given(rotations(), instants)
def test_consecutive_shifts_tile_time(rotation: Rotation, at: datetime) -> None:
    layer = next(iter(rotation.layers))
    shift = on_call(rotation, layer, at)
    after = on_call(rotation, layer, shift.end)
    before = on_call(rotation, layer, shift.start - US)
    assert after.start == shift.end
    assert before.end == shift.start
    assert on_call(rotation, layer, shift.end - US) == shift


@given(rotations(shifts=CALENDAR_SHIFTS), instants)
def test_whole_day_handoffs_happen_at_the_local_wall_clock_time(rotation: Rotation, at: datetime) -> None:
    assert rotation.start is not None and rotation.shift is not None
    zone = ZoneInfo(rotation.timezone)
    shift = on_call(rotation, next(iter(rotation.layers)), at)
    for moment in (shift.start, shift.end):
        local = moment.astimezone(zone)
        days = (local.date() - rotation.start.date()).days
        wanted = datetime.combine(local.date(), rotation.start.time())
        if local_to_utc(wanted, zone).astimezone(zone).replace(tzinfo=None) == wanted:
            # The configured time exists that day: the handoff is exactly then, on a shift boundary.
            assert local.replace(tzinfo=None) == wanted
            assert timedelta(days=days) % rotation.shift == timedelta(0)
        else:
            # DST gap: the handoff is when the clock jumps, the earliest local time after `wanted`.
            assert moment == local_to_utc(wanted, zone)
            assert moment.astimezone(zone).utcoffset() != (moment - US).astimezone(zone).utcoffset()
    # A shift lasts its nominal length give or take the DST hour.
    assert abs((shift.end - shift.start) - rotation.shift) <= timedelta(hours=1)


@given(rotations(shifts=ELAPSED_SHIFTS), instants)
def test_lengths_with_no_fixed_local_time_are_elapsed_time(rotation: Rotation, at: datetime) -> None:
    shift = on_call(rotation, next(iter(rotation.layers)), at)
    assert shift.end - shift.start == rotation.shift


@st.composite
def rotations_with_overrides(draw: st.DrawFn) -> tuple[Rotation, Rotation]:
    base = draw(rotations())
    overrides = []
    for layer in base.layers:
        points = sorted(draw(st.lists(instants, min_size=0, max_size=8, unique=True)))
        for start, end in zip(points[::2], points[1::2], strict=False):
            overrides.append(Override(layer, draw(st.sampled_from(NAMES)), start, end))
    with_overrides = Rotation(base.name, base.timezone, base.start, base.shift, base.layers, tuple(overrides))
    return base, with_overrides


@given(rotations_with_overrides(), instants)
@settings(max_examples=300)
def test_overrides_win_inside_their_window_only(pair: tuple[Rotation, Rotation], at: datetime) -> None:
    base, rotation = pair
    for layer in rotation.layers:
        shift = on_call(rotation, layer, at)
        inside = [o for o in rotation.overrides if o.layer == layer and o.start <= at < o.end]
        assert shift.start <= at < shift.end
        if inside:
            (o,) = inside
            assert (shift.person, shift.start, shift.end, shift.override) == (o.who, o.start, o.end, True)
        else:
            normal = on_call(base, layer, at)
            assert shift.person == normal.person and not shift.override
            assert normal.start <= shift.start and shift.end <= normal.end
            # Clipped exactly to the overrides around it: none of them touches the returned span.
            assert not any(
                o.layer == layer and o.start < shift.end and shift.start < o.end for o in rotation.overrides
            )
        # Tiling holds with overrides too.
        assert on_call(rotation, layer, shift.end).start == shift.end
        assert on_call(rotation, layer, shift.start - US).end == shift.start


# --- DST and calendar examples with hand-computed instants ------------------------------------


@pytest.mark.parametrize(
    ("tz", "start", "at", "expected_start", "expected_end", "hours"),
    [
        # Los Angeles: clocks go back 2026-11-01, forward 2027-03-14.
        (
            "America/Los_Angeles",
            datetime(2026, 10, 26, 9),
            utc(2026, 10, 30),
            utc(2026, 10, 26, 16),
            utc(2026, 11, 2, 17),
            169,
        ),
        (
            "America/Los_Angeles",
            datetime(2026, 10, 26, 9),
            utc(2027, 3, 10),
            utc(2027, 3, 8, 17),
            utc(2027, 3, 15, 16),
            167,
        ),
        # Berlin: back 2026-10-25.
        (
            "Europe/Berlin",
            datetime(2026, 10, 19, 9),
            utc(2026, 10, 22),
            utc(2026, 10, 19, 7),
            utc(2026, 10, 26, 8),
            169,
        ),
        # Sydney (southern hemisphere): back 2026-04-05, forward 2026-10-04.
        (
            "Australia/Sydney",
            datetime(2026, 3, 30, 9),
            utc(2026, 4, 1),
            utc(2026, 3, 29, 22),
            utc(2026, 4, 5, 23),
            169,
        ),
        (
            "Australia/Sydney",
            datetime(2026, 3, 30, 9),
            utc(2026, 10, 1),
            utc(2026, 9, 27, 23),
            utc(2026, 10, 4, 22),
            167,
        ),
        # Kolkata: no DST, always 168 h; 09:00 IST is 03:30 UTC.
        (
            "Asia/Kolkata",
            datetime(2026, 3, 30, 9),
            utc(2026, 10, 30),
            utc(2026, 10, 26, 3, 30),
            utc(2026, 11, 2, 3, 30),
            168,
        ),
    ],
)
def test_weekly_handoff_stays_at_nine_local_across_dst(
    tz: str, start: datetime, at: datetime, expected_start: datetime, expected_end: datetime, hours: int
) -> None:
    shift = on_call(weekly(tz, start), "primary", at)
    assert (shift.start, shift.end) == (expected_start, expected_end)
    assert shift.end - shift.start == timedelta(hours=hours)


def test_year_end_and_times_before_start_wrap_around() -> None:
    rotation = weekly("America/Los_Angeles", datetime(2026, 11, 2, 9))  # alex, sarah, david
    new_year = on_call(rotation, "primary", utc(2027, 1, 1))
    assert (new_year.start, new_year.end) == (utc(2026, 12, 28, 17), utc(2027, 1, 4, 17))
    assert new_year.person == "david"  # 2026-12-28 is shift 8, and 8 % 3 == 2
    assert on_call(rotation, "primary", utc(2026, 10, 30)).person == "david"  # shift -1
    assert on_call(rotation, "primary", utc(2026, 10, 20)).person == "sarah"  # shift -2
    assert (
        on_call(rotation, "primary", utc(2025, 12, 31)).start.astimezone(ZoneInfo("America/Los_Angeles")).hour
        == 9
    )


def test_handoff_in_a_dst_gap_happens_when_the_clock_jumps() -> None:
    # 02:30 does not exist in Los Angeles on 2027-03-14: the handoff is at 03:00 PDT (10:00 UTC),
    # when the clocks jump (issue 21; it used to be 02:30 PST = 03:30 PDT).
    rotation = Rotation(
        "r", "America/Los_Angeles", datetime(2027, 3, 1, 2, 30), timedelta(days=1), {"p": ("a", "b")}
    )
    gap_day = on_call(rotation, "p", utc(2027, 3, 14, 12))
    assert gap_day.start == utc(2027, 3, 14, 10)
    assert gap_day.end == utc(2027, 3, 15, 9, 30)  # 02:30 PDT the next day: a 23.5-hour shift
    assert on_call(rotation, "p", utc(2027, 3, 14, 9, 59)).end == gap_day.start


def test_handoff_in_a_dst_fold_uses_the_first_occurrence() -> None:
    # 01:30 happens twice in Los Angeles on 2026-11-01; fold=0 is the first (PDT, 08:30 UTC).
    rotation = Rotation(
        "r", "America/Los_Angeles", datetime(2026, 10, 1, 1, 30), timedelta(days=1), {"p": ("a",)}
    )
    shift = on_call(rotation, "p", utc(2026, 11, 1, 9))
    assert shift.start == utc(2026, 11, 1, 8, 30)
    assert shift.end == utc(2026, 11, 2, 9, 30)  # 25 hours


def test_twelve_hour_shifts_keep_their_local_handoff_times() -> None:
    # 08:00 CDT before the change, 08:00 CST after it (issue 21); `elapsed` keeps exact 12 hours.
    clock = Rotation(
        "r", "America/Chicago", datetime(2026, 10, 30, 8), timedelta(hours=12), {"p": ("a", "b")}
    )
    shift = on_call(clock, "p", utc(2026, 11, 3, 15))
    assert shift.end - shift.start == timedelta(hours=12)
    assert shift.start.astimezone(ZoneInfo("America/Chicago")).hour == 8
    elapsed = Rotation(
        "r",
        "America/Chicago",
        datetime(2026, 10, 30, 8),
        timedelta(hours=12),
        {"p": ("a", "b")},
        handoff_rule="elapsed",
    )
    shift = on_call(elapsed, "p", utc(2026, 11, 3, 15))
    assert shift.end - shift.start == timedelta(hours=12)
    assert shift.start.astimezone(ZoneInfo("America/Chicago")).hour == 7  # was 08:00 CDT, now 07:00 CST


def test_override_clips_the_normal_shift_around_it() -> None:
    rotation = Rotation(
        "platform",
        "America/Los_Angeles",
        datetime(2026, 11, 2, 9),
        timedelta(weeks=1),
        {"primary": ("alex", "sarah", "david", "alex")},
        (Override("primary", "david", utc(2026, 11, 24, 17), utc(2026, 11, 25, 17)),),
    )
    before, during, after = upcoming(rotation, "primary", utc(2026, 11, 23, 18), 3)
    assert (before.person, before.start, before.end) == ("alex", utc(2026, 11, 23, 17), utc(2026, 11, 24, 17))
    assert (during.person, during.override) == ("david", True)
    assert (after.person, after.start, after.end) == ("alex", utc(2026, 11, 25, 17), utc(2026, 11, 30, 17))


def test_invalid_rotations_and_queries_are_refused() -> None:
    with pytest.raises(ValueError, match="ends before it starts"):
        Override("p", "a", utc(2026, 1, 2), utc(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        Override("p", "a", datetime(2026, 1, 1), utc(2026, 1, 2))
    with pytest.raises(ValueError, match="overlap"):
        first, second = (
            Override("p", "a", utc(2026, 1, 1), utc(2026, 1, 3)),
            Override("p", "a", utc(2026, 1, 2), utc(2026, 1, 4)),
        )
        Rotation("r", "UTC", datetime(2026, 1, 1), timedelta(days=1), {"p": ("a",)}, (first, second))
    with pytest.raises(ValueError, match="unknown layer"):
        Rotation(
            "r",
            "UTC",
            datetime(2026, 1, 1),
            timedelta(days=1),
            {"p": ("a",)},
            (Override("q", "a", utc(2026, 1, 1), utc(2026, 1, 2)),),
        )
    rotation = Rotation("r", "UTC", datetime(2026, 1, 1), timedelta(days=1), {"p": ("a",)})
    with pytest.raises(ValueError, match="timezone-aware"):
        on_call(rotation, "p", datetime(2026, 1, 1))
    with pytest.raises(KeyError):
        on_call(rotation, "nope", utc(2026, 1, 1))


def test_pagerduty_rotation_has_no_schedule_of_its_own() -> None:
    rotation = Rotation("r", "UTC", None, None, {}, source="pagerduty")
    assert on_call_all(rotation, utc(2026, 1, 1)) == {}
    with pytest.raises(ValueError, match="no schedule"):
        rotation.shift_index(utc(2026, 1, 1))
