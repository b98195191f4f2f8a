"""Issue 19, the pure parts: the effective schedule (file overrides, then database overrides on top),
`<when>` as people type it, and who may change a rotation's on-call."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.errors import BadInput
from bot.core.oncall_changes import (
    Actor,
    Existing,
    OnCallNotAllowed,
    Why,
    place,
    require_allowed,
    why_allowed,
)
from bot.core.rotations import Override, Rotation, on_call
from bot.core.schedule import covered_people, layered, runs, shifts_between
from bot.core.when import MAX_SPAN, Span, check_span, parse_when, slack_date
from tests.test_rotation_dst import TRANSITIONS, ZONES, instants, queries

H = timedelta(hours=1)
LA = ZoneInfo("America/Los_Angeles")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# --- layering -----------------------------------------------------------------------------------
@st.composite
def override_sets(draw: st.DrawFn, around: datetime) -> tuple[list[Override], list[Override]]:
    """File overrides (never overlapping, as the catalog guarantees) and database overrides (any)."""

    def one(who: str) -> Override:
        start = around + timedelta(minutes=draw(st.integers(-3 * 24 * 60, 3 * 24 * 60)))
        return Override("primary", who, start, start + timedelta(minutes=draw(st.integers(1, 3 * 24 * 60))))

    file_overrides: list[Override] = []
    for o in sorted((one("dan") for _ in range(draw(st.integers(0, 3)))), key=lambda o: o.start):
        if not file_overrides or file_overrides[-1].end <= o.start:
            file_overrides.append(o)
    database = [one(draw(st.sampled_from(["eve", "ann", "fay"]))) for _ in range(draw(st.integers(0, 4)))]
    return file_overrides, [
        Override(o.layer, o.who, o.start, o.end, f"db:{i}") for i, o in enumerate(database)
    ]


def oracle(base: Rotation, stack: list[Override], t: datetime) -> str:
    """The newest override covering t, else the plain rotation."""
    for o in reversed(stack):
        if o.start <= t < o.end:
            return o.who
    return on_call(base, "primary", t).person


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_database_overrides_win_over_the_file_for_their_span_only(data: st.DataObject) -> None:
    rotation, t = data.draw(queries())
    file_overrides, database = data.draw(override_sets(t))
    with_file = Rotation(
        rotation.name, rotation.timezone, rotation.start, rotation.shift, rotation.layers,
        tuple(file_overrides), handoff_rule=rotation.handoff_rule,
    )  # fmt: skip
    effective, left_out = layered(with_file, database)
    assert left_out == []
    base = Rotation(rotation.name, rotation.timezone, rotation.start, rotation.shift, rotation.layers,
                    handoff_rule=rotation.handoff_rule)  # fmt: skip
    stack = [*file_overrides, *database]
    for probe in [t, *(o.start for o in stack), *(o.end for o in stack), *(o.end - H / 60 for o in stack)]:
        shift = on_call(effective, "primary", probe)
        assert shift.person == oracle(base, stack, probe), probe
        assert shift.start <= probe < shift.end


def test_a_file_override_partly_covered_keeps_its_other_parts() -> None:
    rotation = Rotation(
        "r", "America/Chicago", datetime(2026, 11, 2, 9), timedelta(weeks=1), {"primary": ("ann", "bob")},
        (Override("primary", "dan", at("2026-11-03T00:00Z"), at("2026-11-05T00:00Z")),),
    )  # fmt: skip
    middle = Override("primary", "eve", at("2026-11-04T00:00Z"), at("2026-11-04T06:00Z"), "db:7")
    effective, _ = layered(rotation, [middle])
    people = [(s.person, s.ref) for s in shifts_between(effective, "primary", at("2026-11-03T01:00Z"),
                                                             at("2026-11-04T23:00Z"))]  # fmt: skip
    assert people == [("dan", None), ("eve", "db:7"), ("dan", None)]


def test_overrides_naming_what_the_files_no_longer_have_are_left_out() -> None:
    rotation = Rotation("r", "UTC", datetime(2026, 1, 1), timedelta(days=1), {"primary": ("ann",)})
    gone_layer = Override("secondary", "ann", at("2026-01-02T00:00Z"), at("2026-01-03T00:00Z"), "db:1")
    gone_person = Override("primary", "zed", at("2026-01-02T00:00Z"), at("2026-01-03T00:00Z"), "db:2")
    effective, left_out = layered(rotation, [gone_layer, gone_person], people={"ann"})
    assert left_out == [gone_layer, gone_person]
    assert on_call(effective, "primary", at("2026-01-02T12:00Z")).person == "ann"


def test_runs_merge_a_person_following_themself() -> None:
    rotation = Rotation("r", "UTC", datetime(2026, 1, 5), timedelta(weeks=1), {"m": ("mike", "mike", "lisa")})
    shifts = shifts_between(rotation, "m", at("2026-01-05T00:00Z"), at("2026-01-26T00:00Z"))
    assert [(s.person, s.end - s.start) for s in runs(shifts)] == [
        ("mike", timedelta(weeks=2)),
        ("lisa", timedelta(weeks=1)),
    ]
    assert covered_people(rotation, "m", at("2026-01-12T00:00Z"), at("2026-01-20T00:00Z")) == ["mike", "lisa"]


# --- <when> -------------------------------------------------------------------------------------
NOW = at("2026-12-01T20:30Z")  # 12:30 PST


def when(text: str, now: datetime = NOW, zone: ZoneInfo = LA) -> tuple[Span, list[str]]:
    span, rest = parse_when(text.split(), now, zone)
    return check_span(span, now, zone), rest


@pytest.mark.parametrize(
    ("text", "start", "end", "rest"),
    [
        ("now for 4h", NOW, NOW + 4 * H, []),
        ("for 90m kid is sick", NOW, NOW + timedelta(minutes=90), ["kid", "is", "sick"]),
        ("until 18:00", NOW, at("2026-12-01T18:00-08:00"), []),
        ("until 09:00", NOW, at("2026-12-02T09:00-08:00"), []),
        ("tomorrow 09:00 for 8h", at("2026-12-02T09:00-08:00"), at("2026-12-02T17:00-08:00"), []),
        ("2026-12-24T18:00 to 2026-12-26T09:00", at("2026-12-24T18:00-08:00"),
         at("2026-12-26T09:00-08:00"), []),
        ("2026-12-24 18:00 to 2026-12-26 09:00 holidays", at("2026-12-24T18:00-08:00"),
         at("2026-12-26T09:00-08:00"), ["holidays"]),
        ("2026-12-24T18:00-05:00 until 2026-12-25T00:00Z", at("2026-12-24T23:00Z"),
         at("2026-12-25T00:00Z"), []),
        ("14:00 to 18:00", at("2026-12-01T14:00-08:00"), at("2026-12-01T18:00-08:00"), []),
        ("22:00 to 06:00", at("2026-12-01T22:00-08:00"), at("2026-12-02T06:00-08:00"), []),
        ("2026-12-24 to 2026-12-26", at("2026-12-24T00:00-08:00"), at("2026-12-26T00:00-08:00"), []),
    ],
)  # fmt: skip
def test_when_as_people_type_it(text: str, start: datetime, end: datetime, rest: list[str]) -> None:
    span, left = when(text)
    assert (span.start, span.end, left) == (start, end, rest)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "Say when as"),
        ("sometime soon", "Say when as"),
        ("now", "Say when as"),
        ("now for 4x", "`4x` is not a duration"),
        ("now for 0", "is not a duration"),
        ("2026-11-30T09:00 to 2026-12-02T09:00", "That starts in the past"),
        ("2026-12-24T18:00 to 2026-12-24T17:00", "is not after the start"),
        ("now for 91d", "at most 90 days"),
        ("until", "Say when as"),
    ],
)
def test_bad_when_is_one_sentence(text: str, says: str) -> None:
    with pytest.raises(BadInput) as caught:
        when(text)
    message = str(caught.value)
    assert says in message and message.count(". ") == 0, message


def test_until_in_the_spring_forward_gap_ends_when_the_clock_jumps() -> None:
    chicago = ZoneInfo("America/Chicago")
    now = at("2027-03-13T20:00-06:00")
    span, _ = when("until 02:30", now, chicago)
    assert span.end == at("2027-03-14T03:00-05:00")


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    now=instants,
    minutes=st.integers(1, 90 * 24 * 60),
)
def test_now_for_a_duration_is_exactly_that(zone: str, now: datetime, minutes: int) -> None:
    span, _ = when(f"now for {minutes}m", now, ZoneInfo(zone))
    assert (span.start, span.end) == (now, now + timedelta(minutes=minutes))


@settings(max_examples=300, deadline=None)
@given(data=st.data(), zone=st.sampled_from(ZONES), hour=st.integers(0, 23), minute=st.integers(0, 59))
def test_until_a_clock_time_is_its_next_occurrence(
    data: st.DataObject, zone: str, hour: int, minute: int
) -> None:
    tz = ZoneInfo(zone)
    now = (
        data.draw(st.sampled_from(TRANSITIONS[zone]) | instants) if TRANSITIONS[zone] else data.draw(instants)
    )
    now += timedelta(minutes=data.draw(st.integers(-26 * 60, 26 * 60)))
    span, _ = when(f"until {hour:02d}:{minute:02d}", now, tz)
    assert now < span.end <= now + timedelta(hours=26)
    local = span.end.astimezone(tz)
    # The clock shows it then, or it fell in a gap and the end is the jump (shown later than asked).
    assert (local.hour, local.minute) == (hour, minute) or local.utcoffset() != (span.end - H).astimezone(
        tz
    ).utcoffset()


@settings(max_examples=300, deadline=None)
@given(zone=st.sampled_from(ZONES), start=instants, hours=st.integers(1, 24 * 89))
def test_written_times_read_back(zone: str, start: datetime, hours: int) -> None:
    tz = ZoneInfo(zone)
    start = start.replace(second=0, microsecond=0)
    end = start + timedelta(hours=hours)
    text = f"{start.astimezone(tz).isoformat()} to {end.astimezone(tz).isoformat()}"
    span, _ = when(text, start, tz)
    assert (span.start, span.end) == (start, end)
    assert span.end - span.start <= MAX_SPAN


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=12), max_size=6))
def test_any_words_give_a_span_or_a_sentence(words: list[str]) -> None:
    try:
        span, _ = parse_when(words, NOW, LA)
        check_span(span, NOW, LA)
    except BadInput:
        pass


def test_slack_date_has_a_fallback_in_the_rotation_zone() -> None:
    assert slack_date(at("2026-12-24T18:00-08:00"), LA) == (
        "<!date^1798164000^{date_short_pretty} {time}|Thu Dec 24 2026 18:00 PST>"
    )


# --- who may, and conflicts ---------------------------------------------------------------------
def allowed(actor: Actor, **kw) -> Why | None:
    base = {"taker": "sarah", "covered": ["alex"], "rotation_admins": (), "admins": ()}
    return why_allowed(actor, **(base | kw))


def test_who_may_change_the_schedule() -> None:
    assert allowed(Actor("U1", "sarah")) is Why.TAKER
    assert allowed(Actor("U2", "alex")) is Why.COVERED
    assert allowed(Actor("U3", "mike")) is None
    assert allowed(Actor("U3", "mike"), rotation_admins=["mike"]) is Why.ROTATION_ADMIN
    assert allowed(Actor("U3", None), rotation_admins=["U3"]) is Why.ROTATION_ADMIN
    assert allowed(Actor("U3", None), admins=["U3"]) is Why.ADMIN
    asked = []

    def in_group(user: str, group: str) -> bool:
        asked.append((user, group))
        return group == "S0LEADS"

    assert (
        allowed(Actor("U3", None), rotation_admins=["S0OTHER", "S0LEADS"], in_group=in_group)
        is Why.ROTATION_ADMIN
    )
    assert allowed(Actor("U1", "sarah"), rotation_admins=["S0LEADS"], in_group=in_group) is Why.TAKER
    assert asked == [("U3", "S0OTHER"), ("U3", "S0LEADS")]  # asked only when it matters
    with pytest.raises(OnCallNotAllowed, match=r"people concerned \(alex, sarah\), the admins of platform"):
        require_allowed(Actor("U3", "mike"), "platform", taker="sarah", covered=["alex"],
                        rotation_admins=(), admins=())  # fmt: skip


def test_an_override_meeting_another_is_refused_unless_the_same_person_made_both() -> None:
    mine = Existing(1, "primary", "sarah", at("2026-12-01T10:00Z"), at("2026-12-01T14:00Z"), "U1")
    theirs = Existing(2, "primary", "david", at("2026-12-01T16:00Z"), at("2026-12-01T18:00Z"), "U2")
    other_layer = Existing(3, "secondary", "david", at("2026-12-01T10:00Z"), at("2026-12-01T18:00Z"), "U2")
    existing = [mine, theirs, other_layer]
    assert place("primary", at("2026-12-01T12:00Z"), at("2026-12-01T15:00Z"), "U1", existing).replaces == (
        mine,
    )
    refused = place("primary", at("2026-12-01T12:00Z"), at("2026-12-01T17:00Z"), "U1", existing)
    assert refused.conflict == theirs
    touching = place("primary", at("2026-12-01T14:00Z"), at("2026-12-01T16:00Z"), "U3", existing)
    assert touching.conflict is None and touching.replaces == ()
