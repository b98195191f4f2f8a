"""Changing who is on call from Slack: who may, and what a new override does to the ones it meets.

Who may change a rotation's on-call for a span (add an override, remove one, take a swap):
  * the person taking the shift,
  * a person being covered (on call in that layer at some moment of the span),
  * the rotation's `admins:` (people keys, Slack user IDs, or user groups `S…` asked through
    `in_group`), and the bot's admins (INCIDENT_ADMINS, the same kinds of entries).
The first that applies is the reason (a decision carries its reason); none: `OnCallNotAllowed`.

Overrides made from Slack never overlap within a layer. A new one that meets others is refused,
naming the first, unless every one it meets was made by the same Slack user: then it replaces
them (people correct their own overrides by asking again).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.core.errors import IncidentBotError

SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")
USER_GROUP = re.compile(r"S[A-Z0-9]{2,}")

# (Slack user, user group) -> member? The production answer is a cached usergroups.users.list.
InGroup = Callable[[str, str], bool]


class OnCallNotAllowed(IncidentBotError):
    """The person asking may not change this part of the schedule (the message says who may)."""


class Why(StrEnum):
    TAKER = "takes the shift"
    COVERED = "is the person covered"
    ROTATION_ADMIN = "is an admin of the rotation"
    ADMIN = "is an incident admin"


@dataclass(frozen=True)
class Actor:
    slack_user: str
    person: str | None  # their people.yaml key, when they have one


def never_in_group(user: str, group: str) -> bool:
    return False


def is_listed(actor: Actor, entries: Collection[str], in_group: InGroup) -> bool:
    """`entries` (people keys, Slack user IDs, user groups) name the actor."""
    for entry in entries:
        if USER_GROUP.fullmatch(entry):
            if in_group(actor.slack_user, entry):
                return True
        elif entry in (actor.slack_user, actor.person):
            return True
    return False


def why_allowed(
    actor: Actor,
    *,
    taker: str,
    covered: Collection[str],
    rotation_admins: Collection[str],
    admins: Collection[str],
    in_group: InGroup = never_in_group,
) -> Why | None:
    """The reason `actor` may make this change, or None. `in_group` is asked only when needed."""
    if actor.person is not None and actor.person == taker:
        return Why.TAKER
    if actor.person is not None and actor.person in covered:
        return Why.COVERED
    if is_listed(actor, rotation_admins, in_group):
        return Why.ROTATION_ADMIN
    if is_listed(actor, admins, in_group):
        return Why.ADMIN
    return None


def require_allowed(
    actor: Actor,
    rotation: str,
    *,
    taker: str,
    covered: Collection[str],
    rotation_admins: Collection[str],
    admins: Collection[str],
    in_group: InGroup = never_in_group,
) -> Why:
    """`why_allowed`, or OnCallNotAllowed saying who may."""
    why = why_allowed(
        actor,
        taker=taker,
        covered=covered,
        rotation_admins=rotation_admins,
        admins=admins,
        in_group=in_group,
    )
    if why is None:
        whom = ", ".join(sorted({taker, *covered}))
        raise OnCallNotAllowed(
            f"Only the people concerned ({whom}), the admins of {rotation} and incident admins "
            "may change this part of the schedule."
        )
    return why


@dataclass(frozen=True)
class Existing:
    """An override made from Slack, as far as conflicts go."""

    id: int
    layer: str
    who: str
    start: datetime
    end: datetime
    created_by: str  # Slack user


@dataclass(frozen=True)
class Placement:
    replaces: tuple[Existing, ...] = ()
    conflict: Existing | None = None  # set: refused because of this one


def place(
    layer: str, start: datetime, end: datetime, asked_by: str, existing: Sequence[Existing]
) -> Placement:
    """Where a new override of `layer` over [start, end), asked by Slack user `asked_by`, fits."""
    meets = sorted(
        (e for e in existing if e.layer == layer and e.start < end and start < e.end),
        key=lambda e: e.start,
    )
    foreign = next((e for e in meets if e.created_by != asked_by), None)
    if foreign is not None:
        return Placement(conflict=foreign)
    return Placement(replaces=tuple(meets))
