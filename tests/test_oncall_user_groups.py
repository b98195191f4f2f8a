"""Issue 19, bad input: a rotation's `admins:` naming a user group Slack does not know is said at
start (logged) and by `incidentbot check` (a warning: the group then simply grants nothing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from tests.fakeslack.api_usergroups import add_usergroup
from tests.harness import BOT_TOKEN, wait_until
from tests.test_flow_oncall import PEOPLE, PLATFORM


def rotations(tmp_path: Path, channel: str, leads: str) -> Path:
    directory = tmp_path / "rotations"
    directory.mkdir(exist_ok=True)
    (directory / "people.yaml").write_text(PEOPLE)
    (directory / "platform.yaml").write_text(PLATFORM.format(channel=channel, leads=leads))
    return directory


def test_an_unknown_user_group_is_said_at_start(start_bot, fake_slack, tmp_path, caplog) -> None:
    add_usergroup(fake_slack.fake, "oncall-leads", ["U01MIKE"])
    caplog.set_level("WARNING")
    start_bot(rotations_dir=rotations(tmp_path, "C0ONCALL", "S0NOPE"))
    said = wait_until(
        lambda: [r.getMessage() for r in caplog.records if "S0NOPE" in r.getMessage()], 10, what="a warning"
    )
    assert "platform" in said[0] and "Slack does not know" in said[0], said


def test_check_says_which_user_groups_slack_does_not_know(
    fake_slack, tmp_path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    known = add_usergroup(fake_slack.fake, "oncall-leads", ["U01MIKE"])
    directory = rotations(tmp_path, "C0ONCALL", "S0NOPE")
    (directory / "other.yaml").write_text(
        PLATFORM.format(channel="C0ONCALL", leads=known).replace("name: platform", "name: other")
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ROTATIONS_DIR", str(directory))
    monkeypatch.setenv("RUNBOOKS_DIR", str(Path(__file__).resolve().parents[1] / "runbooks"))
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_API_URL", fake_slack.url)
    assert main(["check"]) == 0
    err = capsys.readouterr().err
    assert "rotations/platform.yaml:6: warning: `admins`: Slack does not know user group S0NOPE" in err, err
    assert "nobody an admin of rotation platform" in err, err
    assert known not in err
