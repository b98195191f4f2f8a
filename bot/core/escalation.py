"""Escalation policies and the plan they imply for one incident: who is paged when, if nobody acks.

Timing rule (one sequence of waits, so a plan is easy to read and to test):
  * the first step is due `steps[0].after` after the incident opens;
  * each later step follows the previous one by the configured gap (`after` difference);
  * after a round's last step the next round starts after the "round gap": the last configured gap,
    or 15m for a one-step policy; rounds are 0..repeat;
  * `ack_timeout[severity]` caps EVERY wait (between steps and between rounds), so a SEV1 with a 5m
    ack timeout escalates 0/5/10/15 instead of 0/15/30/60. It only ever shortens: a SEV3 with 24h
    keeps the configured gaps;
  * after the last step of the last round one more wait passes, then a final `@here`/`@channel`
    notice is due (`final_notice_due`).
Each `PlannedStep` carries that following wait as `wait_after`: the time given to acknowledge.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import pairwise
from typing import Literal

from bot.core.rotations import Person, Rotation, on_call

TargetKind = Literal["layer", "person", "pagerduty_routing_key"]
ChannelMention = Literal["here", "channel"]
DEFAULT_ROUND_GAP = timedelta(minutes=15)


@dataclass(frozen=True)
class Target:
    kind: TargetKind
    value: str  # layer name, person name, or Events API v2 routing key

    @classmethod
    def layer(cls, name: str) -> Target:
        return cls("layer", name)

    @classmethod
    def person(cls, name: str) -> Target:
        return cls("person", name)

    @classmethod
    def pagerduty(cls, routing_key: str) -> Target:
        return cls("pagerduty_routing_key", routing_key)


@dataclass(frozen=True)
class EscalationStep:
    after: timedelta  # since the round started
    targets: tuple[Target, ...] = ()
    channel_mention: ChannelMention | None = None  # posted with the step


@dataclass(frozen=True)
class EscalationPolicy:
    steps: tuple[EscalationStep, ...]
    repeat: int = 0  # extra rounds after the first
    ack_timeout: dict[str, timedelta] = field(default_factory=dict)  # severity -> cap on each wait

    def __post_init__(self) -> None:
        if self.repeat < 0:
            raise ValueError("repeat must be 0 or more")
        for before, after in pairwise(self.steps):
            if after.after <= before.after:
                raise ValueError("escalation steps must have strictly increasing `after`")

    def ack_timeout_for(self, severity: str | None) -> timedelta | None:
        """Exact key first, then case-insensitively ('sev1' finds 'SEV1')."""
        if severity is None:
            return None
        if severity in self.ack_timeout:
            return self.ack_timeout[severity]
        folded = severity.casefold()
        return next((v for k, v in self.ack_timeout.items() if k.casefold() == folded), None)


@dataclass(frozen=True)
class PlannedStep:
    round: int
    index: int
    due_at: datetime
    step: EscalationStep
    wait_after: timedelta  # until the next planned step, or the final notice after the last one

    @property
    def key(self) -> tuple[int, int]:
        return (self.round, self.index)


def schedule(policy: EscalationPolicy, opened_at: datetime, severity: str | None = None) -> list[PlannedStep]:
    """Every step of every round with its due time, in order (see the module doc for the rule)."""
    if opened_at.tzinfo is None:
        raise ValueError("opened_at must be timezone-aware")
    steps = policy.steps
    if not steps:
        return []
    cap = policy.ack_timeout_for(severity)
    gaps = [b.after - a.after for a, b in pairwise(steps)]
    round_gap = gaps[-1] if gaps else DEFAULT_ROUND_GAP
    if cap is not None:
        gaps = [min(g, cap) for g in gaps]
        round_gap = min(round_gap, cap)
    plan: list[PlannedStep] = []
    due = opened_at + steps[0].after
    for r in range(policy.repeat + 1):
        for i, step in enumerate(steps):
            wait = gaps[i] if i < len(gaps) else round_gap
            plan.append(PlannedStep(r, i, due, step, wait))
            due += wait
    return plan


def next_step(plan: list[PlannedStep], fired: Collection[tuple[int, int]]) -> PlannedStep | None:
    """The earliest planned step not yet fired (by `(round, index)`), or None when all have fired."""
    return next((p for p in plan if p.key not in fired), None)


def final_notice_due(plan: list[PlannedStep]) -> datetime | None:
    """When the closing `@here`/`@channel` notice is due: one wait after the very last step."""
    return plan[-1].due_at + plan[-1].wait_after if plan else None


def resolve_targets(
    step: EscalationStep | PlannedStep, rotation: Rotation, people: Mapping[str, Person], at: datetime
) -> list[Person]:
    """The people a step pages at `at`: a layer's on-call person, or a named person; no duplicates.

    PagerDuty routing keys are not people (see `pagerduty_keys`). Unknown names were reported by the
    catalog at load time, so a KeyError here is a programming error, not a user one.
    """
    if isinstance(step, PlannedStep):
        step = step.step
    found: dict[str, Person] = {}
    for target in step.targets:
        if target.kind == "layer":
            name = on_call(rotation, target.value, at).person
        elif target.kind == "person":
            name = target.value
        else:
            continue
        found.setdefault(name, people[name])
    return list(found.values())


def pagerduty_keys(step: EscalationStep | PlannedStep) -> list[str]:
    """Routing keys a step triggers a PagerDuty event on."""
    if isinstance(step, PlannedStep):
        step = step.step
    return [t.value for t in step.targets if t.kind == "pagerduty_routing_key"]


def final_notice_mention(plan: list[PlannedStep]) -> ChannelMention:
    """The closing notice mentions what the policy's last mentioning step does, else `@here`."""
    return next((s.step.channel_mention for s in reversed(plan) if s.step.channel_mention), None) or "here"


@dataclass(frozen=True)
class StepPreview:
    """What the pending escalation step will do if nobody acknowledges (the card's "next" line)."""

    label: str  # "step 2", "step 1, round 2", or "final notice"
    due_at: datetime
    people: tuple[tuple[str | None, Person], ...] = ()  # (the layer it pages them for, person)
    pagerduty: tuple[str, ...] = ()  # what it pages through PagerDuty, as words
    channel_mention: ChannelMention | None = None

    @property
    def final_notice(self) -> bool:
        return self.label == "final notice"


def step_label(step: PlannedStep) -> str:
    return f"step {step.index + 1}" + (f", round {step.round + 1}" if step.round else "")


def preview_step(
    step: PlannedStep, due_at: datetime, rotation: Rotation, people: Mapping[str, Person]
) -> StepPreview:
    """Who `step` pages when it fires at `due_at` (the pending timer's time, which a severity
    change or an early escalation may have moved from the plan's): the on-call of that moment."""
    found: dict[str, tuple[str | None, Person]] = {}
    for target in step.step.targets:
        if target.kind == "layer" and rotation.source == "file" and target.value in rotation.layers:
            name = on_call(rotation, target.value, due_at).person
            found.setdefault(name, (target.value, people.get(name) or Person(name)))
        elif target.kind == "person":
            found.setdefault(target.value, (None, people.get(target.value) or Person(target.value)))
    keys = pagerduty_keys(step)
    via = [f"PagerDuty (routing key …{key[-4:]})" for key in keys]
    if rotation.source == "pagerduty" and not keys:
        via.append(f"PagerDuty's on-call at level {step.index + 1}")
    return StepPreview(step_label(step), due_at, tuple(found.values()), tuple(via), step.step.channel_mention)


def preview_final_notice(plan: list[PlannedStep], due_at: datetime) -> StepPreview:
    return StepPreview("final notice", due_at, channel_mention=final_notice_mention(plan))


# How one page of a step stands: its DM still being sent (or retried), posted, or refused for good.
PageOutcome = Literal["under_way", "delivered", "failed"]


class EarlyEscalation(StrEnum):
    """Whether a page that failed for good brings the next step forward now, and why (not)."""

    NOBODY_REACHABLE = "nobody on the step could be paged"
    SOMEONE_PAGED = "a page of the step reached someone or is still being sent"
    PAGERDUTY = "the step also pages through PagerDuty"
    NOT_WAITING = "the step is not the one waiting for an acknowledgement"


def early_escalation(
    step: EscalationStep | PlannedStep | None, outcomes: Collection[PageOutcome], *, waiting: bool
) -> EarlyEscalation:
    """After a page of `step` failed for good: fire the next step now only when no page of the step
    can still reach anyone. Waiting out the step's delay then only delays the page that can.

    `outcomes`: every page of the step. `waiting`: the incident is unacknowledged and `step` is the
    last step fired (the one whose acknowledgement window is running); a page outside the plan
    (`step` None: paged by hand) never moves it."""
    if step is None or not waiting:
        return EarlyEscalation.NOT_WAITING
    if pagerduty_keys(step):
        return EarlyEscalation.PAGERDUTY  # PagerDuty's own escalation may still reach someone
    if outcomes and all(outcome == "failed" for outcome in outcomes):
        return EarlyEscalation.NOBODY_REACHABLE
    return EarlyEscalation.SOMEONE_PAGED
