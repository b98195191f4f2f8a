"""The pure rules of card silences: which durations are accepted, and when a check resolves."""

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from bot.core.silences import OFFERED, CheckReason, after_check, label, offered, offered_text

FINGERPRINTS = st.frozensets(st.sampled_from(["a1", "b2", "c3", "d4"]))


def test_only_the_offered_durations_are_accepted():
    assert [label(d) for d in OFFERED] == ["1h", "4h"]
    assert offered(3600) == timedelta(hours=1) and offered(14400) == timedelta(hours=4)
    for forged in (0, -3600, 1, 3599, 7200, 86400, 999999, 10**30):
        assert offered(forged) is None
    assert offered_text() == "1h or 4h"


def test_a_group_whose_alerts_are_all_gone_resolves():
    decision = after_check({"a1", "b2"}, set())
    assert decision.resolves and decision.reason is CheckReason.ALL_STOPPED
    assert decision.stopped == {"a1", "b2"}


def test_one_alert_still_listed_keeps_it_open_and_the_others_are_marked_stopped():
    decision = after_check({"a1", "b2"}, {"b2", "zz"})
    assert not decision.resolves and decision.reason is CheckReason.SOME_STOPPED
    assert decision.stopped == {"a1"}
    still = after_check({"a1"}, {"a1"})
    assert still.reason is CheckReason.STILL_FIRING and not still.stopped


def test_alerts_of_the_group_we_never_saw_count_only_when_the_group_was_truncated():
    assert after_check({"a1"}, {"new"}).resolves  # a new alert is a new incident once unsilenced
    truncated = after_check({"a1"}, {"new"}, truncated=True)
    assert truncated.reason is CheckReason.GROUP_STILL_FIRING and not truncated.resolves
    assert truncated.stopped == {"a1"}
    assert after_check({"a1"}, set(), truncated=True).resolves


def test_an_incident_with_nothing_firing_is_never_resolved_by_a_check():
    decision = after_check(set(), set())
    assert decision.reason is CheckReason.NOTHING_FIRING and not decision.resolves


@given(FINGERPRINTS, FINGERPRINTS, st.booleans())
def test_resolves_exactly_when_none_of_ours_is_listed(firing, listed, truncated):
    decision = after_check(firing, listed, truncated=truncated)
    assert decision.stopped == firing - listed
    assert decision.resolves == (bool(firing) and not firing & listed and not (truncated and listed))
