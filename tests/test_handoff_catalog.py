"""Issue 19's handoff keys: `handoff_reminder:` (a duration, `0` off, default 1h) and
`slack_usergroup:` (one `S…` ID for the rotation, or one per layer), validated with file and line."""

from datetime import timedelta
from pathlib import Path

import pytest

from bot.catalog.rotations import load_rotations
from tests.test_catalog_rotations import PLATFORM, assert_problem, write


def with_keys(text: str) -> str:
    return PLATFORM.replace("  shift: 1w\n", "  shift: 1w\n" + text)


def test_defaults_and_values_are_read(tmp_path: Path) -> None:
    catalog, problems = load_rotations(write(tmp_path, platform_yaml=PLATFORM))
    assert not problems and catalog is not None
    platform = catalog.rotations["platform"]
    assert (platform.handoff_reminder, platform.slack_usergroups) == (timedelta(hours=1), {})
    keys = "  handoff_reminder: 0\n  slack_usergroup: S0ONCALL\n"
    catalog, problems = load_rotations(write(tmp_path, platform_yaml=with_keys(keys)))
    assert not problems and catalog is not None
    platform = catalog.rotations["platform"]
    assert platform.handoff_reminder == timedelta(0)
    assert platform.slack_usergroups == {"S0ONCALL": tuple(platform.layers)}
    assert catalog.usergroups_at["platform"][1] == 7


def test_a_group_per_layer(tmp_path: Path) -> None:
    keys = "  handoff_reminder: 30m\n  slack_usergroup:\n    primary: S0PRIMARY\n"
    catalog, problems = load_rotations(write(tmp_path, platform_yaml=with_keys(keys)))
    assert not problems and catalog is not None
    platform = catalog.rotations["platform"]
    assert platform.handoff_reminder == timedelta(minutes=30)
    assert platform.slack_usergroups == {"S0PRIMARY": ("primary",)}


@pytest.mark.parametrize(
    ("keys", "line", "says"),
    [
        ("  handoff_reminder: 1 hour\n", 6, "rotation `handoff_reminder`: invalid duration '1 hour'"),
        ("  handoff_reminder: 60\n", 6, "has no unit"),
        ("  slack_usergroup: '@platform-oncall'\n", 6, "`slack_usergroup` must be a Slack user-group ID"),
        ("  slack_usergroup: U01ALEX\n", 6, "must be a Slack user-group ID like S0123ABCD"),
        ("  slack_usergroup:\n    tertiary: S0THIRD\n", 7, "names unknown layer 'tertiary'"),
        ("  slack_usergroup:\n    primary: s0lower\n", 7, "of layer 'primary' must be a Slack user-group ID"),
    ],
)
def test_bad_keys_are_said_with_their_line(tmp_path: Path, keys: str, line: int, says: str) -> None:
    assert_problem(write(tmp_path, platform_yaml=with_keys(keys)), "platform.yaml", line, says)


def test_one_group_is_kept_by_one_rotation(tmp_path: Path) -> None:
    platform = with_keys("  slack_usergroup: S0ONCALL\n")
    payments = platform.replace("name: platform", "name: payments")
    directory = write(tmp_path, platform_yaml=platform)
    (directory / "zz-payments.yaml").write_text(payments)
    assert_problem(directory, "zz-payments.yaml", 6, "S0ONCALL is also kept by rotation 'platform'")
