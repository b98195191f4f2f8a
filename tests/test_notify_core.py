"""The pure parts of issue 18: notification rules, failure decisions, Do Not Disturb, ack tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from bot.core.ack_tokens import AckTarget, TokenProblem, ack_url, make_token, read_token
from bot.core.notify_rules import (
    SLACK_NOW,
    FailureStep,
    NotifyRule,
    RuleState,
    after_failure,
    contact_for,
    dnd_paused,
    rules_for,
)
from bot.core.rotations import Person

M = timedelta(minutes=1)
NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
ALEX = Person("alex", "U01ALEX", "alex@example.com", phone="+14155550100", ntfy="alex-pages")


def rule(after: int, *via: str, sev: tuple[str, ...] = ()) -> NotifyRule:
    return NotifyRule(after * M, via, frozenset(sev))


def test_without_rules_a_person_gets_the_defaults_and_without_those_a_slack_dm_now() -> None:
    defaults = (rule(0, "slack"), rule(5, "email"))
    assert rules_for(ALEX, None, "SEV1") == SLACK_NOW
    assert rules_for(ALEX, defaults, "SEV1") == defaults
    own = (rule(0, "slack", "ntfy"), rule(2, "sms"))
    assert rules_for(Person(**{**vars(ALEX), "notify": own}), defaults, "SEV1") == own


def test_rules_limited_to_severities_and_methods_the_person_lacks_drop_out() -> None:
    own = (rule(0, "slack"), rule(2, "sms", sev=("SEV1",)), rule(5, "pushover", "email"))
    person = Person(**{**vars(ALEX), "notify": own})
    assert [r.via for r in rules_for(person, None, "SEV1")] == [("slack",), ("sms",), ("email",)]
    assert [r.via for r in rules_for(person, None, "sev2")] == [("slack",), ("email",)]
    # Nothing left for this severity: still a Slack DM at once (a page must reach someone).
    only_sev1 = Person(**{**vars(ALEX), "notify": (rule(0, "sms", sev=("SEV1",)),)})
    assert rules_for(only_sev1, None, "SEV3") == SLACK_NOW


def test_contact_for_each_method() -> None:
    assert contact_for(ALEX, "slack") == "U01ALEX"
    assert contact_for(Person("sarah", email="s@example.com"), "slack") == "s@example.com"
    assert contact_for(ALEX, "sms") == contact_for(ALEX, "voice") == "+14155550100"
    assert contact_for(ALEX, "pushover") is None and contact_for(ALEX, "ntfy") == "alex-pages"


def test_a_failure_brings_the_next_rule_forward_only_while_nothing_after_it_fired() -> None:
    states = [RuleState(0, True, ("sent", "failed")), RuleState(1, False), RuleState(2, False)]
    decision = after_failure(0, states)
    assert decision.step is FailureStep.NEXT_RULE and decision.bring_forward == 1 and not decision.unreachable
    late = [RuleState(0, True, ("failed",)), RuleState(1, True, ("pending",)), RuleState(2, False)]
    assert after_failure(0, late).step is FailureStep.LATER_RULE_FIRED
    assert after_failure(0, late).bring_forward is None


def test_the_page_fails_only_when_no_rule_is_left_and_every_notification_failed() -> None:
    assert after_failure(1, [RuleState(0, True, ("failed",)), RuleState(1, True, ("failed",))]).unreachable
    one_got_through = [RuleState(0, True, ("sent",)), RuleState(1, True, ("failed",))]
    assert not after_failure(1, one_got_through).unreachable
    still_under_way = [RuleState(0, True, ("failed", "pending"))]
    decision = after_failure(0, still_under_way)
    assert decision.step is FailureStep.NO_MORE_RULES and not decision.unreachable


def test_dnd_paused_reads_the_schedule_and_the_snooze() -> None:
    now = NOW.timestamp()
    window = {"dnd_enabled": True, "next_dnd_start_ts": now - 60, "next_dnd_end_ts": now + 60}
    assert dnd_paused(window, now)
    assert not dnd_paused({**window, "dnd_enabled": False}, now)
    assert not dnd_paused({**window, "next_dnd_start_ts": now + 1}, now)  # the next window, not yet
    assert not dnd_paused({**window, "next_dnd_end_ts": now}, now)
    assert dnd_paused({"dnd_enabled": False, "snooze_enabled": True, "snooze_endtime": now + 5}, now)
    assert not dnd_paused({"snooze_enabled": True, "snooze_endtime": now - 5}, now)
    assert not dnd_paused({"dnd_enabled": "yes", "next_dnd_start_ts": "0", "next_dnd_end_ts": True}, now)


TARGET = AckTarget("page", 42, 1, NOW + timedelta(hours=24))


def test_a_token_reads_back_until_it_expires() -> None:
    token = make_token("key", TARGET)
    assert read_token("key", token, NOW) == TARGET
    assert read_token("key", token, NOW + timedelta(hours=24)) is TokenProblem.EXPIRED
    test = AckTarget("test", 7, 0, NOW + timedelta(hours=1))
    assert read_token("key", make_token("key", test), NOW) == test
    assert ack_url("https://bot.example.com/", "key", TARGET) == f"https://bot.example.com/ack/{token}"


def test_another_key_or_no_key_never_reads_a_token() -> None:
    token = make_token("key", TARGET)
    assert read_token("other", token, NOW) is TokenProblem.FORGED
    assert read_token("", token, NOW) is TokenProblem.FORGED


@given(st.integers(min_value=0), st.integers(min_value=0, max_value=7))
def test_any_change_to_a_token_is_forged(position: int, bit: int) -> None:
    """Only the unused low bits of a base64 character may change without changing the bytes."""
    token = make_token("key", TARGET)
    i = position % len(token)
    changed = token[:i] + chr(ord(token[i]) ^ (1 << bit)) + token[i + 1 :]
    result = read_token("key", changed, NOW)
    assert result is TokenProblem.FORGED or result == TARGET


@given(st.text(max_size=300))
def test_any_text_is_a_forged_token_never_an_error(text: str) -> None:
    assert read_token("key", text, NOW) is TokenProblem.FORGED


def test_report_counts_acknowledgements_and_time_to_ack_per_channel() -> None:
    from bot.core.reports import ReportIncident, format_table, report, to_json

    def inc(n: int, tta: int | None, via: str | None) -> ReportIncident:
        created = NOW - timedelta(hours=n)
        ack = None if tta is None else created + tta * M
        return ReportIncident(n, "SEV1", created, acknowledged_at=ack, acknowledged_via=via)

    data = [
        inc(1, 2, "ack_link"),
        inc(2, 4, "ack_link"),
        inc(3, 9, "slack"),
        inc(4, 1, None),
        inc(5, None, None),
    ]
    r = report(data, NOW - timedelta(days=1), NOW)
    assert [(a.via, a.time_to_ack.count, a.time_to_ack.median) for a in r.acknowledged_via] == [
        ("ack_link", 2, 2 * M),
        ("slack", 2, 1 * M),  # no channel recorded (before issue 18): Slack, the only way there was
    ]
    lines = format_table(r).splitlines()
    start = lines.index("Acknowledged via  Incidents  Median  p90")
    assert lines[start + 1 : start + 3] == [
        "ack_link                  2  2m      4m",
        "slack                     2  1m      9m",
    ]
    assert to_json(r)["acknowledged_via"][0] == {
        "via": "ack_link",
        "count": 2,
        "median_seconds": 120.0,
        "p90_seconds": 240.0,
    }
