"""One rotation file (`rotations/<name>.yaml`): the rotation, its layers, overrides and policy.

Layer members may repeat (`[mike, mike, lisa, lisa]` gives a two-week manager turn on a weekly
rotation); a single name is a one-member layer. Times are local to the rotation's `timezone`
unless written with an offset. `handoff:` is `clock` (default: same local handoff times across
DST, for lengths that divide a day or are whole days) or `elapsed` (exact hours); another length
without `handoff: elapsed` is a warning, not a problem (see bot/core/rotations.py).
`source: pagerduty` replaces layers with a PagerDuty schedule or escalation policy id (fetched by
a later integration). The policy is parsed in `escalation.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from bot.catalog.escalation import parse_policy
from bot.catalog.rotation_keys import parse_admins, parse_channel, parse_reminder, parse_usergroups
from bot.catalog.yaml_lines import Checker, YList, YMap
from bot.core.escalation import EscalationPolicy
from bot.core.local_time import local_to_utc
from bot.core.rotations import HandoffRule, Override, PagerDutySource, Person, Rotation, keeps_clock_time

MIN_SHIFT = timedelta(minutes=1)  # anything shorter is a typo ('1m' for '1w')
_FILE_KEYS = ("escalation", "repeat", "ack_timeout")
_ROTATION_KEYS = (
    "name",
    "description",
    "timezone",
    "start",
    "shift",
    "handoff",
    "layers",
    "overrides",
    "source",
    "admins",
    "channel",
    "handoff_reminder",
    "slack_usergroup",
)
_HANDOFF_RULES = ("clock", "elapsed")
_PD_KEYS = ("schedule_id", "escalation_policy_id")


@dataclass(frozen=True)
class RotationFile:
    rotation: Rotation
    policy: EscalationPolicy
    name_line: int
    admins_line: int = 0  # where `admins:` is written (user groups are checked with Slack later)
    usergroup_line: int = 0  # where `slack_usergroup:` is written (the same)


def parse_rotation_file(data: Any, check: Checker, people: Mapping[str, Person]) -> RotationFile | None:
    top = check.mapping(data, getattr(data, "line", 1), "a rotation file")
    if top is None:
        return None
    check.keys(top, "the rotation file", required=("rotation",), optional=_FILE_KEYS)
    body = (
        check.mapping(top.get("rotation"), top.line_of("rotation"), "`rotation`")
        if "rotation" in top
        else None
    )
    if body is None:
        return None
    before = len(check.problems)
    rotation = _rotation(body, check, people)
    if rotation is None:
        return None
    policy = parse_policy(top, check, rotation, people)
    if policy is None or len(check.problems) > before:
        return None
    return RotationFile(
        rotation,
        policy,
        body.line_of("name"),
        body.line_of("admins") if "admins" in body else 0,
        body.line_of("slack_usergroup") if "slack_usergroup" in body else 0,
    )


def _rotation(m: YMap, check: Checker, people: Mapping[str, Person]) -> Rotation | None:
    source = check.text(m, "source", "rotation") or "file"
    if source not in ("file", "pagerduty"):
        check.problem(m.line_of("source"), f"rotation `source` must be 'file' or 'pagerduty', not {source!r}")
        return None
    if source == "pagerduty":
        return _pagerduty_rotation(m, check)
    check.keys(
        m, "rotation", required=("name", "timezone", "start", "shift", "layers"), optional=_ROTATION_KEYS
    )
    name = check.text(m, "name", "rotation")
    tz = check.zone(m, "timezone", "rotation")
    shift = check.duration(m, "shift", "rotation")
    if shift is not None and shift < MIN_SHIFT:
        check.problem(m.line_of("shift"), f"rotation `shift` {m.raw.get('shift')!r} is shorter than 1m")
        shift = None
    layers = _layers(m, check, people) if "layers" in m else None
    rule = _handoff_rule(m, check, shift)
    if name is None or tz is None or shift is None or layers is None or rule is None:
        return None
    zone = ZoneInfo(tz)
    start = _local_time(m, "start", check, zone)
    overrides = _overrides(m, check, zone, layers, people)
    admins, channel = parse_admins(m, check, people), parse_channel(m, check)
    reminder, groups = parse_reminder(m, check, shift), parse_usergroups(m, check, layers)
    if start is None or overrides is None or admins is None or channel is False:
        return None
    if reminder is None or groups is None:
        return None
    return Rotation(
        name,
        tz,
        start,
        shift,
        layers,
        overrides,
        handoff_rule=rule,
        admins=admins,
        channel=channel or None,
        handoff_reminder=reminder,
        slack_usergroups=groups,
    )


def _handoff_rule(m: YMap, check: Checker, shift: timedelta | None) -> HandoffRule | None:
    """`handoff: clock` (default: same local times across DST) or `elapsed` (exact hours). A length
    with no fixed local time (36h) is elapsed time either way: a warning unless the file says so."""
    rule = check.text(m, "handoff", "rotation") if "handoff" in m else "clock"
    if rule is None:
        return None
    if rule not in _HANDOFF_RULES:
        check.problem(
            m.line_of("handoff"),
            f"rotation `handoff` must be 'clock' (same local times across DST) or 'elapsed' "
            f"(exact hours), not {rule!r}",
        )
        return None
    if shift is None or keeps_clock_time(shift):
        return "clock" if rule == "clock" else "elapsed"
    length = m.raw.get("shift", "")
    if "handoff" in m and rule == "clock":
        check.problem(
            m.line_of("handoff"),
            f"`handoff: clock` needs a shift that divides a day or is whole days (1h, 8h, 12h, 1d, 1w); "
            f"{length} has no fixed local time: write `handoff: elapsed` or change the shift",
        )
        return None
    if "handoff" not in m:
        check.warning(
            m.line_of("shift"),
            f"`shift` {length} neither divides a day nor is whole days, so handoffs are elapsed time "
            "and their local time moves from day to day and at DST changes; write `handoff: elapsed` "
            "if that is intended, or use a length such as 8h, 12h, 1d or 1w",
        )
    return "elapsed"


def _pagerduty_rotation(m: YMap, check: Checker) -> Rotation | None:
    check.keys(
        m, "PagerDuty rotation", required=("name",), optional=("description", "timezone", "source", *_PD_KEYS)
    )
    name = check.text(m, "name", "rotation")
    tz = check.zone(m, "timezone", "rotation") if "timezone" in m else "UTC"
    ids = {k: check.text(m, k, "rotation") for k in _PD_KEYS}
    if not any(k in m for k in _PD_KEYS):
        check.problem(
            m.line, "a rotation with `source: pagerduty` needs `schedule_id` or `escalation_policy_id`"
        )
        return None
    if name is None or tz is None or any(k in m and v is None for k, v in ids.items()):
        return None
    ref = PagerDutySource(ids["schedule_id"], ids["escalation_policy_id"])
    return Rotation(name, tz, None, None, {}, (), source="pagerduty", pagerduty=ref)


def _layers(m: YMap, check: Checker, people: Mapping[str, Person]) -> dict[str, tuple[str, ...]] | None:
    raw = check.mapping(m["layers"], m.line_of("layers"), "`layers`")
    if raw is None:
        return None
    if not raw:
        check.problem(m.line_of("layers"), "`layers` needs at least one layer, e.g. `primary: [alex, sarah]`")
        return None
    layers: dict[str, tuple[str, ...]] = {}
    for layer, value in raw.items():
        line = raw.line_of(layer)
        if isinstance(value, YList):
            members = [(value.raw[i], value.lines[i]) for i in range(len(value))]
        elif isinstance(value, str) and value.strip():
            members = [(raw.raw[layer], raw.value_lines[layer])]
        else:
            check.problem(line, f"layer {layer!r} must list people, e.g. `{layer}: [alex, sarah]`")
            continue
        if not members:
            check.problem(line, f"layer {layer!r} has no members")
            continue
        for who, member_line in members:
            if who is None or who not in people:
                check.problem(member_line, f"layer {layer!r}: {_unknown_person(who, people)}")
        layers[layer] = tuple(who or "" for who, _ in members)
    return layers if len(layers) == len(raw) else None


def _overrides(
    m: YMap,
    check: Checker,
    zone: ZoneInfo,
    layers: Mapping[str, tuple[str, ...]],
    people: Mapping[str, Person],
) -> tuple[Override, ...] | None:
    if "overrides" not in m or m["overrides"] is None:
        return ()
    items = m["overrides"]
    if not isinstance(items, YList):
        check.problem(m.line_of("overrides"), "`overrides` must be a list of {layer, who, from, until}")
        return None
    before = len(check.problems)
    found: list[tuple[Override, int]] = []
    for item, line in zip(items, items.lines, strict=True):
        o = check.mapping(item, line, "an override")
        if o is None or not check.keys(
            o, "override", required=("layer", "who", "from", "until"), optional=("reason",)
        ):
            continue
        layer, who = check.text(o, "layer", "override"), check.text(o, "who", "override")
        if layer is not None and layer not in layers:
            check.problem(
                o.line_of("layer"), f"override names unknown layer {layer!r} (layers: {', '.join(layers)})"
            )
        if who is not None and who not in people:
            check.problem(o.line_of("who"), f"override: {_unknown_person(who, people)}")
        start, end = _instant(o, "from", check, zone), _instant(o, "until", check, zone)
        if start is not None and end is not None and end <= start:
            check.problem(o.line_of("until"), "override `until` must be later than `from`")
        elif layer in layers and who in people and start is not None and end is not None:
            found.append((Override(layer, who, start, end), o.line))
    found.sort(key=lambda pair: (pair[0].layer, pair[0].start))
    for (prev, prev_line), (cur, line) in pairwise(found):
        if prev.layer == cur.layer and prev.end > cur.start:
            check.problem(line, f"override overlaps the {cur.layer!r} override at line {prev_line}")
    return tuple(o for o, _ in found) if len(check.problems) == before else None


def _parse_time(m: YMap, key: str, check: Checker) -> datetime | None:
    raw = check.text(m, key, "time")
    if raw is None:
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        check.problem(
            m.line_of(key), f"`{key}`: {raw!r} is not a time like 2026-11-02T09:00 (or with an offset)"
        )
        return None


def _local_time(m: YMap, key: str, check: Checker, zone: ZoneInfo) -> datetime | None:
    """Naive local wall time; an explicit offset is converted into the rotation's zone."""
    t = _parse_time(m, key, check)
    if t is None or t.tzinfo is None:
        return t
    return t.astimezone(zone).replace(tzinfo=None)


def _instant(m: YMap, key: str, check: Checker, zone: ZoneInfo) -> datetime | None:
    t = _parse_time(m, key, check)
    if t is None:
        return None
    return local_to_utc(t, zone) if t.tzinfo is None else t.astimezone(UTC)


def _unknown_person(who: str | None, people: Mapping[str, Person]) -> str:
    if who is None:
        return "each member must be a person's name"
    return f"unknown person {who!r} (not in people.yaml)"
