"""Who may act on an incident: one table of actions and the roles allowed to take them.

The service gathers the facts (who leads, who was paged, who is in the channel or the rotation,
who administers the bot) inside the use case's transaction; `decide` turns them into a Decision
whose refusal says who may. Slash commands, buttons and forms all reach the same use cases, so
they all obey this one table.

An incident routed to no rotation (PagerDuty's incidents: PagerDuty runs their paging, and the bot
does not know whom it paged) is commanded by the members of its channel in the rotation's place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from bot.core.durations import format_duration, parse_duration
from bot.core.escalation import EscalationPolicy
from bot.core.rotations import Rotation
from bot.core.text import escape


class Role(StrEnum):
    ANYONE = "anyone"
    MEMBER = "member"  # of the incident channel
    LEAD = "lead"
    PAGED = "paged"  # for this incident
    ROTATION = "rotation"  # the one the incident routed to
    ADMIN = "admin"  # INCIDENT_ADMINS


class Action(StrEnum):
    DECLARE = "declare"
    STATUS = "status"
    LIST = "list"
    TIMELINE = "timeline"
    ONCALL = "oncall"
    ACK = "ack"
    NOTE = "note"
    ACTION_ITEM = "action"
    RUNBOOK = "runbook"
    RUNBOOK_STEP = "runbook_step"
    RESOLVE = "resolve"
    CLOSE = "close"
    REOPEN = "reopen"
    SEVERITY = "sev"
    LEAD = "lead"
    ESCALATE = "escalate"
    PAGE = "page"
    PAGE_OUTSIDER = "page_outsider"  # page someone who is not in people.yaml
    SILENCE = "silence"
    POSTMORTEM = "postmortem"


# Whoever may command an incident may also work it (admins may do everything).
COMMANDERS = frozenset({Role.LEAD, Role.PAGED, Role.ROTATION, Role.ADMIN})
RESPONDERS = COMMANDERS | {Role.MEMBER}
EVERYONE = frozenset({Role.ANYONE})

POLICY: dict[Action, frozenset[Role]] = {
    **dict.fromkeys((Action.DECLARE, Action.STATUS, Action.LIST, Action.TIMELINE, Action.ONCALL), EVERYONE),
    **dict.fromkeys(
        (Action.ACK, Action.NOTE, Action.ACTION_ITEM, Action.RUNBOOK, Action.RUNBOOK_STEP), RESPONDERS
    ),
    **dict.fromkeys(
        (Action.RESOLVE, Action.CLOSE, Action.REOPEN, Action.SEVERITY, Action.LEAD, Action.ESCALATE),
        COMMANDERS,
    ),
    **dict.fromkeys((Action.PAGE, Action.SILENCE, Action.POSTMORTEM), COMMANDERS),
    Action.PAGE_OUTSIDER: frozenset({Role.LEAD, Role.ADMIN}),
}

# What the refusal says people may do: "Only ... may <verb>."
_VERBS: dict[Action, str] = {
    Action.ACK: "acknowledge it",
    Action.NOTE: "add notes to it",
    Action.ACTION_ITEM: "add action items to it",
    Action.RUNBOOK: "post its runbook again",
    Action.RUNBOOK_STEP: "tick off its runbook steps",
    Action.RESOLVE: "resolve it",
    Action.CLOSE: "close it",
    Action.REOPEN: "reopen it",
    Action.SEVERITY: "change its severity",
    Action.LEAD: "name its lead",
    Action.ESCALATE: "escalate it",
    Action.PAGE: "page people for it",
    Action.PAGE_OUTSIDER: "page someone who is not in people.yaml",
    Action.SILENCE: "silence its alerts",
    Action.POSTMORTEM: "write its post-mortem",
}
_ORDER = (Role.LEAD, Role.PAGED, Role.MEMBER, Role.ROTATION, Role.ADMIN)


@dataclass(frozen=True)
class Facts:
    """What the service knows about the person acting and the incident (Slack user IDs)."""

    actor: str
    lead: str | None = None
    paged: frozenset[str] = frozenset()
    in_channel: bool = False
    rotation: str | None = None
    rotation_members: frozenset[str] = frozenset()
    admins: frozenset[str] = frozenset()
    # The click came from a page DM (its buttons act only for the person it was sent to).
    via_page: bool = False
    page_recipient: str | None = None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


def roles(facts: Facts) -> frozenset[Role]:
    held = {Role.ANYONE}
    if facts.in_channel:
        held.add(Role.MEMBER)
    if facts.lead == facts.actor:
        held.add(Role.LEAD)
    if facts.actor in facts.paged:
        held.add(Role.PAGED)
    if facts.actor in facts.rotation_members or (facts.rotation is None and facts.in_channel):
        held.add(Role.ROTATION)
    if facts.actor in facts.admins:
        held.add(Role.ADMIN)
    return frozenset(held)


def decide(action: Action, facts: Facts) -> Decision:
    if facts.via_page and facts.actor != facts.page_recipient:
        to = f"<@{facts.page_recipient}>" if facts.page_recipient else "someone else"
        return Decision(
            False, f"This page was sent to {to}; only they can act on it. Use the incident channel."
        )
    allowed = POLICY[action]
    held = roles(facts) & allowed
    if held:
        return Decision(True, f"allowed as {min(held, key=_rank).value}")
    return Decision(False, f"Only {who_may(action, facts.rotation)} may {_VERBS[action]}.")


def membership_would_allow(action: Action, facts: Facts) -> bool:
    """Refused now, but allowed if the actor turned out to be in the channel (worth asking Slack)."""
    return not decide(action, facts).allowed and decide(action, replace(facts, in_channel=True)).allowed


def who_may(action: Action, rotation: str | None) -> str:
    channel = "members of the incident channel"
    names = {
        Role.LEAD: "the lead",
        Role.PAGED: "people paged for this incident",
        Role.MEMBER: channel,
        # Without a rotation, the channel's members stand in for it.
        Role.ROTATION: f"members of the {escape(rotation)} rotation" if rotation else channel,
        Role.ADMIN: "admins",
    }
    said = list(dict.fromkeys(names[role] for role in _ORDER if role in POLICY[action]))
    return said[0] if len(said) == 1 else ", ".join(said[:-1]) + " and " + said[-1]


def _rank(role: Role) -> int:
    return _ORDER.index(role) if role in _ORDER else len(_ORDER)


def rotation_people(rotation: Rotation, policy: EscalationPolicy | None) -> frozenset[str]:
    """Everyone a rotation can page (person keys): its layers, overrides and named steps."""
    names = {person for members in rotation.layers.values() for person in members}
    names |= {o.who for o in rotation.overrides}
    if policy is not None:
        names |= {t.value for step in policy.steps for t in step.targets if t.kind == "person"}
    return frozenset(names)


# -- declaring: a per-person rate ---------------------------------------------------------------------

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\S+)\s*$")


@dataclass(frozen=True)
class Rate:
    count: int
    window: timedelta

    def __str__(self) -> str:
        return f"{self.count} per {format_duration(self.window)}"


def parse_rate(text: str) -> Rate:
    """`5/10m` -> 5 per 10 minutes. ValueError on anything else (a count of 0 or less too)."""
    match = _RATE.match(text)
    if not match or int(match.group(1)) < 1:
        raise ValueError(f"a rate is <count>/<duration> like 5/10m, not {text!r}")
    window = parse_duration(match.group(2))
    if window <= timedelta(0):
        raise ValueError(f"the window of {text!r} must be longer than 0")
    return Rate(int(match.group(1)), window)


def may_declare(recent: list[datetime], rate: Rate, now: datetime) -> Decision:
    """`recent`: when this person declared incidents, oldest first (at least those in the window)."""
    inside = [at for at in recent if now - at < rate.window]
    if len(inside) < rate.count:
        return Decision(True, f"{len(inside)} declared in the last {format_duration(rate.window)}")
    wait = inside[-rate.count] + rate.window - now  # until enough of them have left the window
    declared = f"{len(inside)} incident{'' if len(inside) == 1 else 's'}"
    return Decision(
        False,
        f"You declared {declared} in the last {format_duration(rate.window)}, as many as one person may "
        f"({rate}). Try again in {format_duration(wait)}, or ask the on-call people in the channels "
        "already open.",
    )
