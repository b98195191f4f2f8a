"""scripts/test-deps: what `make test` and `.ci/run` run first. On a machine that lacks a binary or
PostgreSQL, a user who may not install (or TEST_DEPS_NO_INSTALL=1) gets the exact commands and
exit status 1 at once; with everything there it says nothing and exits 0."""

import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import PG_URL
from tests.harness import ROOT, free_port, reachable_by_others

SCRIPT = ROOT / "scripts" / "test-deps"
CLOSED = f"postgresql://postgres@127.0.0.1:{free_port()}/test"  # nothing listens there


def run(env: dict[str, str], as_nobody: bool = False) -> subprocess.CompletedProcess[str]:
    prefix = []
    if as_nobody:
        reachable_by_others(SCRIPT.parent)
        reachable_by_others(Path(sys.prefix))
        nobody = pwd.getpwnam("nobody")
        setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"  # looked up before PATH is emptied
        prefix = [setpriv, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups", "--"]
    return subprocess.run(
        [*prefix, "/bin/bash", str(SCRIPT)],
        env={"PYTHON": sys.executable, **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def assert_names_the_commands(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 1, result.stderr
    install = next(line for line in result.stderr.splitlines() if "sudo apt-get install -y" in line)
    assert set(install.split("-y", 1)[1].split()) == {"prometheus", "prometheus-alertmanager"}
    assert f"TEST_POSTGRES_URL={CLOSED} does not answer" in result.stderr
    assert "unset TEST_POSTGRES_URL" in result.stderr


def test_missing_binaries_and_postgres_give_the_commands_and_fail(tmp_path):
    empty = tmp_path / "bin"  # a PATH without prometheus-alertmanager, amtool or promtool
    empty.mkdir()
    result = run({"PATH": str(empty), "TEST_DEPS_NO_INSTALL": "1", "TEST_POSTGRES_URL": CLOSED})
    assert_names_the_commands(result)


def test_a_user_who_may_not_install_is_told_not_helped(tmp_path):
    """Root runs it as `nobody`; a non-root test run is such a user already."""
    empty = tmp_path / "bin"
    empty.mkdir()
    empty.chmod(0o755)
    result = run({"PATH": str(empty), "TEST_POSTGRES_URL": CLOSED}, as_nobody=os.geteuid() == 0)
    assert_names_the_commands(result)


def test_everything_there_is_silent_and_repeatable():
    env = {"PATH": os.environ["PATH"], "TEST_DEPS_NO_INSTALL": "1"}
    if "TEST_POSTGRES_URL" in os.environ:
        env["TEST_POSTGRES_URL"] = PG_URL
    for _ in range(2):
        result = run(env)
        assert (result.returncode, result.stderr) == (0, "")
