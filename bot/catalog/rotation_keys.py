"""The optional rotation keys for on-call from Slack (issue 19), each checked with its line:

```yaml
rotation:
  admins: [mike, S0123ABCD]       # people keys or Slack user-group IDs: may change the on-call
  channel: C0123ABCD              # swap requests and handoff lines are posted here
  handoff_reminder: 1h            # DM the incoming person this long before their shift (0: off)
  slack_usergroup: S0456EFGH      # kept equal to whoever is on call, all layers
  # or per layer:
  # slack_usergroup: {primary: S0456EFGH, secondary: S0789IJKL}
```
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta

from bot.catalog.yaml_lines import Checker, YList, YMap
from bot.core.oncall_changes import USER_GROUP
from bot.core.rotations import Person

DEFAULT_REMINDER = timedelta(hours=1)
_CHANNEL = re.compile(r"[CG][A-Z0-9]{2,}")
_GROUP_HINT = "a Slack user-group ID like S0123ABCD (the group's profile -> ⋯ -> copy group ID)"


def parse_admins(m: YMap, check: Checker, people: Mapping[str, Person]) -> tuple[str, ...] | None:
    """`admins:` people keys or Slack user-group IDs (`S…`), a list or a single one."""
    if "admins" not in m:
        return ()
    value = m["admins"]
    if isinstance(value, YList):
        entries = [(value.raw[i], value.lines[i]) for i in range(len(value))]
    elif isinstance(value, YMap) or value is None or "admins" not in m.raw:
        entries = [(None, m.line_of("admins"))]
    else:
        entries = [(m.raw["admins"], m.value_lines["admins"])]
    before = len(check.problems)
    for raw, line in entries:
        if raw is None or not (raw in people or USER_GROUP.fullmatch(raw)):
            what = "each entry" if raw is None else repr(raw)
            check.problem(
                line,
                f"`admins`: {what} must be a person from people.yaml or a Slack user-group ID like S0123ABCD",
            )
    return tuple(raw for raw, _ in entries if raw) if len(check.problems) == before else None


def parse_channel(m: YMap, check: Checker) -> str | bool | None:
    """`channel:` a Slack channel ID (swap requests are posted there); False after a problem."""
    if "channel" not in m:
        return None
    channel = check.text(m, "channel", "rotation")
    if channel is None:
        return False
    if not _CHANNEL.fullmatch(channel):
        check.problem(
            m.line_of("channel"),
            f"rotation `channel` must be a channel ID like C0123ABCD (channel details -> copy the ID), "
            f"not {channel!r}",
        )
        return False
    return channel


def parse_reminder(m: YMap, check: Checker, shift: timedelta | None) -> timedelta | None:
    """`handoff_reminder:` a duration before the shift (`0`: no reminder); default 1h. One that is
    not shorter than an explicitly written reminder's shift is a warning (it would come right after
    the previous handoff)."""
    if "handoff_reminder" not in m:
        return DEFAULT_REMINDER
    reminder = check.duration(m, "handoff_reminder", "rotation", positive=False)
    if reminder is not None and shift is not None and reminder >= shift:
        check.warning(
            m.line_of("handoff_reminder"),
            f"`handoff_reminder` {m.raw.get('handoff_reminder')} is not shorter than the shift "
            f"{m.raw.get('shift')}: each reminder comes right after the previous handoff",
        )
    return reminder


def parse_usergroups(
    m: YMap, check: Checker, layers: Mapping[str, tuple[str, ...]] | None
) -> dict[str, tuple[str, ...]] | None:
    """`slack_usergroup:` one group for the whole rotation, or a mapping layer -> group.
    Returns group -> the layers it holds ({} when absent), None after a problem."""
    if "slack_usergroup" not in m:
        return {}
    value = m["slack_usergroup"]
    all_layers = tuple(layers or ())
    if not isinstance(value, YMap):
        group = check.text(m, "slack_usergroup", "rotation")
        if group is None:
            return None
        if not USER_GROUP.fullmatch(group):
            line = m.line_of("slack_usergroup")
            check.problem(line, f"rotation `slack_usergroup` must be {_GROUP_HINT}, not {group!r}")
            return None
        return {group: all_layers}
    before = len(check.problems)
    groups: dict[str, tuple[str, ...]] = {}
    for layer in value:
        group = check.text(value, layer, "`slack_usergroup`")
        line = value.line_of(layer)
        if layers is not None and layer not in layers:
            check.problem(
                line, f"`slack_usergroup` names unknown layer {layer!r} (layers: {', '.join(all_layers)})"
            )
        elif group is not None and not USER_GROUP.fullmatch(group):
            check.problem(line, f"`slack_usergroup` of layer {layer!r} must be {_GROUP_HINT}, not {group!r}")
        elif group is not None and group in groups:
            check.problem(line, f"`slack_usergroup` {group} is given to two layers; one group per layer")
        elif group is not None:
            groups[group] = (layer,)
    return groups if len(check.problems) == before else None
