"""Personal notification rules: how to reach a person while their page is unacknowledged.

A person lists rules in people.yaml (`notify: [{after: 0m, via: [slack, ntfy]}, {after: 2m, via:
email}]`); without them they get `defaults.notify`, and without that a Slack DM at once (the
behaviour before rules existed). A rule may be limited to severities. Rules run inside an
escalation step: the step's own timer still escalates when nobody acknowledges.

The decisions here are pure (time is a parameter):
  * `rules_for`: the rules that apply to one person and one severity, in time order;
  * `after_failure`: a method failed for good; which later rule, if any, comes forward to now,
    and whether the person is now out of reach altogether;
  * `contact_for`: the address a method uses for a person (None: they have none);
  * `dnd_paused`: whether Slack's `dnd.info` answer means the person's notifications are held now.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Literal, Protocol

METHODS = ("slack", "email", "sms", "voice", "ntfy", "pushover", "webhook")
Method = Literal["slack", "email", "sms", "voice", "ntfy", "pushover", "webhook"]

E164 = re.compile(r"\+[1-9][0-9]{6,14}")
EMAIL = re.compile(r"[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;.]{2,}")
NTFY_TOPIC = re.compile(r"[-_A-Za-z0-9]{1,64}")  # ntfy's own rule for topic names


@dataclass(frozen=True)
class NotifyRule:
    after: timedelta  # since the person was paged
    via: tuple[str, ...]
    severities: frozenset[str] = frozenset()  # empty: every severity
    line: int = field(default=0, compare=False)  # where it was written, for `incidentbot check`

    def applies_to(self, severity: str | None) -> bool:
        if not self.severities:
            return True
        return severity is not None and severity.casefold() in {s.casefold() for s in self.severities}


# Today's behaviour for people without rules: a Slack DM at once.
SLACK_NOW = (NotifyRule(timedelta(0), ("slack",)),)


class Contacts(Protocol):
    """What the rules need to know of a person (bot.core.rotations.Person has it)."""

    slack_id: str | None
    email: str | None
    phone: str | None
    ntfy: str | None
    pushover: str | None
    webhook: str | None
    notify: tuple[NotifyRule, ...] | None


def contact_for(person: Contacts, method: str) -> str | None:
    """The person's address for `method`; Slack also works through the email (looked up)."""
    if method == "slack":
        return person.slack_id or person.email
    if method in ("sms", "voice"):
        return person.phone
    return {
        "email": person.email,
        "ntfy": person.ntfy,
        "pushover": person.pushover,
        "webhook": person.webhook,
    }.get(method)


def rules_for(
    person: Contacts, defaults: Sequence[NotifyRule] | None, severity: str | None
) -> tuple[NotifyRule, ...]:
    """The rules that reach `person` for an incident of `severity`, earliest first.

    Their own rules, else the defaults, else a Slack DM at once. Methods the person has no address
    for are dropped (`incidentbot check` reports them), and so are rules left with none. If no rule
    applies to this severity, the person still gets a Slack DM at once: a page must reach someone."""
    chosen = person.notify if person.notify is not None else (tuple(defaults) if defaults else SLACK_NOW)
    usable = []
    for rule in chosen:
        if not rule.applies_to(severity):
            continue
        via = tuple(m for m in dict.fromkeys(rule.via) if contact_for(person, m))
        if via:
            usable.append(NotifyRule(rule.after, via, rule.severities, rule.line))
    return tuple(sorted(usable, key=lambda r: r.after)) or SLACK_NOW


# How one notification (one method of one rule) stands.
NotificationStatus = Literal["pending", "sent", "failed", "cancelled"]


@dataclass(frozen=True)
class RuleState:
    """One rule of one page: whether its time has come (`fired`) and how its methods stand."""

    index: int
    fired: bool
    statuses: tuple[NotificationStatus, ...] = ()


class FailureStep(StrEnum):
    """What a method that failed for good leads to, with the reason."""

    NEXT_RULE = "the person's next rule is tried at once"
    LATER_RULE_FIRED = "a later rule is already under way"
    NO_MORE_RULES = "no rule is left to try"


@dataclass(frozen=True)
class FailureDecision:
    step: FailureStep
    bring_forward: int | None  # the rule to fire now
    unreachable: bool  # every method of every rule failed: the page failed


def after_failure(failed_rule: int, rules: Collection[RuleState]) -> FailureDecision:
    """A method of rule `failed_rule` failed for good (a 4xx, retries exhausted in its window).

    The next rule comes forward only while nothing after the failed rule has fired: a failure of
    an earlier rule that arrives late must not rush the rules after the one already under way.
    The page is unreachable once no rule is left to fire and every notification failed."""
    later = sorted((r for r in rules if r.index > failed_rule), key=lambda r: r.index)
    pending = [r for r in later if not r.fired]
    all_failed = all(s == "failed" for r in rules if r.fired for s in r.statuses)
    if any(r.fired for r in later):
        return FailureDecision(FailureStep.LATER_RULE_FIRED, None, False)
    if pending:
        return FailureDecision(FailureStep.NEXT_RULE, pending[0].index, False)
    return FailureDecision(FailureStep.NO_MORE_RULES, None, all_failed)


def dnd_paused(info: Mapping[str, object], now_ts: float) -> bool:
    """Whether Slack's `dnd.info` answer says notifications are paused at `now_ts` (Unix seconds).

    Asked about another user (a bot always is), Slack answers only the schedule: `dnd_enabled`
    with the next window `next_dnd_start_ts`..`next_dnd_end_ts`; the `snooze_*` fields come only
    for the calling user, and are honoured when present."""

    def number(key: str) -> float:
        value = info.get(key)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0

    if info.get("snooze_enabled") is True and number("snooze_endtime") > now_ts:
        return True
    return info.get("dnd_enabled") is True and number("next_dnd_start_ts") <= now_ts < number(
        "next_dnd_end_ts"
    )
