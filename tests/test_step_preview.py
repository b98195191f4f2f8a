"""The card's "next" line comes from a pure preview of the pending step (bot/core/escalation.py)."""

from datetime import UTC, datetime, timedelta

from bot.core.escalation import (
    EscalationPolicy,
    EscalationStep,
    Target,
    preview_final_notice,
    preview_step,
    schedule,
)
from bot.core.rotations import PagerDutySource, Person, Rotation

OPENED = datetime(2026, 11, 23, 23, 50, tzinfo=UTC)
PEOPLE = {
    "alex": Person("alex", slack_id="U01ALEX", display_name="Alex Chen"),
    "sarah": Person("sarah", email="sarah@example.com", display_name="Sarah Johnson"),
    "mike": Person("mike", slack_id="U03MIKE"),
}
# Daily handoffs at 00:00 UTC: the secondary changes from sarah to alex ten minutes after opening.
ROTATION = Rotation(
    "platform",
    "UTC",
    datetime(2026, 11, 23, 0, 0),
    timedelta(days=1),
    {"primary": ("alex", "sarah"), "secondary": ("sarah", "alex"), "manager": ("mike",)},
)
POLICY = EscalationPolicy(
    (
        EscalationStep(timedelta(0), (Target.layer("primary"),)),
        EscalationStep(timedelta(minutes=15), (Target.layer("secondary"), Target.person("mike"))),
        EscalationStep(timedelta(minutes=30), (Target.pagerduty("R" * 28 + "abcd"),), "here"),
    ),
    repeat=1,
)


def test_the_step_pages_who_is_on_call_when_it_fires_not_now() -> None:
    plan = schedule(POLICY, OPENED)
    due = plan[1].due_at  # 00:05, after the 00:00 handoff
    preview = preview_step(plan[1], due, ROTATION, PEOPLE)
    assert preview.label == "step 2" and preview.due_at == due
    assert [(layer, p.name) for layer, p in preview.people] == [("secondary", "alex"), (None, "mike")]
    assert not preview.final_notice and preview.channel_mention is None


def test_a_moved_timer_decides_the_time_and_so_the_people() -> None:
    plan = schedule(POLICY, OPENED)
    early = OPENED + timedelta(minutes=1)  # brought forward: before the handoff
    assert [p.name for _, p in preview_step(plan[1], early, ROTATION, PEOPLE).people] == ["sarah", "mike"]


def test_pagerduty_targets_rounds_and_mentions_are_described() -> None:
    plan = schedule(POLICY, OPENED)
    third = preview_step(plan[2], plan[2].due_at, ROTATION, PEOPLE)
    assert third.pagerduty == ("PagerDuty (routing key …abcd)",) and third.channel_mention == "here"
    assert preview_step(plan[4], plan[4].due_at, ROTATION, PEOPLE).label == "step 2, round 2"


def test_a_pagerduty_rotation_pages_its_level_and_unknown_names_do_not_crash() -> None:
    pd = Rotation("checkout", "UTC", None, None, {}, source="pagerduty", pagerduty=PagerDutySource("PS1"))
    step = schedule(EscalationPolicy((EscalationStep(timedelta(0), (Target.person("ghost"),)),)), OPENED)[0]
    preview = preview_step(step, OPENED, pd, PEOPLE)
    assert preview.pagerduty == ("PagerDuty's on-call at level 1",)
    assert [p.name for _, p in preview.people] == ["ghost"]


def test_final_notice_uses_the_policy_mention() -> None:
    plan = schedule(POLICY, OPENED)
    due = plan[-1].due_at + plan[-1].wait_after
    final = preview_final_notice(plan, due)
    assert final.final_notice and final.channel_mention == "here" and final.due_at == due


def test_the_card_words_the_preview() -> None:
    from bot.slack.card_people import next_step_text

    plan = schedule(POLICY, OPENED)
    second = next_step_text(preview_step(plan[1], plan[1].due_at, ROTATION, PEOPLE))
    assert second.startswith("step 2 (secondary: <@U01ALEX>, <@U03MIKE>) at <!date^")
    final = next_step_text(preview_final_notice(plan, OPENED + timedelta(hours=2)))
    assert final.startswith("final @here notice at <!date^") and "<!here>" not in final
