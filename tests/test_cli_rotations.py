"""`incidentbot check` and `incidentbot oncall` with the handoff rule of issue 21: a shift length
with no fixed local time is a warning (the check passes, the bot starts), and the CLI names the
same person and handoff as `/oncall` and the pages (tests/test_flow_dst_handoffs.py)."""

from pathlib import Path

import pytest

from bot.cli import main

ROOT = Path(__file__).resolve().parents[1]
PEOPLE = "people:\n  wei: {slack: U0WEI}\n  olga: {slack: U0OLGA}\n"
ROTATION = """\
rotation:
  name: data-platform
  timezone: America/Chicago
  start: 2026-10-26T08:00
  shift: 12h
  layers: {primary: [wei, olga]}
"""


@pytest.fixture
def rotations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def write(text: str) -> Path:
        directory = tmp_path / "rotations"
        directory.mkdir(exist_ok=True)
        (directory / "people.yaml").write_text(PEOPLE)
        (directory / "team.yaml").write_text(text)
        monkeypatch.setenv("ROTATIONS_DIR", str(directory))
        return directory

    monkeypatch.chdir(tmp_path)  # no .env from the checkout
    monkeypatch.setenv("RUNBOOKS_DIR", str(ROOT / "runbooks"))
    monkeypatch.delenv("PAGERDUTY_API_TOKEN", raising=False)
    return write


def test_check_warns_about_a_shift_with_no_fixed_local_time_but_passes(rotations, capsys) -> None:
    rotations(ROTATION.replace("shift: 12h", "shift: 36h"))
    assert main(["check"]) == 0
    out, err = capsys.readouterr()
    assert "rotations/team.yaml:5: warning: `shift` 36h" in err and "handoff: elapsed" in err, err
    assert out.startswith("ok: 1 rotations") and "1 warning(s)" in out, out


@pytest.mark.parametrize("text", [ROTATION, ROTATION.replace("shift: 12h", "shift: 36h\n  handoff: elapsed")])
def test_check_is_quiet_when_the_rule_is_clear(rotations, capsys, text: str) -> None:
    rotations(text)
    assert main(["check"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "warning" not in out, (out, err)


def test_check_fails_when_clock_handoffs_are_asked_of_a_length_without_a_local_time(
    rotations, capsys
) -> None:
    rotations(ROTATION.replace("shift: 12h", "shift: 36h\n  handoff: clock"))
    assert main(["check"]) == 1
    assert "rotations/team.yaml:6: `handoff: clock` needs a shift" in capsys.readouterr().err


def test_oncall_command_uses_the_clock_time_rule(rotations, capsys) -> None:
    # 07:50 CST on 2026-11-03: olga's night shift runs until 08:00 CST (elapsed time said 07:00).
    rotations(ROTATION)
    assert main(["oncall", "--at", "2026-11-03T13:50:00+00:00"]) == 0
    out = capsys.readouterr().out
    assert "primary: olga until Tue Nov 03 08:00 CST" in out, out
