import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.catalog.rotations import load_rotations
from bot.core.errors import ConfigProblem
from bot.core.escalation import Target, schedule
from bot.core.rotations import on_call, on_call_all

SHIPPED = Path(__file__).resolve().parent.parent / "rotations"

PEOPLE = """\
people:
  alex:  {slack: U01ALEX, email: alex@example.com, timezone: America/Los_Angeles}
  sarah: {email: sarah@example.com}
  david: {slack: U01DAVID}
  mike:  {slack: U01MIKE}
"""

PLATFORM = """\
rotation:
  name: platform
  timezone: America/Los_Angeles
  start: 2026-11-02T09:00
  shift: 1w
  layers:
    primary: [alex, sarah, david]
    secondary: [sarah, david, alex]
    manager: [mike]
  overrides:
    - {layer: primary, who: david, from: 2026-11-24T09:00, until: 2026-11-25T09:00}
escalation:
  steps:
    - {after: 0m, notify: primary}
    - {after: 15m, notify: secondary}
    - {after: 30m, notify: manager}
    - {after: 60m, notify: [mike], channel_mention: here}
  repeat: 1
ack_timeout: {SEV1: 5m, SEV2: 1h}
"""

ROUTES = """\
routes:
  - {match: {team: platform}, rotation: platform}
  - {match_re: {service: "redis-.*"}, rotation: platform}
  - {default: true, rotation: platform}
"""


def write(directory: Path, **files: str) -> Path:
    """The valid base set, with some files replaced (text) or removed (empty string)."""
    directory.mkdir(exist_ok=True)
    contents = {"people.yaml": PEOPLE, "platform.yaml": PLATFORM, "routes.yaml": ROUTES}
    contents.update(
        {name.replace("_", ".", 1) if "." not in name else name: text for name, text in files.items()}
    )
    for name, text in contents.items():
        if text:
            (directory / name).write_text(textwrap.dedent(text))
    return directory


def only_problem(directory: Path) -> ConfigProblem:
    catalog, problems = load_rotations(directory)
    assert catalog is None
    assert len(problems) == 1, problems
    return problems[0]


def assert_problem(directory: Path, file: str, line: int, *fragments: str) -> None:
    problem = only_problem(directory)
    assert problem.file.endswith(file), problem
    assert problem.line == line, problem
    for fragment in fragments:
        assert fragment in problem.message, problem


def test_shipped_rotations_load_clean() -> None:
    warnings: list[ConfigProblem] = []
    catalog, problems = load_rotations(SHIPPED, warnings)
    assert problems == [] and warnings == []
    assert catalog is not None
    assert {"platform", "ai-platform", "data-platform"} <= set(catalog.rotations)
    assert any(p.slack_id is None and p.email for p in catalog.people.values())
    assert all(p.email is None or p.email.endswith("@example.com") for p in catalog.people.values())
    for team in ("platform", "ai-platform", "data-platform"):
        rotation, matched = catalog.rotation_for({"team": team})
        assert rotation.name == team and matched is not None
    assert catalog.rotation_for({"team": "unknown"})[1] is not None  # the shipped default route
    # Every layer of every rotation resolves to a known person at any time.
    at = datetime(2026, 12, 24, 3, tzinfo=UTC)
    for rotation in catalog.rotations.values():
        for shift in on_call_all(rotation, at).values():
            assert shift.person in catalog.people
    # The playbook's 4-week schedule: week 3 (from 2026-11-16) is david / alex / lisa.
    week3 = on_call_all(catalog.rotations["platform"], datetime(2026, 11, 18, tzinfo=UTC))
    assert [s.person for s in week3.values()] == ["david", "alex", "lisa"]


def test_base_set_loads_and_builds_core_objects(tmp_path: Path) -> None:
    catalog, problems = load_rotations(write(tmp_path))
    assert problems == [] and catalog is not None
    rotation = catalog.rotations["platform"]
    assert rotation.start == datetime(2026, 11, 2, 9) and rotation.shift == timedelta(weeks=1)
    assert rotation.layers["primary"] == ("alex", "sarah", "david")
    (override,) = rotation.overrides
    assert (override.start, override.end) == (
        datetime(2026, 11, 24, 17, tzinfo=UTC),
        datetime(2026, 11, 25, 17, tzinfo=UTC),
    )
    policy = catalog.policies["platform"]
    assert policy.repeat == 1 and policy.ack_timeout["SEV1"] == timedelta(minutes=5)
    assert policy.steps[3].targets == (Target.person("mike"),) and policy.steps[3].channel_mention == "here"
    assert len(schedule(policy, datetime(2026, 11, 24, tzinfo=UTC), "SEV1")) == 8
    assert catalog.people["sarah"].slack_id is None
    assert [r.line for r in catalog.routes] == [2, 3, 4]


def test_list_form_with_top_level_repeat(tmp_path: Path) -> None:
    text = (
        PLATFORM.replace("  steps:\n", "")
        .replace("    - {after", "  - {after")
        .replace("  repeat: 1\n", "repeat: 2\n")
    )
    catalog, problems = load_rotations(write(tmp_path, platform_yaml=text))
    assert problems == [] and catalog is not None
    assert catalog.policies["platform"].repeat == 2 and len(catalog.policies["platform"].steps) == 4


def test_mapping_form_with_repeat_beside_it_is_a_problem(tmp_path: Path) -> None:
    text = PLATFORM + "repeat: 2\n"
    assert_problem(write(tmp_path, platform_yaml=text), "platform.yaml", 20, "repeat", "both")


def test_no_default_route_is_fine_and_unrouted_alerts_go_to_the_first_rotation(tmp_path: Path) -> None:
    routes = "routes:\n  - {match: {team: platform}, rotation: platform}\n"
    other = PLATFORM.replace("name: platform", "name: aaa-first")
    catalog, problems = load_rotations(write(tmp_path, routes_yaml=routes, **{"a.yaml": other}))
    assert problems == [] and catalog is not None
    assert catalog.rotation_for({"team": "nobody"}) == (catalog.rotations["aaa-first"], None)
    assert catalog.rotation_for({"team": "platform"})[0].name == "platform"


def test_no_routes_file_at_all(tmp_path: Path) -> None:
    write(tmp_path)
    (tmp_path / "routes.yaml").unlink()
    catalog, problems = load_rotations(tmp_path)
    assert problems == [] and catalog is not None and catalog.routes == []


@pytest.mark.parametrize(
    ("file", "old", "new", "line", "fragments"),
    [
        # yaml syntax: the mark's line
        (
            "platform.yaml",
            "    primary: [alex, sarah, david]",
            "    primary: [alex, sarah, david",
            8,
            ("YAML syntax error",),
        ),
        # unknown key, with a suggestion
        ("platform.yaml", "  shift: 1w", "  shfit: 1w", 5, ("unknown key 'shfit'", "did you mean 'shift'")),
        # missing key: reported at the mapping
        ("platform.yaml", "  timezone: America/Los_Angeles\n", "", 2, ("missing required key 'timezone'",)),
        # bad durations
        ("platform.yaml", "  shift: 1w", "  shift: 1 week", 5, ("shift", "invalid duration")),
        ("platform.yaml", "  shift: 1w", "  shift: 0s", 5, ("longer than 0",)),
        ("platform.yaml", "{after: 15m,", "{after: 15,", 15, ("no unit",)),
        ("platform.yaml", "SEV2: 1h}", "SEV2: soon}", 19, ("ack_timeout", "invalid duration")),
        # bad time zones
        ("platform.yaml", "America/Los_Angeles", "America/Los Angeles", 3, ("unknown time zone",)),
        ("people.yaml", "America/Los_Angeles", "PST", 2, ("unknown time zone",)),
        # bad times
        ("platform.yaml", "start: 2026-11-02T09:00", "start: next monday", 4, ("not a time",)),
        # unknown person in a layer / override / notify
        ("platform.yaml", "[alex, sarah, david]", "[alex, sara, david]", 7, ("unknown person 'sara'",)),
        ("platform.yaml", "who: david", "who: dave", 11, ("unknown person 'dave'",)),
        ("platform.yaml", "notify: [mike]", "notify: [mike, bob]", 17, ("unknown layer or person 'bob'",)),
        # unknown layer in notify / override
        ("platform.yaml", "notify: manager}", "notify: {layer: managers}}", 16, ("no layer 'managers'",)),
        ("platform.yaml", "{layer: primary, who", "{layer: primry, who", 11, ("unknown layer 'primry'",)),
        # override until <= from
        ("platform.yaml", "until: 2026-11-25T09:00", "until: 2026-11-24T09:00", 11, ("later than `from`",)),
        # steps out of order, bad repeat, bad mention, unknown severity
        ("platform.yaml", "{after: 30m,", "{after: 10m,", 16, ("later than the previous",)),
        ("platform.yaml", "  repeat: 1", "  repeat: many", 18, ("repeat",)),
        ("platform.yaml", "channel_mention: here", "channel_mention: everyone", 17, ("'here' or 'channel'",)),
        ("platform.yaml", "{SEV1: 5m", "{P1: 5m", 19, ("unknown severity 'P1'",)),
        # the handoff rule: a known word, and `clock` only for lengths that have a fixed local time
        (
            "platform.yaml",
            "  shift: 1w",
            "  shift: 1w\n  handoff: sometimes",
            6,
            ("`handoff`", "'clock'", "'elapsed'", "'sometimes'"),
        ),
        ("platform.yaml", "  shift: 1w", "  shift: 36h\n  handoff: clock", 6, ("`handoff: clock`", "36h")),
        # duplicate keys are reported, not silently overwritten
        ("platform.yaml", "  shift: 1w", "  shift: 1w\n  shift: 1d", 6, ("duplicate key 'shift'", "line 5")),
        # routes
        (
            "routes.yaml",
            "rotation: platform}\n  - {match_re",
            "rotation: platfrom}\n  - {match_re",
            2,
            ("unknown rotation 'platfrom'",),
        ),
        ("routes.yaml", '"redis-.*"', '"redis-(.*"', 3, ("invalid regex for 'service'",)),
        ("routes.yaml", "{team: platform}", "{}", 2, ("no `match`",)),
        (
            "routes.yaml",
            "{default: true, rotation: platform}",
            "{default: true, match: {a: b}, rotation: platform}",
            4,
            ("default route",),
        ),
        (
            "routes.yaml",
            "{default: true, rotation: platform}",
            "{default: true, rotation: platform}\n  - {match: {a: b}, rotation: platform}",
            5,
            ("never match", "line 4"),
        ),
        (
            "routes.yaml",
            "rotation: platform}\n  - {match_re",
            "rotation: platform, severity: urgent}\n  - {match_re",
            2,
            ("unknown severity",),
        ),
        ("routes.yaml", "{team: platform}", "{team-name: platform}", 2, ("not a valid label name",)),
        # people
        (
            "people.yaml",
            "  david: {slack: U01DAVID}",
            "  david: {timezone: UTC}",
            4,
            ("needs `slack`", "or `email`"),
        ),
        ("people.yaml", "slack: U01DAVID", "slack: david", 4, ("member ID",)),
        ("people.yaml", "slack: U01DAVID", "slack: U01ALEX", 4, ("same slack as 'alex'",)),
        ("people.yaml", "{email: sarah@example.com}", "{email: sarah}", 3, ("not an email address",)),
        ("people.yaml", "{slack: U01MIKE}", "{slack: U01MIKE, pager: 555}", 5, ("unknown key 'pager'",)),
        ("people.yaml", "{slack: U01MIKE}", "{slack: U01MIKE, phone: 555}", 5, ("not an E.164 number",)),
    ],
)
def test_each_problem_has_its_file_and_line(
    tmp_path: Path, file: str, old: str, new: str, line: int, fragments: tuple[str, ...]
) -> None:
    base = {"people.yaml": PEOPLE, "platform.yaml": PLATFORM, "routes.yaml": ROUTES}[file]
    assert old in base, old
    directory = write(tmp_path, **{file: base.replace(old, new, 1)})
    assert_problem(directory, file, line, *fragments)


def test_overlapping_overrides(tmp_path: Path) -> None:
    text = PLATFORM.replace(
        "  overrides:\n",
        "  overrides:\n    - {layer: primary, who: alex, from: 2026-11-24T20:00, until: 2026-11-26T09:00}\n",
    )
    assert_problem(write(tmp_path, platform_yaml=text), "platform.yaml", 11, "overlaps", "line 12")


def test_explicit_offsets_are_honoured(tmp_path: Path) -> None:
    text = PLATFORM.replace("start: 2026-11-02T09:00", "start: 2026-11-02T17:00Z").replace(
        "until: 2026-11-25T09:00", "until: 2026-11-25T09:00+01:00"
    )
    catalog, problems = load_rotations(write(tmp_path, platform_yaml=text))
    assert problems == [] and catalog is not None
    rotation = catalog.rotations["platform"]
    assert rotation.start == datetime(2026, 11, 2, 9)  # 17:00 UTC is 09:00 PST
    assert rotation.overrides[0].end == datetime(2026, 11, 25, 8, tzinfo=UTC)
    assert on_call(rotation, "primary", datetime(2026, 11, 25, 7, tzinfo=UTC)).person == "david"


def test_duplicate_rotation_names(tmp_path: Path) -> None:
    directory = write(tmp_path, **{"zz-copy.yaml": PLATFORM})
    assert_problem(directory, "zz-copy.yaml", 2, "duplicate rotation name 'platform'", "platform.yaml:2")


def test_ambiguous_notify_name_must_be_spelled_out(tmp_path: Path) -> None:
    people = PEOPLE + "  manager: {slack: U01BOSS}\n"
    directory = write(tmp_path, people_yaml=people)
    assert_problem(directory, "platform.yaml", 16, "both a layer and a person")
    fixed = PLATFORM.replace("notify: manager}", "notify: {person: manager}}")
    catalog, problems = load_rotations(write(tmp_path, people_yaml=people, platform_yaml=fixed))
    assert problems == [] and catalog is not None
    assert catalog.policies["platform"].steps[2].targets == (Target.person("manager"),)


def test_pagerduty_targets_and_sources(tmp_path: Path) -> None:
    pd = """\
    rotation:
      name: ai-platform
      source: pagerduty
      schedule_id: PABC123
    escalation:
      steps:
        - {after: 0m, notify: [{pagerduty_routing_key: 0123456789abcdef0123456789abcdef}, alex]}
    """
    catalog, problems = load_rotations(write(tmp_path, **{"ai-platform.yaml": pd}))
    assert problems == [] and catalog is not None
    rotation = catalog.rotations["ai-platform"]
    assert rotation.source == "pagerduty" and rotation.pagerduty is not None
    assert rotation.pagerduty.schedule_id == "PABC123" and rotation.layers == {}
    step = catalog.policies["ai-platform"].steps[0]
    assert step.targets == (Target.pagerduty("0123456789abcdef0123456789abcdef"), Target.person("alex"))


def test_pagerduty_source_without_policy_gets_no_steps(tmp_path: Path) -> None:
    pd = "rotation: {name: ai, source: pagerduty, escalation_policy_id: PXYZ}\n"
    catalog, problems = load_rotations(write(tmp_path, **{"ai.yaml": pd}))
    assert problems == [] and catalog is not None
    assert catalog.policies["ai"].steps == ()


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("rotation:\n  name: ai\n  source: pagerduty\n", 2, "needs `schedule_id` or `escalation_policy_id`"),
        (
            "rotation:\n  name: ai\n  source: pagerduty\n  schedule_id: P1\n  layers: {a: [alex]}\n",
            5,
            "unknown key 'layers'",
        ),
        ("rotation:\n  name: ai\n  source: opsgenie\n", 3, "'file' or 'pagerduty'"),
        (
            "rotation: {name: ai, source: pagerduty, schedule_id: P1}\n"
            "escalation:\n  - {after: 0m, notify: primary}\n",
            3,
            "unknown layer or person 'primary'",
        ),
    ],
)
def test_pagerduty_source_problems(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    assert_problem(write(tmp_path, **{"ai.yaml": text}), "ai.yaml", line, fragment)


def test_rotation_without_escalation_pages_its_first_layer(tmp_path: Path) -> None:
    text = PLATFORM.split("escalation:")[0]
    catalog, problems = load_rotations(write(tmp_path, platform_yaml=text))
    assert problems == [] and catalog is not None
    (step,) = catalog.policies["platform"].steps
    assert step.after == timedelta(0) and step.targets == (Target.layer("primary"),)


def test_many_problems_are_reported_together(tmp_path: Path) -> None:
    text = PLATFORM.replace("shift: 1w", "shift: 1x").replace("[mike]\n", "[mike, zed]\n")
    routes = ROUTES.replace("redis-.*", "redis-(")
    catalog, problems = load_rotations(write(tmp_path, platform_yaml=text, routes_yaml=routes))
    assert catalog is None
    assert {(Path(p.file).name, p.line) for p in problems} >= {
        ("platform.yaml", 5),
        ("platform.yaml", 9),
        ("routes.yaml", 3),
    }


def test_empty_and_missing(tmp_path: Path) -> None:
    assert only_problem(tmp_path / "nope").message.startswith("rotations directory")
    (tmp_path / "empty").mkdir()
    assert "no rotation files" in only_problem(tmp_path / "empty").message
    directory = write(tmp_path / "blank")
    (directory / "extra.yaml").write_text("# nothing yet\n")
    assert_problem(directory, "extra.yaml", 1, "empty")
    directory = write(tmp_path / "list")
    (directory / "extra.yaml").write_text("- a\n- b\n")
    assert_problem(directory, "extra.yaml", 1, "must be a mapping")


def test_yml_suffix_and_both_people_files(tmp_path: Path) -> None:
    directory = write(tmp_path)
    (directory / "people.yml").write_text(PEOPLE)
    assert_problem(directory, "people.yml", 0, "keep one")


def test_anchors_and_merge_keys_work_and_explicit_keys_override_merged_ones(tmp_path: Path) -> None:
    text = PLATFORM.replace(
        "    - {layer: primary, who: david, from: 2026-11-24T09:00, until: 2026-11-25T09:00}\n",
        "    - &cover {layer: primary, who: david, from: 2026-11-24T09:00, until: 2026-11-25T09:00}\n"
        "    - {<<: *cover, who: alex, from: 2026-12-01T09:00, until: 2026-12-02T09:00}\n",
    )
    catalog, problems = load_rotations(write(tmp_path, platform_yaml=text))
    assert problems == [] and catalog is not None
    assert [(o.layer, o.who) for o in catalog.rotations["platform"].overrides] == [
        ("primary", "david"),
        ("primary", "alex"),
    ]


def test_recursive_alias_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    directory = write(tmp_path)
    (directory / "loop.yaml").write_text("rotation: &r\n  name: loop\n  inner: *r\n")
    catalog, problems = load_rotations(directory)
    assert catalog is None and problems
    assert all(Path(p.file).name == "loop.yaml" for p in problems)


def test_a_shift_with_no_fixed_local_time_is_a_warning_not_a_problem(tmp_path: Path) -> None:
    warnings: list[ConfigProblem] = []
    directory = write(tmp_path, platform_yaml=PLATFORM.replace("shift: 1w", "shift: 36h"))
    catalog, problems = load_rotations(directory, warnings)
    assert problems == [] and catalog is not None  # it loads: the bot starts
    assert catalog.rotations["platform"].handoff_rule == "elapsed"  # what 36h can only be
    (warning,) = warnings
    assert warning.file.endswith("platform.yaml") and warning.line == 5, warning
    assert "36h" in warning.message and "handoff: elapsed" in warning.message, warning


@pytest.mark.parametrize(
    ("shift", "handoff", "rule"),
    [
        ("36h", "elapsed", "elapsed"),
        ("12h", "elapsed", "elapsed"),
        ("12h", None, "clock"),
        ("2w", "clock", "clock"),
    ],
)
def test_handoff_rule_without_warnings(tmp_path: Path, shift: str, handoff: str | None, rule: str) -> None:
    extra = f"\n  handoff: {handoff}" if handoff else ""
    warnings: list[ConfigProblem] = []
    text = PLATFORM.replace("shift: 1w", f"shift: {shift}{extra}")
    catalog, problems = load_rotations(write(tmp_path, platform_yaml=text), warnings)
    assert problems == [] and warnings == [] and catalog is not None
    assert catalog.rotations["platform"].handoff_rule == rule


def test_an_override_written_in_the_skipped_hour_starts_when_the_clock_jumps(tmp_path: Path) -> None:
    # 2027-03-14 02:30 does not exist in Los Angeles: the override starts at 03:00 PDT (10:00 UTC),
    # the same rule as handoffs (it used to start at 03:30 PDT).
    text = PLATFORM.replace(
        "from: 2026-11-24T09:00, until: 2026-11-25T09:00", "from: 2027-03-14T02:30, until: 2027-03-14T12:00"
    )
    catalog, problems = load_rotations(write(tmp_path, platform_yaml=text))
    assert problems == [] and catalog is not None
    rotation = catalog.rotations["platform"]
    assert rotation.overrides[0].start == datetime(2027, 3, 14, 10, tzinfo=UTC)
    assert on_call(rotation, "primary", datetime(2027, 3, 14, 10, 5, tzinfo=UTC)).person == "david"
