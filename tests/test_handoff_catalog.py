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


def _check_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, directory: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ROTATIONS_DIR", str(directory))
    monkeypatch.setenv("RUNBOOKS_DIR", str(Path(__file__).resolve().parents[1] / "runbooks"))


def test_check_says_a_slack_usergroup_slack_does_not_know(
    fake_slack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from bot.cli import main
    from tests.fakeslack.api_usergroups import add_usergroup
    from tests.harness import BOT_TOKEN

    known = add_usergroup(fake_slack.fake, "platform-oncall", ["U01ALEX"])
    keys = f"  slack_usergroup:\n    primary: {known}\n    secondary: S0NOPE\n"
    directory = write(tmp_path / "rotations", platform_yaml=with_keys(keys))
    _check_env(monkeypatch, tmp_path, directory)
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_API_URL", fake_slack.url)
    assert main(["check"]) == 0  # a warning: the rest of the configuration is sound
    err = capsys.readouterr().err
    assert "platform.yaml:6: warning: `slack_usergroup`: Slack does not know user group S0NOPE" in err, err
    assert known not in err


def test_check_works_offline_without_a_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from bot.cli import main

    directory = write(tmp_path / "rotations", platform_yaml=with_keys("  slack_usergroup: S0NOPE\n"))
    _check_env(monkeypatch, tmp_path, directory)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "")
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9/")  # nothing listens: never asked
    assert main(["check"]) == 0
    assert "S0NOPE" not in capsys.readouterr().err
    bad = write(tmp_path / "rotations", platform_yaml=with_keys("  handoff_reminder: soon\n"))
    _check_env(monkeypatch, tmp_path, bad)
    assert main(["check"]) == 1
    assert "platform.yaml:6: rotation `handoff_reminder`: invalid duration 'soon'" in capsys.readouterr().err


def test_a_reminder_as_long_as_the_shift_is_a_warning(tmp_path: Path) -> None:
    from bot.core.errors import ConfigProblem

    warnings: list[ConfigProblem] = []
    catalog, problems = load_rotations(
        write(tmp_path, platform_yaml=with_keys("  handoff_reminder: 2w\n")), warnings
    )
    assert not problems and catalog is not None  # still loads
    [warning] = warnings
    assert warning.line == 6 and "is not shorter than the shift 1w" in warning.message, warning
