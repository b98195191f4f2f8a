"""Issue 19's new rotation keys: `admins:` (people or Slack user groups) and `channel:` (where swap
requests are posted), validated with file and line like every other key."""

from pathlib import Path

import pytest

from bot.catalog.rotations import load_rotations
from tests.test_catalog_rotations import PLATFORM, assert_problem, write


def with_keys(text: str) -> str:
    return PLATFORM.replace("  shift: 1w\n", "  shift: 1w\n" + text)


def test_admins_and_channel_are_read(tmp_path: Path) -> None:
    directory = write(tmp_path, platform_yaml=with_keys("  admins: [mike, S0LEADS]\n  channel: C0ONCALL\n"))
    catalog, problems = load_rotations(directory)
    assert not problems and catalog is not None
    platform = catalog.rotations["platform"]
    assert (platform.admins, platform.channel) == (("mike", "S0LEADS"), "C0ONCALL")


def test_a_single_admin_needs_no_list_and_both_keys_are_optional(tmp_path: Path) -> None:
    catalog, _ = load_rotations(write(tmp_path, platform_yaml=with_keys("  admins: S0LEADS\n")))
    assert catalog is not None and catalog.rotations["platform"].admins == ("S0LEADS",)
    catalog, _ = load_rotations(write(tmp_path, platform_yaml=PLATFORM))
    assert catalog is not None and catalog.rotations["platform"].admins == ()
    assert catalog.rotations["platform"].channel is None


@pytest.mark.parametrize(
    ("keys", "line", "says"),
    [
        ("  admins: [mike, bob]\n", 6, "'bob' must be a person from people.yaml or a Slack user-group ID"),
        ("  admins: [mike,\n    s0leads]\n", 7, "'s0leads' must be a person"),
        ("  admins: {mike: yes}\n", 6, "`admins`: each entry must be a person"),
        ("  channel: '#oncall'\n", 6, "rotation `channel` must be a channel ID like C0123ABCD"),
        ("  channel: [C0ONCALL]\n", 6, "`channel` must be non-empty text"),
    ],
)
def test_bad_admins_and_channels_are_said_with_their_line(
    tmp_path: Path, keys: str, line: int, says: str
) -> None:
    assert_problem(write(tmp_path, platform_yaml=with_keys(keys)), "platform.yaml", line, says)
