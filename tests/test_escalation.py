from datetime import UTC, datetime, timedelta

import pytest

from bot.core.escalation import (
    EscalationPolicy,
    EscalationStep,
    Target,
    final_notice_due,
    next_step,
    pagerduty_keys,
    resolve_targets,
    schedule,
)
from bot.core.incident import Severity
from bot.core.rotations import Person, Rotation

OPENED = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
M = timedelta(minutes=1)

STEPS = (
    EscalationStep(0 * M, (Target.layer("primary"),)),
    EscalationStep(15 * M, (Target.layer("secondary"),)),
    EscalationStep(30 * M, (Target.layer("manager"),)),
    EscalationStep(60 * M, (Target.person("vp-eng"),), channel_mention="here"),
)
POLICY = EscalationPolicy(STEPS, repeat=1, ack_timeout={"SEV1": 5 * M, "SEV2": 60 * M, "SEV3": 24 * 60 * M})


def minutes(plan: list) -> list[int]:
    return [int((p.due_at - OPENED) / M) for p in plan]


def test_plan_without_severity_follows_the_configured_gaps_and_repeats_once() -> None:
    plan = schedule(POLICY, OPENED)
    # Round 1 starts one "last gap" (60 - 30 = 30m) after round 0's last step.
    assert minutes(plan) == [0, 15, 30, 60, 90, 105, 120, 150]
    assert [p.key for p in plan] == [(r, i) for r in (0, 1) for i in range(4)]
    assert [p.step for p in plan] == list(STEPS) * 2
    assert final_notice_due(plan) == OPENED + 180 * M


def test_sev1_ack_timeout_shortens_every_wait() -> None:
    plan = schedule(POLICY, OPENED, "SEV1")
    assert minutes(plan) == [0, 5, 10, 15, 20, 25, 30, 35]
    assert all(p.wait_after == 5 * M for p in plan)
    assert final_notice_due(plan) == OPENED + 40 * M


def test_long_ack_timeout_never_lengthens_a_wait() -> None:
    assert minutes(schedule(POLICY, OPENED, "SEV3")) == minutes(schedule(POLICY, OPENED))
    sev2 = schedule(POLICY, OPENED, Severity.SEV2)  # the incident module's StrEnum works as a key
    assert minutes(sev2) == [0, 15, 30, 60, 90, 105, 120, 150]


def test_severity_lookup_is_case_insensitive_and_unknown_means_no_cap() -> None:
    assert minutes(schedule(POLICY, OPENED, "sev1"))[:4] == [0, 5, 10, 15]
    assert minutes(schedule(POLICY, OPENED, "SEV9")) == minutes(schedule(POLICY, OPENED))


def test_first_step_delay_and_single_step_policies() -> None:
    delayed = EscalationPolicy((EscalationStep(5 * M, ()), EscalationStep(20 * M, ())), repeat=1)
    assert minutes(schedule(delayed, OPENED)) == [5, 20, 35, 50]
    assert final_notice_due(schedule(delayed, OPENED)) == OPENED + 65 * M
    single = EscalationPolicy((EscalationStep(0 * M, (Target.layer("primary"),)),), repeat=2)
    assert minutes(schedule(single, OPENED)) == [0, 15, 30]  # 15m default round gap
    assert final_notice_due(schedule(single, OPENED)) == OPENED + 45 * M


def test_empty_policy_plans_nothing() -> None:
    plan = schedule(EscalationPolicy(()), OPENED)
    assert plan == [] and final_notice_due(plan) is None and next_step(plan, set()) is None


def test_next_step_is_the_earliest_not_fired() -> None:
    plan = schedule(POLICY, OPENED)
    assert next_step(plan, set()) == plan[0]
    assert next_step(plan, {(0, 0), (0, 1)}) == plan[2]
    assert next_step(plan, {(0, 0), (0, 2)}) == plan[1]
    assert next_step(plan, {p.key for p in plan}) is None


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="increasing"):
        EscalationPolicy((EscalationStep(15 * M), EscalationStep(15 * M)))
    with pytest.raises(ValueError, match="repeat"):
        EscalationPolicy(STEPS, repeat=-1)
    with pytest.raises(ValueError, match="aware"):
        schedule(POLICY, datetime(2026, 1, 1))


PEOPLE = {n: Person(n, f"U01{n.upper()}") for n in ("alex", "sarah", "david", "mike", "vp-eng")}
ROTATION = Rotation(
    "platform",
    "America/Los_Angeles",
    datetime(2026, 11, 2, 9),
    timedelta(weeks=1),
    {"primary": ("alex", "sarah", "david"), "secondary": ("sarah", "david", "alex"), "manager": ("mike",)},
)


def test_resolve_targets_maps_layers_to_the_on_call_person() -> None:
    at = datetime(2026, 11, 10, 12, tzinfo=UTC)  # week 2: primary sarah, secondary david
    assert resolve_targets(STEPS[0], ROTATION, PEOPLE, at) == [PEOPLE["sarah"]]
    assert resolve_targets(schedule(POLICY, OPENED)[3], ROTATION, PEOPLE, at) == [PEOPLE["vp-eng"]]
    step = EscalationStep(
        0 * M,
        (
            Target.layer("primary"),
            Target.person("sarah"),
            Target.layer("secondary"),
            Target.pagerduty("k" * 32),
        ),
    )
    assert resolve_targets(step, ROTATION, PEOPLE, at) == [PEOPLE["sarah"], PEOPLE["david"]]  # no duplicates
    assert pagerduty_keys(step) == ["k" * 32]
    assert pagerduty_keys(STEPS[0]) == []
