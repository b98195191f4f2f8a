from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.errors import IllegalTransition
from bot.core.incident import TRANSITIONS, Event, IncidentState, Severity, Status, apply, severity_from_label

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_happy_path_records_who_and_when():
    s = IncidentState(Status.TRIGGERED, T0)
    s = apply(s, Event.ACKNOWLEDGE, "slack:U1", T0 + timedelta(minutes=2))
    assert (s.status, s.acknowledged_by, s.acknowledged_at) == (
        Status.ACKNOWLEDGED,
        "slack:U1",
        T0 + timedelta(minutes=2),
    )
    s = apply(s, Event.RESOLVE, "alertmanager", T0 + timedelta(minutes=9))
    assert s.status is Status.RESOLVED and s.resolved_by == "alertmanager"
    s = apply(s, Event.CLOSE, "slack:U2", T0 + timedelta(hours=1))
    assert s.status is Status.CLOSED and s.closed_at == T0 + timedelta(hours=1)
    s = apply(s, Event.REOPEN, "slack:U2", T0 + timedelta(hours=2))
    assert s.status is Status.TRIGGERED and s.resolved_at is None and s.acknowledged_at is None


def test_illegal_transition_says_what_is_possible():
    s = IncidentState(Status.RESOLVED, T0)
    with pytest.raises(
        IllegalTransition,
        match=r"cannot acknowledge an incident that is resolved \(possible: close, reopen\)",
    ):
        apply(s, Event.ACKNOWLEDGE, "x", T0)


@given(st.sampled_from(list(Status)), st.sampled_from(list(Event)))
def test_apply_follows_the_table_exactly(status, event):
    state = IncidentState(status, T0)
    if (status, event) in TRANSITIONS:
        assert apply(state, event, "a", T0).status is TRANSITIONS[(status, event)]
    else:
        with pytest.raises(IllegalTransition):
            apply(state, event, "a", T0)


@pytest.mark.parametrize(
    ("label", "sev"),
    [
        ("critical", Severity.SEV1),
        ("warning", Severity.SEV2),
        ("info", Severity.SEV3),
        ("bogus", Severity.SEV3),
        (None, Severity.SEV3),
        (" Critical ", Severity.SEV1),
    ],
)
def test_severity_from_label(label, sev):
    assert severity_from_label(label) is sev


def test_the_first_acknowledgement_is_kept_for_mtta():
    s = apply(IncidentState(Status.TRIGGERED, T0), Event.ACKNOWLEDGE, "slack:U1", T0 + timedelta(minutes=3))
    assert s.first_acknowledged_at == T0 + timedelta(minutes=3)
    s = apply(s, Event.UNACKNOWLEDGE, "pagerduty:PagerDuty", T0 + timedelta(minutes=10))
    assert s.acknowledged_at is None and s.first_acknowledged_at == T0 + timedelta(minutes=3)
    s = apply(s, Event.ACKNOWLEDGE, "slack:U2", T0 + timedelta(minutes=20))
    assert s.acknowledged_at == T0 + timedelta(minutes=20)
    assert s.first_acknowledged_at == T0 + timedelta(minutes=3)
    s = apply(s, Event.RESOLVE, "slack:U2", T0 + timedelta(minutes=30))
    s = apply(s, Event.REOPEN, "slack:U2", T0 + timedelta(minutes=40))
    s = apply(s, Event.ACKNOWLEDGE, "slack:U3", T0 + timedelta(minutes=50))
    assert s.first_acknowledged_at == T0 + timedelta(minutes=3)
