"""Handoffs as pure functions: the next boundary per layer, missed ones, reminder times, texts;
and a property: the next handoff is the first change of person, overrides and DST included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from bot.core.handoffs import (
    ShiftSummary,
    due_handoff,
    handoff_at,
    handoff_key,
    incoming_text,
    is_handoff,
    next_handoff,
    outgoing_text,
    reminder_due,
    reminder_text,
    run_start,
)
from bot.core.rotations import Override, Person, Rotation, on_call

T = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def rota(**kw) -> Rotation:
    values = dict(
        name="platform",
        timezone="UTC",
        start=datetime(2026, 11, 25, 9, 0),
        shift=timedelta(hours=8),
        layers={"primary": ("alex", "sarah", "sarah", "david"), "secondary": ("mike",)},
    )
    values.update(kw)
    return Rotation(**values)  # type: ignore[arg-type]


def test_next_handoff_skips_a_person_who_follows_themself():
    r = rota()
    # 09:00 alex, 17:00 sarah, 01:00 sarah, 09:00 david: sarah's two shifts are one stretch.
    assert next_handoff(r, "primary", T) == datetime(2026, 11, 25, 17, 0, tzinfo=UTC)
    assert next_handoff(r, "primary", datetime(2026, 11, 25, 17, 0, tzinfo=UTC)) == datetime(
        2026, 11, 26, 9, 0, tzinfo=UTC
    )
    assert next_handoff(r, "secondary", T) is None  # one member: never hands off
    assert is_handoff(r, "primary", datetime(2026, 11, 25, 17, 0, tzinfo=UTC))
    assert not is_handoff(r, "primary", datetime(2026, 11, 26, 1, 0, tzinfo=UTC))


def test_overrides_are_handoffs_too():
    o = Override("primary", "mike", T + timedelta(hours=1), T + timedelta(hours=2))
    r = rota(overrides=(o,))
    assert next_handoff(r, "primary", T) == o.start
    assert next_handoff(r, "primary", o.start) == o.end
    h = handoff_at(r, "primary", o.start)
    assert (h.outgoing, h.incoming, h.override, h.incoming_until) == ("alex", "mike", True, o.end)
    assert h.outgoing_since == datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def test_due_handoff_is_the_next_one_or_the_latest_missed():
    r = rota()
    at17 = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)
    assert due_handoff(r, "primary", T, T) == at17
    # Down from 16:00 to the next day 10:00: 17:00 and 09:00 were missed; only 09:00 is announced.
    missed = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    assert due_handoff(r, "primary", T, missed) == datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    # After announcing 17:00 at 17:00, the next is the day after 09:00.
    assert due_handoff(r, "primary", at17, at17) == datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    # Planned from just before now: a handoff happening now is announced.
    assert due_handoff(r, "primary", at17 - timedelta(microseconds=1), at17) == at17


def test_run_start_walks_back_over_the_same_person():
    r = rota()
    late_night = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
    assert run_start(r, "primary", on_call(r, "primary", late_night)) == datetime(
        2026, 11, 25, 17, tzinfo=UTC
    )


def test_reminder_times():
    b = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)
    assert reminder_due(b, timedelta(hours=1), T) == b - timedelta(hours=1)
    assert reminder_due(b, timedelta(hours=6), T) == T  # already inside the window: now
    assert reminder_due(b, timedelta(0), T) is None  # off
    assert reminder_due(b, timedelta(hours=1), b) is None  # the handoff is here: no reminder


def test_texts_use_slack_dates_and_the_persons_zone():
    r = rota()
    h = handoff_at(r, "primary", datetime(2026, 11, 25, 17, 0, tzinfo=UTC))
    berlin = Person("sarah", "U02SARAH", timezone="Europe/Berlin")
    text = incoming_text(h, berlin, r.timezone, late=False)
    assert text.startswith(":pager: You are on call for platform primary from <!date^")
    assert "Wed Nov 25 18:00 CET" in text and "Thu Nov 26 10:00 CET" in text, text
    assert "late" not in text
    assert "late: the bot was down at the handoff" in incoming_text(h, berlin, r.timezone, late=True)
    summary = ShiftSummary(2, 3, 1, ("#7 Disk <full>",))
    out = outgoing_text(h, summary, None, r.timezone, late=False)
    assert "2 incident(s), 3 page(s) to you, 1 acknowledged by you" in out
    assert "#7 Disk &lt;full&gt;" in out
    assert "Reminder" in reminder_text(h, berlin, r.timezone, late=False)
    assert handoff_key("platform", "primary", h.at) == "handoff:platform:primary:2026-11-25T17:00:00+00:00"


PEOPLE = ("alex", "sarah", "david")


@st.composite
def schedules(draw) -> Rotation:
    members = tuple(draw(st.lists(st.sampled_from(PEOPLE), min_size=1, max_size=4)))
    hours = draw(st.sampled_from([1, 2, 3, 4, 6, 8, 12, 24, 36]))
    overrides = []
    at = T
    for _ in range(draw(st.integers(0, 3))):
        at += timedelta(minutes=draw(st.integers(0, 600)))
        end = at + timedelta(minutes=draw(st.integers(1, 600)))
        overrides.append(Override("primary", draw(st.sampled_from(PEOPLE)), at, end))
        at = end
    return Rotation(
        "platform",
        draw(st.sampled_from(["UTC", "America/Los_Angeles", "Europe/Berlin"])),
        datetime(2026, 3, 1, 9, 0),
        timedelta(hours=hours),
        {"primary": members},
        tuple(overrides),
        handoff_rule="clock" if 24 % hours == 0 else "elapsed",
    )


@given(schedules(), st.integers(0, 7 * 24 * 60))
def test_the_next_handoff_is_the_first_change_of_person(rotation: Rotation, minutes: int) -> None:
    after = T + timedelta(minutes=minutes)
    at = next_handoff(rotation, "primary", after)
    if at is None:
        return  # nobody else within the horizon (e.g. a one-member layer)
    assert at > after and is_handoff(rotation, "primary", at)
    person = on_call(rotation, "primary", after).person
    probe = after
    while probe < at:  # every shift start before it keeps the same person
        assert on_call(rotation, "primary", probe).person == person
        probe = on_call(rotation, "primary", probe).end
    # The planner announces it, or the latest one that already happened.
    assert due_handoff(rotation, "primary", after, after) == at
    assert due_handoff(rotation, "primary", after, at) == at
