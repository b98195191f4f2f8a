"""People as the text names them: one person however they were referred to, by their display name.

The bot meets the same person as a people.yaml key (`david`), a Slack actor (`slack:U01DAVID`), a
mention (`<@U01DAVID>`, from `/incident page @david`), a Slack ID learned by email lookup (a page
row of `sarah` delivered to U02SARAH) or an email address. `People.key` turns each into the
people.yaml key, `People.name` into what text shows: the `display_name` (else the key). References
to nobody in people.yaml are still named readably: `pagerduty:Jane` is "Jane (PagerDuty)", an
unknown Slack user "@U0123".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from bot.core.rotations import Person

SLACK_ACTOR = "slack:"
PAGERDUTY_ACTOR = "pagerduty:"
PAGERDUTY_LEVEL = "pagerduty:level"  # a page for PagerDuty's on-call at a level, until looked up
_SLACK_ID = re.compile(r"[UW][A-Z0-9]+")
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


def slack_user_of(ref: str | None) -> str | None:
    """The Slack user ID in `slack:U1`, `<@U1>`, `<@U1|alex>` or a bare `U1`; else None."""
    if not ref:
        return None
    ref = ref.strip()
    if ref.startswith(SLACK_ACTOR):
        ref = ref.removeprefix(SLACK_ACTOR)
    elif mention := _MENTION.fullmatch(ref):
        ref = mention.group(1)
    return ref if _SLACK_ID.fullmatch(ref) else None


@dataclass(frozen=True)
class People:
    """people.yaml, indexed by every way a person is referred to."""

    by_key: Mapping[str, Person] = field(default_factory=dict)
    learned: Mapping[str, str] = field(default_factory=dict)  # Slack ID -> key, from delivered pages
    _by_slack: dict[str, str] = field(init=False, repr=False, compare=False)
    _by_email: dict[str, str] = field(init=False, repr=False, compare=False)
    _names: frozenset[str] = field(init=False, repr=False, compare=False)  # keys, and people learned

    def __post_init__(self) -> None:
        by_slack = {p.slack_id: key for key, p in self.by_key.items() if p.slack_id}
        by_email = {p.email.lower(): key for key, p in self.by_key.items() if p.email}
        object.__setattr__(self, "_by_slack", {**self.learned, **by_slack})
        object.__setattr__(self, "_by_email", by_email)
        object.__setattr__(self, "_names", frozenset(self.by_key) | frozenset(self.learned.values()))

    def learn(self, pairs: Iterable[tuple[str | None, str]]) -> People:
        """Also know these (Slack ID, person) pairs: a page row's person (a key, not a mention) and
        the Slack user it was delivered to, so a person found by email is known by their ID too."""
        extra = {
            user: person
            for user, person in pairs
            if user and person and slack_user_of(person) is None and not person.startswith(PAGERDUTY_ACTOR)
        }
        return People(self.by_key, {**self.learned, **extra}) if extra else self

    def key(self, ref: str | None) -> str | None:
        """The people.yaml key (or learned person) `ref` refers to, or None for nobody known."""
        if not ref:
            return None
        ref = ref.strip()
        if ref in self._names:
            return ref
        if user := slack_user_of(ref):
            return self._by_slack.get(user)
        if "@" in ref and not ref.startswith(PAGERDUTY_ACTOR):
            return self._by_email.get(ref.lower().removeprefix("mailto:"))
        return None

    def person(self, ref: str | None) -> Person | None:
        key = self.key(ref)
        return self.by_key.get(key) if key else None

    def name(self, ref: str | None, default: str = "someone") -> str:
        """What plain text calls `ref` (not escaped): the display name, else a readable fallback."""
        if not ref:
            return default
        key = self.key(ref)
        if key is not None:
            known = self.by_key.get(key)
            return (known.display_name or known.name) if known else key
        return unknown_name(ref)

    def zone(self, ref: str | None) -> str | None:
        """The person's own time zone from people.yaml, if they gave one."""
        known = self.person(ref)
        return known.timezone if known else None

    def slack_id(self, ref: str | None) -> str | None:
        """The person's Slack ID: written in `ref`, in people.yaml or learned from a page."""
        user = slack_user_of(ref)
        if user:
            return user
        key = self.key(ref)
        known = self.by_key.get(key) if key else None
        if known and known.slack_id:
            return known.slack_id
        return next((u for u, k in self._by_slack.items() if k == key), None) if key else None


def unknown_name(ref: str) -> str:
    """A readable name for a reference to nobody in people.yaml (never a `pagerduty:` prefix)."""
    if ref.startswith(PAGERDUTY_LEVEL) and ref.removeprefix(PAGERDUTY_LEVEL).isdigit():
        return f"PagerDuty's on-call at level {ref.removeprefix(PAGERDUTY_LEVEL)}"
    if ref.startswith(PAGERDUTY_ACTOR):
        agent = ref.removeprefix(PAGERDUTY_ACTOR).strip()
        return "PagerDuty" if agent in ("", "PagerDuty") else f"{agent} (PagerDuty)"
    if user := slack_user_of(ref):
        return f"@{user}"
    return ref
