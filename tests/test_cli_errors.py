"""CLI argument errors are one line and exit 2; `incidentbot --version` (issue 17, 3).

Observed: `report --since abc` and `oncall --at tomorrow` ended in a ValueError traceback (exit 1),
`postmortem 999999` exited 1, and argparse's own errors printed the usage block before the error.
"""

from __future__ import annotations

import importlib.metadata

import pytest

from tests.harness import ROOT, run_cli


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        "RUNBOOKS_DIR": str(ROOT / "runbooks"),
        "ROTATIONS_DIR": str(ROOT / "rotations"),
        "POSTMORTEMS_DIR": str(tmp_path / "pm"),
    }


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["report", "--since", "abc"], "argument --since: abc: a duration like 30s, 10m, 1h30m or 1w"),
        (["report", "--since", "10"], "argument --since: 10: a duration needs a unit, e.g. 10d"),
        (["oncall", "--at", "tomorrow"], "argument --at: tomorrow: a time like 2026-11-03T14:00 or"),
        (["postmortem", "999999"], "There is no incident #999999."),
        (["postmortem", "abc"], "argument incident_id: abc: an incident number, e.g. 42"),
        (["report", "--format", "xml"], "argument --format: invalid choice: 'xml'"),
        (
            ["postmortem", "1", "--template", "/nonexistent.j2"],
            "argument --template: /nonexistent.j2: no such file",
        ),
        (["serve", "--port", "eighty"], "argument --port: eighty: a port number from 0 to 65535"),
        (["nonsense"], "argument command: invalid choice: 'nonsense'"),
        ([], "the following arguments are required: command"),
    ],
)
def test_argument_errors_are_one_line_and_exit_2(tmp_path, env, args, says):
    proc = run_cli(*args, cwd=tmp_path, env=env)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and says in lines[0], proc.stderr
    assert lines[0].startswith("incidentbot"), lines[0]
    assert proc.stdout == ""


def test_an_unknown_rotation_is_one_line_and_exit_2(tmp_path, env):
    proc = run_cli("oncall", "nosuch", cwd=tmp_path, env=env)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        "incidentbot: There is no rotation named 'nosuch'. Rotations: ai-platform, data-platform, platform."
    ]


def test_good_arguments_still_work(tmp_path, env):
    proc = run_cli("oncall", "--at", "2026-11-03T14:00", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("report", "--since", "7d", "--format", "json", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr


def test_version(tmp_path):
    proc = run_cli("--version", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"incidentbot {importlib.metadata.version('incidentbot')}\n"
