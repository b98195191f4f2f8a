"""A rotation file's escalation policy: steps, repeat and per-severity ack timeouts.

Accepted shapes (plain YAML cannot mix a list and a key under `escalation:`):
  escalation: {steps: [...], repeat: 1, ack_timeout: {SEV1: 5m}}     # preferred
  escalation: [...]            with `repeat:` / `ack_timeout:` beside it at the top level
Giving `repeat` or `ack_timeout` in both places is a problem. A `notify` name is looked up as a layer
of the rotation, then as a person; a name that is both must be written `{layer: x}` or `{person: x}`;
`{pagerduty_routing_key: k}` triggers PagerDuty. Without `escalation:` a file rotation pages its
first layer at 0m, and a PagerDuty-sourced rotation has no steps (PagerDuty escalates).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, cast

from bot.catalog.yaml_lines import Checker, YList, YMap
from bot.core.escalation import ChannelMention, EscalationPolicy, EscalationStep, Target
from bot.core.incident import Severity
from bot.core.rotations import Person, Rotation

SEVERITIES: tuple[str, ...] = tuple(s.value for s in Severity)
MAX_REPEAT = 10  # more rounds than this is a paging loop, not a policy


def parse_policy(
    top: YMap, check: Checker, rotation: Rotation, people: Mapping[str, Person]
) -> EscalationPolicy | None:
    before = len(check.problems)
    esc = top.get("escalation")
    settings: dict[str, tuple[YMap, Any]] = {k: (top, top[k]) for k in ("repeat", "ack_timeout") if k in top}
    steps: list[EscalationStep | None]
    if "escalation" not in top:
        steps = list(_default_steps(rotation))
    else:
        if isinstance(esc, YMap):
            check.keys(esc, "escalation", required=("steps",), optional=("repeat", "ack_timeout"))
            for key in ("repeat", "ack_timeout"):
                if key in esc and key in settings:
                    check.problem(
                        top.line_of(key), f"`{key}` is given both inside `escalation` and beside it"
                    )
                elif key in esc:
                    settings[key] = (esc, esc[key])
            steps_value, steps_line = esc.get("steps"), esc.line_of("steps")
        else:
            steps_value, steps_line = esc, top.line_of("escalation")
        if not isinstance(steps_value, YList) or not steps_value:
            check.problem(steps_line, "escalation steps must be a non-empty list of {after, notify}")
            return None
        lines = steps_value.lines
        steps = [
            _step(item, line, check, rotation, people) for item, line in zip(steps_value, lines, strict=True)
        ]
        for i in range(1, len(steps)):
            a, b = steps[i - 1], steps[i]
            if a is not None and b is not None and b.after <= a.after:
                check.problem(lines[i], "escalation step `after` must be later than the previous step's")
    repeat = _repeat(settings.get("repeat"), check)
    timeouts = _ack_timeouts(settings.get("ack_timeout"), check)
    if len(check.problems) > before or repeat is None or timeouts is None:
        return None
    return EscalationPolicy(tuple(cast(list[EscalationStep], steps)), repeat, timeouts)


def _default_steps(rotation: Rotation) -> tuple[EscalationStep, ...]:
    if rotation.source == "pagerduty":
        return ()  # PagerDuty runs its own escalation policy
    return (EscalationStep(timedelta(0), (Target.layer(next(iter(rotation.layers))),)),)


def _repeat(setting: tuple[YMap, Any] | None, check: Checker) -> int | None:
    if setting is None:
        return 0
    where, value = setting
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_REPEAT:
        check.problem(where.line_of("repeat"), f"`repeat` must be a whole number from 0 to {MAX_REPEAT}")
        return None
    return value


def _ack_timeouts(setting: tuple[YMap, Any] | None, check: Checker) -> dict[str, timedelta] | None:
    if setting is None:
        return {}
    where, value = setting
    m = check.mapping(value, where.line_of("ack_timeout"), "`ack_timeout`")
    if m is None:
        return None
    found: dict[str, timedelta | None] = {}
    for key in m:
        severity = canonical_severity(key)
        if severity is None:
            check.problem(m.line_of(key), f"ack_timeout: unknown severity {key!r} ({', '.join(SEVERITIES)})")
        found[severity or key] = check.duration(m, key, "ack_timeout")
    return None if any(v is None for v in found.values()) else cast(dict[str, timedelta], found)


def canonical_severity(name: str) -> str | None:
    """'sev1' -> 'SEV1'; None for anything that is not one of our severities."""
    return next((s for s in SEVERITIES if s.casefold() == name.strip().casefold()), None)


def _step(
    item: Any, line: int, check: Checker, rotation: Rotation, people: Mapping[str, Person]
) -> EscalationStep | None:
    m = check.mapping(item, line, "an escalation step")
    if m is None or not check.keys(
        m, "escalation step", required=("after",), optional=("notify", "channel_mention")
    ):
        return None
    after = check.duration(m, "after", "escalation step", positive=False)
    mention = check.text(m, "channel_mention", "escalation step")
    if mention is not None and mention not in ("here", "channel"):
        check.problem(
            m.line_of("channel_mention"), f"`channel_mention` must be 'here' or 'channel', not {mention!r}"
        )
        return None
    if "notify" not in m and mention is None:
        check.problem(m.line, "an escalation step needs `notify` or `channel_mention`")
        return None
    targets = _targets(m, check, rotation, people) if "notify" in m else ()
    if after is None or targets is None:
        return None
    return EscalationStep(after, targets, cast(ChannelMention | None, mention))


def _targets(
    m: YMap, check: Checker, rotation: Rotation, people: Mapping[str, Person]
) -> tuple[Target, ...] | None:
    value = m["notify"]
    if isinstance(value, YList):
        entries = [(value[i], value.raw[i], value.lines[i]) for i in range(len(value))]
    else:
        entries = [(value, m.raw.get("notify"), m.value_lines["notify"])]
    targets = [_target(v, raw, line, check, rotation, people) for v, raw, line in entries]
    if not entries:
        check.problem(m.line_of("notify"), "`notify` is empty")
        return None
    return None if any(t is None for t in targets) else tuple(cast(list[Target], targets))


def _target(
    value: Any, raw: str | None, line: int, check: Checker, rotation: Rotation, people: Mapping[str, Person]
) -> Target | None:
    layers = rotation.layers
    if isinstance(value, YMap):
        if len(value) != 1 or next(iter(value)) not in ("layer", "person", "pagerduty_routing_key"):
            check.problem(
                line, "a notify mapping is one of {layer: x}, {person: x}, {pagerduty_routing_key: k}"
            )
            return None
        kind = next(iter(value))
        name = check.text(value, kind, "notify")
        if name is None:
            return None
        if kind == "layer" and name not in layers:
            check.problem(line, f"notify: rotation {rotation.name!r} has no layer {name!r}")
        elif kind == "person" and name not in people:
            check.problem(line, f"notify: {_unknown_person(name, people)}")
        else:
            return Target(kind, name)
        return None
    if raw is None or isinstance(value, YList) or not raw.strip():
        check.problem(line, "notify entries are layer or person names (or {pagerduty_routing_key: ...})")
        return None
    name = raw.strip()
    if name in layers and name in people:
        check.problem(
            line,
            f"notify {name!r} is both a layer and a person; write {{layer: {name}}} or {{person: {name}}}",
        )
        return None
    if name in layers:
        return Target.layer(name)
    if name in people:
        return Target.person(name)
    known = f"layers: {', '.join(layers)}; " if layers else ""
    check.problem(line, f"notify: unknown layer or person {name!r} ({known}people come from people.yaml)")
    return None


def _unknown_person(who: str, people: Mapping[str, Person]) -> str:
    return f"unknown person {who!r} (not in people.yaml)"
