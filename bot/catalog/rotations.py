"""Load `rotations/`: people.yaml, routes.yaml and one file per rotation, into core objects.

Every problem is reported at once with file and line (`incidentbot check` prints them all); the
catalog is returned only when there are none. Rotation files are read in file-name order.
A missing people.yaml or routes.yaml is not itself a problem: without routes every alert goes to
the fallback rotation. Having no default route is fine too: alerts that match no route go to the
first rotation (by file name); `Catalog.rotation_for` applies that rule.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.catalog.escalation import SEVERITIES, canonical_severity
from bot.catalog.people import parse_people
from bot.catalog.rotation_file import parse_rotation_file
from bot.catalog.yaml_lines import Checker, YList, YMap, load_yaml
from bot.core.errors import ConfigProblem
from bot.core.escalation import EscalationPolicy
from bot.core.notify_rules import NotifyRule
from bot.core.rotations import Person, Rotation
from bot.core.routing import Route, compile_anchored, route

PEOPLE_FILES = ("people.yaml", "people.yml")
ROUTES_FILES = ("routes.yaml", "routes.yml")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")  # Prometheus label names


@dataclass(frozen=True)
class Catalog:
    people: dict[str, Person]
    rotations: dict[str, Rotation]  # in file-name order; the first is the fallback
    policies: dict[str, EscalationPolicy]  # by rotation name
    routes: list[Route]
    # Where each rotation's `admins:` is written (file, line): Slack is asked about user groups later.
    admins_at: dict[str, tuple[str, int]] = dataclasses.field(default_factory=dict)
    default_notify: tuple[NotifyRule, ...] | None = None  # people.yaml `defaults.notify`
    people_file: str = "rotations/people.yaml"  # where people are, for problems found later
    # Where each rotation's `slack_usergroup:` is written (file, line), for the same reason.
    usergroups_at: dict[str, tuple[str, int]] = dataclasses.field(default_factory=dict)

    def rotation_for(self, labels: Mapping[str, str]) -> tuple[Rotation, Route | None]:
        """The routed rotation and the route that chose it; unrouted alerts go to the first rotation."""
        matched = route(labels, self.routes)
        if matched is not None:
            return self.rotations[matched.rotation], matched
        return next(iter(self.rotations.values())), None


def load_rotations(
    directory: Path, warnings: list[ConfigProblem] | None = None
) -> tuple[Catalog | None, list[ConfigProblem]]:
    """The catalog, or None and every problem. Warnings (doubtful but valid settings, which never
    stop a load) are appended to `warnings` when given."""
    problems: list[ConfigProblem] = []
    if not directory.is_dir():
        return None, [ConfigProblem(str(directory), 0, f"rotations directory {directory} not found")]
    files = sorted(
        p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and not p.name.startswith(".")
    )
    people_path = _special(files, PEOPLE_FILES, problems)
    routes_path = _special(files, ROUTES_FILES, problems)
    people, default_notify = _people(people_path, problems) if people_path else ({}, None)
    rotations: dict[str, Rotation] = {}
    policies: dict[str, EscalationPolicy] = {}
    defined_at: dict[str, str] = {}
    admins_at: dict[str, tuple[str, int]] = {}
    usergroups_at: dict[str, tuple[str, int]] = {}
    group_owner: dict[str, str] = {}  # a user group is kept by one rotation only
    broken: set[str] = set()  # rotations with problems: routes naming them are not reported again
    for path in files:
        if path.name in PEOPLE_FILES or path.name in ROUTES_FILES:
            continue
        check = Checker(_display(path), problems, warnings)
        data = _load(path, check)
        parsed = parse_rotation_file(data, check, people) if data is not None else None
        if parsed is None:
            broken.add(_declared_name(data) or path.stem)
            continue
        name = parsed.rotation.name
        if name in rotations:
            check.problem(parsed.name_line, f"duplicate rotation name {name!r} (also in {defined_at[name]})")
            continue
        rotations[name] = parsed.rotation
        policies[name] = parsed.policy
        defined_at[name] = f"{_display(path)}:{parsed.name_line}"
        admins_at[name] = (_display(path), parsed.admins_line)
        usergroups_at[name] = (_display(path), parsed.usergroup_line)
        for group in parsed.rotation.slack_usergroups:
            if group in group_owner:
                check.problem(
                    parsed.usergroup_line,
                    f"`slack_usergroup` {group} is also kept by rotation {group_owner[group]!r}; "
                    "one rotation per group (they would overwrite each other)",
                )
            group_owner.setdefault(group, name)
    if not rotations and not problems:
        problems.append(ConfigProblem(directory.name, 0, "no rotation files (e.g. platform.yaml) found"))
    routes = _routes(routes_path, set(rotations) | broken, problems) if routes_path else []
    if problems:
        return None, problems
    people_file = _display(people_path) if people_path else "rotations/people.yaml"
    return (
        Catalog(people, rotations, policies, routes, admins_at, default_notify, people_file, usergroups_at),
        [],
    )


def _declared_name(data: Any) -> str | None:
    body = data.get("rotation") if isinstance(data, YMap) else None
    name = body.get("name") if isinstance(body, YMap) else None
    return name if isinstance(name, str) else None


def _display(path: Path) -> str:
    """`rotations/platform.yaml`: short, and the same form the runbook loader uses."""
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def _load(path: Path, check: Checker) -> Any:
    """The parsed file, or None after reporting a syntax error or an empty file."""
    before = len(check.problems)
    data = load_yaml(path, check.file, check.problems)
    if data is None and len(check.problems) == before:
        check.problem(1, "the file is empty")
    return data


def _special(files: list[Path], names: tuple[str, ...], problems: list[ConfigProblem]) -> Path | None:
    found = [p for p in files if p.name in names]
    if len(found) > 1:
        problems.append(
            ConfigProblem(_display(found[1]), 0, f"both {found[0].name} and {found[1].name} exist; keep one")
        )
    return found[0] if found else None


def _people(
    path: Path, problems: list[ConfigProblem]
) -> tuple[dict[str, Person], tuple[NotifyRule, ...] | None]:
    check = Checker(_display(path), problems)
    data = _load(path, check)
    top = check.mapping(data, 1, path.name) if data is not None else None
    if top is None or not check.keys(top, "people.yaml", required=("people",), optional=("defaults",)):
        return {}, None
    return parse_people(top, check)


def _routes(path: Path, rotations: Collection[str], problems: list[ConfigProblem]) -> list[Route]:
    check = Checker(_display(path), problems)
    data = _load(path, check)
    top = check.mapping(data, 1, path.name) if data is not None else None
    if top is None or not check.keys(top, "routes.yaml", required=("routes",)):
        return []
    items = top["routes"]
    if not isinstance(items, YList):
        check.problem(top.line_of("routes"), "`routes` must be a list of {match, rotation}")
        return []
    routes: list[Route] = []
    default_line = 0
    for item, line in zip(items, items.lines, strict=True):
        parsed = _route(item, line, check, rotations)
        if parsed is None:
            continue
        if default_line:
            check.problem(
                line, f"route can never match: the default route at line {default_line} matches first"
            )
        elif parsed.default:
            default_line = line
        routes.append(parsed)
    return routes


def _route(item: Any, line: int, check: Checker, rotations: Collection[str]) -> Route | None:
    m = check.mapping(item, line, "a route")
    optional = ("match", "match_re", "default", "runbook", "severity")
    if m is None or not check.keys(m, "route", required=("rotation",), optional=optional):
        return None
    before = len(check.problems)
    rotation = check.text(m, "rotation", "route")
    if rotation is not None and rotation not in rotations:
        known = ", ".join(sorted(rotations)) or "none loaded"
        check.problem(
            m.line_of("rotation"), f"route names unknown rotation {rotation!r} (rotations: {known})"
        )
    default = m.get("default", False)
    if not isinstance(default, bool):
        check.problem(m.line_of("default"), "`default` must be true or false")
    match = _labels(m, "match", check)
    match_re: dict[str, re.Pattern[str]] = {}
    for label, pattern in _labels(m, "match_re", check).items():
        try:
            match_re[label] = compile_anchored(pattern)
        except re.error as exc:
            check.problem(m["match_re"].line_of(label), f"invalid regex for {label!r}: {exc}")
    if default is True and (match or match_re):
        check.problem(
            m.line_of("default"), "a default route matches everything; drop `match`/`match_re` or `default`"
        )
    if default is not True and not match and not match_re and len(check.problems) == before:
        check.problem(line, "route has no `match` or `match_re`; write `default: true` to catch every alert")
    if rotation is None or len(check.problems) > before:
        return None
    runbook, severity = check.text(m, "runbook", "route"), check.text(m, "severity", "route")
    if severity is not None:
        if canonical_severity(severity) is None:
            known = ", ".join(SEVERITIES)
            check.problem(m.line_of("severity"), f"route: unknown severity {severity!r} ({known})")
            return None
        severity = canonical_severity(severity)
    return Route(
        match=match,
        match_re=match_re,
        default=default is True,
        rotation=rotation,
        runbook=runbook,
        severity=severity,
        line=line,
    )


def _labels(m: YMap, key: str, check: Checker) -> dict[str, str]:
    if key not in m:
        return {}
    labels = check.mapping(m[key], m.line_of(key), f"`{key}`")
    out: dict[str, str] = {}
    for label in labels or {}:
        assert labels is not None
        if not _LABEL.fullmatch(label):
            check.problem(labels.line_of(label), f"{label!r} is not a valid label name")
        elif isinstance(labels[label], YMap | YList) or label not in labels.raw:
            check.problem(labels.line_of(label), f"`{key}` value for {label!r} must be text")
        else:
            out[label] = labels.raw[label]
    return out
