"""The permission policy as pure rules: roles per action, the sentences, page DMs, the declare rate."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.escalation import EscalationPolicy, EscalationStep, Target
from bot.core.permissions import (
    COMMANDERS,
    POLICY,
    Action,
    Facts,
    Rate,
    Role,
    decide,
    may_declare,
    membership_would_allow,
    parse_rate,
    rotation_people,
)
from bot.core.rotations import Override, Rotation

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
STRANGER = Facts(actor="U0STRANGER", lead="U0LEAD", paged=frozenset({"U0PAGED"}), rotation="platform")
COMMANDER_ACTIONS = [a for a, roles in POLICY.items() if roles == COMMANDERS]


def test_every_action_has_a_rule_and_the_rules_are_the_issue_s():
    assert set(POLICY) == set(Action)
    anyone = {a for a, roles in POLICY.items() if Role.ANYONE in roles}
    assert anyone == {Action.DECLARE, Action.STATUS, Action.LIST, Action.TIMELINE, Action.ONCALL}
    assert set(COMMANDER_ACTIONS) == {
        Action.RESOLVE,
        Action.CLOSE,
        Action.REOPEN,
        Action.SEVERITY,
        Action.LEAD,
        Action.ESCALATE,
        Action.PAGE,
        Action.SILENCE,
        Action.POSTMORTEM,
    }
    assert {Role.LEAD, Role.PAGED, Role.ROTATION, Role.ADMIN} == COMMANDERS
    for action in (Action.ACK, Action.NOTE, Action.ACTION_ITEM):
        assert POLICY[action] == COMMANDERS | {Role.MEMBER}
    assert POLICY[Action.PAGE_OUTSIDER] == {Role.LEAD, Role.ADMIN}


@pytest.mark.parametrize("action", COMMANDER_ACTIONS)
def test_a_stranger_is_refused_with_who_may(action):
    decision = decide(action, STRANGER)
    assert not decision.allowed
    assert decision.reason.startswith(
        "Only the lead, people paged for this incident, members of the platform rotation and admins may "
    )
    assert decide(Action.RESOLVE, STRANGER).reason.endswith("may resolve it.")


@pytest.mark.parametrize(
    "facts",
    [
        replace(STRANGER, actor="U0LEAD"),
        replace(STRANGER, actor="U0PAGED"),
        replace(STRANGER, rotation_members=frozenset({"U0STRANGER"})),
        replace(STRANGER, admins=frozenset({"U0STRANGER"})),
    ],
    ids=["lead", "paged", "rotation", "admin"],
)
def test_each_commander_role_may_resolve(facts):
    assert decide(Action.RESOLVE, facts).allowed


def test_channel_members_may_work_an_incident_but_not_command_it():
    member = replace(STRANGER, in_channel=True)
    for action in (Action.ACK, Action.NOTE, Action.ACTION_ITEM, Action.RUNBOOK_STEP):
        assert decide(action, member).allowed, action
    assert not decide(Action.RESOLVE, member).allowed
    assert decide(Action.ACK, STRANGER).reason == (
        "Only the lead, people paged for this incident, members of the incident channel, members of the "
        "platform rotation and admins may acknowledge it."
    )
    # Whether asking Slack who is in the channel could change the answer.
    assert membership_would_allow(Action.ACK, STRANGER)
    assert not membership_would_allow(Action.RESOLVE, STRANGER)


def test_paging_someone_outside_people_yaml_needs_the_lead_or_an_admin():
    paged = replace(STRANGER, actor="U0PAGED")
    assert decide(Action.PAGE, paged).allowed
    refused = decide(Action.PAGE_OUTSIDER, paged)
    assert refused.reason == "Only the lead and admins may page someone who is not in people.yaml."
    assert decide(Action.PAGE_OUTSIDER, replace(STRANGER, actor="U0LEAD")).allowed


def test_a_page_dm_acts_only_for_its_recipient_even_for_admins():
    clicked = replace(STRANGER, actor="U0ADMIN", admins=frozenset({"U0ADMIN"}), via_page=True)
    for recipient, who in (("U0PAGED", "<@U0PAGED>"), (None, "someone else")):
        decision = decide(Action.ACK, replace(clicked, page_recipient=recipient))
        assert decision == decide(Action.ESCALATE, replace(clicked, page_recipient=recipient))
        assert not decision.allowed
        assert decision.reason == (
            f"This page was sent to {who}; only they can act on it. Use the incident channel."
        )
    assert decide(Action.ACK, replace(clicked, actor="U0PAGED", page_recipient="U0PAGED")).allowed


def test_rotation_names_are_escaped_in_the_sentence():
    assert (
        "members of the a&lt;b rotation" in decide(Action.RESOLVE, replace(STRANGER, rotation="a<b")).reason
    )


def test_without_a_rotation_channel_members_command_in_its_place():
    unrouted = replace(STRANGER, rotation=None)  # e.g. a PagerDuty incident: PagerDuty pages for it
    assert decide(Action.RESOLVE, unrouted).reason == (
        "Only the lead, people paged for this incident, members of the incident channel and admins may "
        "resolve it."
    )
    assert decide(Action.ACK, unrouted).reason == (
        "Only the lead, people paged for this incident, members of the incident channel and admins may "
        "acknowledge it."
    )
    assert decide(Action.RESOLVE, replace(unrouted, in_channel=True)).allowed
    assert not decide(Action.RESOLVE, replace(STRANGER, in_channel=True)).allowed  # routed: not enough
    assert membership_would_allow(Action.RESOLVE, unrouted)


@given(action=st.sampled_from(list(Action)), actor=st.sampled_from(["U1", "U2", "W3"]))
def test_admins_may_do_everything_and_anyone_may_read(action, actor):
    assert decide(action, Facts(actor=actor, admins=frozenset({actor}))).allowed
    assert decide(action, Facts(actor=actor)).allowed == (Role.ANYONE in POLICY[action])


def test_rotation_people_are_its_layers_overrides_and_named_steps():
    rotation = Rotation(
        name="platform",
        timezone="UTC",
        start=datetime(2026, 11, 23),
        shift=timedelta(weeks=1),
        layers={"primary": ("alex", "sarah"), "manager": ("mike",)},
        overrides=(Override("primary", "david", T0, T0 + timedelta(days=1)),),
    )
    policy = EscalationPolicy(
        steps=(
            EscalationStep(after=timedelta(0), targets=(Target.layer("primary"),)),
            EscalationStep(after=timedelta(minutes=30), targets=(Target.person("vp-eng"),)),
        )
    )
    assert rotation_people(rotation, policy) == {"alex", "sarah", "mike", "david", "vp-eng"}
    assert rotation_people(rotation, None) == {"alex", "sarah", "mike", "david"}


def test_parse_rate():
    assert parse_rate("5/10m") == Rate(5, timedelta(minutes=10))
    assert parse_rate(" 30 / 1h ") == Rate(30, timedelta(hours=1))
    assert str(parse_rate("5/10m")) == "5 per 10m"
    for bad in ("", "5", "0/10m", "-1/10m", "5/0", "5/10", "five/10m", "5/10m/2"):
        with pytest.raises(ValueError):
            parse_rate(bad)


def test_declaring_past_the_rate_is_refused_until_the_oldest_leaves_the_window():
    rate = Rate(5, timedelta(minutes=10))
    recent = [T0 + timedelta(minutes=i) for i in range(5)]
    assert may_declare(recent[:4], rate, T0 + timedelta(minutes=5)).allowed
    refused = may_declare(recent, rate, T0 + timedelta(minutes=5))
    assert not refused.allowed
    assert refused.reason.startswith("You declared 5 incidents in the last 10m, as many as one person may")
    assert "Try again in 5m" in refused.reason
    assert may_declare(recent, rate, T0 + timedelta(minutes=10)).allowed  # the first is 10m old
