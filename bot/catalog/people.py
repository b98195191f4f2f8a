"""people.yaml: who people are, how to reach them, and their notification rules.

```yaml
defaults:
  notify: [{after: 0m, via: slack}, {after: 5m, via: [slack, email]}]
people:
  alex:
    slack: U01ALEX
    email: alex@example.com
    phone: "+14155550100"          # E.164
    ntfy: alex-pages                 # a topic on NTFY_URL, or https://ntfy.example.com/alex-pages
    pushover: uQiRzpo4DXghDmr9QzzfQu27cmVRsG
    webhook: https://hooks.example.com/page-alex
    notify:
      - {after: 0m, via: [slack, ntfy]}
      - {after: 2m, via: sms, severity: [SEV1]}
```
Every problem is reported with its line; which providers are configured is checked later
(`provider_problems`), since that depends on settings and not on the file.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import replace
from itertools import pairwise
from typing import Any
from urllib.parse import urlsplit

from bot.catalog.escalation import SEVERITIES, canonical_severity
from bot.catalog.yaml_lines import Checker, YList, YMap
from bot.core.errors import ConfigProblem
from bot.core.notify_rules import E164, EMAIL, METHODS, NTFY_TOPIC, NotifyRule, contact_for
from bot.core.rotations import Person

_SLACK_ID = re.compile(r"[UW][A-Z0-9]{2,}")
_PUSHOVER_KEY = re.compile(r"[A-Za-z0-9]{30}")
PERSON_KEYS = ("slack", "email", "timezone", "display_name", "phone", "ntfy", "pushover", "webhook", "notify")
RULE_KEYS = ("after", "via", "severity")


def parse_people(top: YMap, check: Checker) -> tuple[dict[str, Person], tuple[NotifyRule, ...] | None]:
    """The people and `defaults.notify` (None when not given)."""
    defaults = _defaults(top, check)
    entries = check.mapping(top["people"], top.line_of("people"), "`people`")
    people: dict[str, Person] = {}
    seen: dict[tuple[str, str], str] = {}  # (field, value) -> first person, to catch copy-paste slips
    for name, value in (entries or {}).items():
        line = entries.line_of(name) if entries is not None else 0
        m = check.mapping(value, line, f"person {name!r}")
        if m is None:
            people[name] = Person(name)  # known, so rotations naming them do not repeat the problem
            continue
        people[name] = _person(name, m, line, check, seen)
    return people, defaults


def _defaults(top: YMap, check: Checker) -> tuple[NotifyRule, ...] | None:
    if "defaults" not in top:
        return None
    m = check.mapping(top["defaults"], top.line_of("defaults"), "`defaults`")
    if m is None or not check.keys(m, "`defaults`", optional=("notify",)) or "notify" not in m:
        return None
    return notify_rules(m, check, "`defaults`")


def _person(name: str, m: YMap, line: int, check: Checker, seen: dict[tuple[str, str], str]) -> Person:
    what = f"person {name!r}"
    check.keys(m, what, optional=PERSON_KEYS)
    slack, email = check.text(m, "slack", what), check.text(m, "email", what)
    tz = check.zone(m, "timezone", what) if "timezone" in m else None
    if slack is not None and not _SLACK_ID.fullmatch(slack):
        check.problem(
            m.line_of("slack"), f"{what}: `slack` must be a member ID like U01ABCDEF, not {slack!r}"
        )
    if email is not None and not EMAIL.fullmatch(email):
        check.problem(m.line_of("email"), f"{what}: `email` {email!r} is not an email address")
    if "slack" not in m and "email" not in m:
        check.problem(line, f"{what} needs `slack` (member ID) or `email` (to look the ID up)")
    # A phone is also who an SMS reply comes from: two people cannot share one.
    phone, ntfy = _phone(m, check, what), _ntfy(m, check, what)
    for key, val in (("slack", slack), ("email", email and email.lower()), ("phone", phone)):
        if val is not None and (key, val) in seen:
            check.problem(m.line_of(key), f"{what} has the same {key} as {seen[key, val]!r}")
        elif val is not None:
            seen[key, val] = name
    pushover, webhook = _pushover(m, check, what), _webhook(m, check, what)
    person = Person(
        name, slack, email, tz, check.text(m, "display_name", what), phone, ntfy, pushover, webhook
    )
    if "notify" not in m:
        return person
    rules = notify_rules(m, check, what)
    for rule in rules or ():
        for method in rule.via:
            if contact_for(person, method) is None:
                check.problem(rule.line, f"{what}: `notify` uses {method} but {_needs(method)} is not set")
    return replace(person, notify=rules)


def _needs(method: str) -> str:
    return {"slack": "`slack` or `email`", "sms": "`phone`", "voice": "`phone`"}.get(method, f"`{method}`")


def _phone(m: YMap, check: Checker, what: str) -> str | None:
    phone = check.text(m, "phone", what)
    if phone is not None and not E164.fullmatch(phone):
        check.problem(
            m.line_of("phone"),
            f'{what}: `phone` {phone!r} is not an E.164 number (like "+14155550100": +, country code, '
            "digits only; quote it)",
        )
        return None
    return phone


def _ntfy(m: YMap, check: Checker, what: str) -> str | None:
    topic = check.text(m, "ntfy", what)
    if topic is None:
        return None
    if topic.startswith(("https://", "http://")):
        parts = urlsplit(topic)
        if parts.scheme == "https" and parts.hostname and NTFY_TOPIC.fullmatch(parts.path.strip("/")):
            return topic
        check.problem(m.line_of("ntfy"), f"{what}: `ntfy` URL {topic!r} must be https://<server>/<topic>")
        return None
    if not NTFY_TOPIC.fullmatch(topic):
        check.problem(
            m.line_of("ntfy"),
            f"{what}: `ntfy` topic {topic!r} may hold only letters, digits, - and _ (64 at most)",
        )
        return None
    return topic


def _pushover(m: YMap, check: Checker, what: str) -> str | None:
    key = check.text(m, "pushover", what)
    if key is not None and not _PUSHOVER_KEY.fullmatch(key):
        check.problem(m.line_of("pushover"), f"{what}: `pushover` must be a 30-character user key")
        return None
    return key


def _webhook(m: YMap, check: Checker, what: str) -> str | None:
    url = check.text(m, "webhook", what)
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        check.problem(m.line_of("webhook"), f"{what}: `webhook` {url!r} must be an http(s) URL")
        return None
    return url


def notify_rules(m: YMap, check: Checker, what: str) -> tuple[NotifyRule, ...] | None:
    """`notify:` of a person or of `defaults` (None after a problem)."""
    items = m["notify"]
    if not isinstance(items, YList) or not items:
        check.problem(m.line_of("notify"), f"{what}: `notify` must be a list of {{after, via}} rules")
        return None
    before = len(check.problems)
    rules = [_rule(item, line, check, what) for item, line in zip(items, items.lines, strict=True)]
    if len(check.problems) > before:
        return None
    ok = [r for r in rules if r is not None]
    for earlier, later in pairwise(ok):
        if later.after < earlier.after:
            check.problem(later.line, f"{what}: `notify` rules must be in time order (`after` increasing)")
            return None
    return tuple(ok)


def _rule(item: Any, line: int, check: Checker, what: str) -> NotifyRule | None:
    rule = check.mapping(item, line, f"{what}: a `notify` rule")
    if rule is None or not check.keys(rule, "a `notify` rule", required=("after", "via"), optional=RULE_KEYS):
        return None
    after = check.duration(rule, "after", f"{what}: rule", positive=False)
    via = _names(rule, "via", check)
    unknown = [v for v in via if v not in METHODS]
    if unknown:
        known = ", ".join(METHODS)
        check.problem(rule.line_of("via"), f"{what}: unknown `via` {', '.join(unknown)} (known: {known})")
        return None
    severities = _names(rule, "severity", check) if "severity" in rule else []
    canonical = [canonical_severity(s) for s in severities]
    if None in canonical:
        bad = [s for s, c in zip(severities, canonical, strict=True) if c is None]
        check.problem(
            rule.line_of("severity"), f"{what}: unknown severity {', '.join(bad)} ({', '.join(SEVERITIES)})"
        )
        return None
    if after is None or not via:
        return None
    return NotifyRule(after, tuple(via), frozenset(c for c in canonical if c), line)


def _names(m: YMap, key: str, check: Checker) -> list[str]:
    """A name or a list of names."""
    value = m[key]
    if isinstance(value, YList):
        names = [raw.strip() if raw else "" for raw in value.raw]
        if not names or not all(names):
            check.problem(m.line_of(key), f"`{key}` must be a name or a list of names")
            return []
        return names
    text = check.text(m, key, "a `notify` rule")
    return [text] if text else []


def provider_problems(
    file: str,
    people: dict[str, Person],
    defaults: tuple[NotifyRule, ...] | None,
    missing: dict[str, str],
) -> list[ConfigProblem]:
    """Rules that name a method whose provider is not configured. `missing`: method -> the
    settings it needs (methods that are configured are not in it)."""
    problems = []
    named: list[tuple[str, NotifyRule]] = [("`defaults`", r) for r in defaults or ()]
    named += [(f"person {p.name!r}", r) for p in people.values() for r in p.notify or ()]
    for who, rule in named:
        for method in rule.via:
            if method in missing:
                text = f"{who}: `notify` uses {method}, which needs {missing[method]}"
                problems.append(ConfigProblem(file, rule.line, text))
    return problems


def uses(people: Collection[Person], defaults: tuple[NotifyRule, ...] | None) -> set[str]:
    """Every method any rule names."""
    rules = [*(defaults or ()), *(r for p in people for r in p.notify or ())]
    return {m for r in rules for m in r.via}
