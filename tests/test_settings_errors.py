"""Every settings error is one line naming the setting, at start and in `incidentbot check` (issue 17, 3).

Observed on a fresh clone: `HEARTBEAT_TIMEOUT=10` crashed `serve` with a traceback that did not name
the variable, `STORM_THRESHOLD=ten` printed a pydantic traceback, `LOG_LEVEL=verbose` a ValueError,
`DATABASE_URL=postgres://...` an SQLAlchemy plugin error, and `incidentbot check` said "ok" for the
same environment. Now every command prints one line per problem (`NAME=value: what it takes`, the
value left out for secrets) and exits 2; `postgres://` is accepted.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from bot.settings import Settings
from bot.settings_values import describe
from tests.harness import ROOT, run_cli

# What a user wrote -> the one line they get.
OBSERVED = {
    "HEARTBEAT_TIMEOUT=10": "HEARTBEAT_TIMEOUT=10: a duration needs a unit, e.g. 10m",
    "STORM_THRESHOLD=ten": "STORM_THRESHOLD=ten: a whole number of at least 1",
    "LOG_LEVEL=verbose": "LOG_LEVEL=verbose: one of DEBUG, INFO, WARNING, ERROR",
}
ACCEPTED_URLS = "postgresql://user:password@host:5432/dbname (or postgres://...) or sqlite:///path/to/file.db"
MORE = {
    "STORM_WINDOW=5 minutes": "STORM_WINDOW=5 minutes: a duration like 30s, 10m, 1h30m or 1w",
    "HEARTBEAT_TIMEOUT=0": "HEARTBEAT_TIMEOUT=0: a duration greater than 0, e.g. 10m",
    "ARCHIVE_AFTER=-1h": "ARCHIVE_AFTER=-1h: a duration like 30s, 10m, 1h30m or 1w",
    "SILENCE_CHECK_INTERVAL=500ms": "SILENCE_CHECK_INTERVAL=500ms: a duration of at least 1s, e.g. 1m",
    "LOG_FORMAT=yaml": "LOG_FORMAT=yaml: json or text",
    "WORKER_PROCESS=maybe": "WORKER_PROCESS=maybe: true or false",
    "SLACK_RATE_SCALE=0": "SLACK_RATE_SCALE=0: a number greater than 0",
    "WORKER_NICE=20": "WORKER_NICE=20: a whole number from 0 to 19",
    "PORT=http": "PORT=http: a whole number from 1 to 65535",
    "ALERTMANAGER_AUTH=basic": "ALERTMANAGER_AUTH=basic: one of bearer, none",
    "ALERTMANAGER_URL=localhost:9093": (
        "ALERTMANAGER_URL=localhost:9093: an http:// or https:// URL, e.g. http://alertmanager:9093"
    ),
    "DATABASE_URL=mysql://bot@db/incidents": f"DATABASE_URL=mysql://bot@db/incidents: use {ACCEPTED_URLS}",
    "POSTMORTEM_TEMPLATE=/nonexistent/pm.md.j2": "POSTMORTEM_TEMPLATE=/nonexistent/pm.md.j2: no such file",
}


def env_of(assignment: str) -> dict[str, str]:
    name, value = assignment.split("=", 1)
    return {name: value}


def config_dirs(tmp_path: Path) -> dict[str, str]:
    return {"RUNBOOKS_DIR": str(ROOT / "runbooks"), "ROTATIONS_DIR": str(ROOT / "rotations")}


def assert_refused_with(proc, lines: list[str]) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert sorted(proc.stderr.splitlines()) == sorted(lines), proc.stderr[-3000:]


@pytest.mark.parametrize("command", ["serve", "check"])
@pytest.mark.parametrize("assignment", sorted(OBSERVED))
def test_each_observed_case_is_one_line_naming_the_setting(tmp_path, command, assignment):
    proc = run_cli(command, cwd=tmp_path, env={**config_dirs(tmp_path), **env_of(assignment)})
    assert_refused_with(proc, [OBSERVED[assignment]])
    assert not (tmp_path / "incidentbot.db").exists()  # refused before anything was touched


@pytest.mark.parametrize("command", ["serve", "check"])
def test_a_database_url_of_another_kind_names_the_accepted_forms_and_hides_the_password(tmp_path, command):
    env = {**config_dirs(tmp_path), "DATABASE_URL": "mysql://bot:Db-Pa55word@db.internal/incidents"}
    proc = run_cli(command, cwd=tmp_path, env=env)
    assert_refused_with(proc, [f"DATABASE_URL=mysql://bot:***@db.internal/incidents: use {ACCEPTED_URLS}"])
    assert "Db-Pa55word" not in proc.stderr + proc.stdout


@pytest.mark.parametrize(
    "command",
    [["serve"], ["work"], ["check"], ["oncall"], ["report"], ["postmortem", "1"], ["db", "upgrade"]],
)
def test_every_command_prints_every_problem_and_exits_2(tmp_path, command):
    env = {**config_dirs(tmp_path), "HEARTBEAT_TIMEOUT": "10", "STORM_THRESHOLD": "ten", "LOG_FORMAT": "yaml"}
    proc = run_cli(*command, cwd=tmp_path, env=env)
    assert_refused_with(
        proc,
        [
            "HEARTBEAT_TIMEOUT=10: a duration needs a unit, e.g. 10m",
            "STORM_THRESHOLD=ten: a whole number of at least 1",
            "LOG_FORMAT=yaml: json or text",
        ],
    )


def test_problems_in_a_dotenv_file_are_reported_the_same_way(tmp_path):
    (tmp_path / ".env").write_text("HEARTBEAT_TIMEOUT=10\nSLACK_BOT_TOKEN=xoxb-real-looking-1\n")
    proc = run_cli("check", cwd=tmp_path, env=config_dirs(tmp_path))
    assert_refused_with(proc, [OBSERVED["HEARTBEAT_TIMEOUT=10"]])


def test_check_with_the_defaults_passes_as_in_ci(tmp_path):
    """`.ci/run` runs `incidentbot check` in the checkout on a machine without a `.env`."""
    for name in ("runbooks", "rotations"):
        (tmp_path / name).symlink_to(ROOT / name)
    proc = run_cli("check", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok: "), proc.stdout


@pytest.mark.postgres
def test_postgres_scheme_is_accepted(tmp_path, pg_url):
    url = pg_url.replace("postgresql+psycopg://", "postgres://", 1)
    proc = run_cli("db", "upgrade", cwd=tmp_path, env={"DATABASE_URL": url})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "database is at the latest schema"


@pytest.mark.parametrize(
    "url", ["postgres://bot@db/x", "postgresql://bot@db/x", "postgresql+psycopg://bot@db/x"]
)
def test_postgres_urls_map_to_psycopg(url):
    from bot.store.db import make_engine

    engine = make_engine(Settings(_env_file=None, database_url=url).database_url)
    assert (engine.dialect.name, engine.dialect.driver) == ("postgresql", "psycopg")


@pytest.mark.parametrize("assignment", sorted({**OBSERVED, **MORE}))
def test_each_setting_says_what_it_takes(assignment):
    name, value = assignment.split("=", 1)
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, **{name.lower(): value})
    assert describe(caught.value) == [{**OBSERVED, **MORE}[assignment]]


@pytest.mark.parametrize("level", ["debug", "Warning", " ERROR "])
def test_log_level_is_case_insensitive(level):
    assert Settings(_env_file=None, log_level=level).log_level == level.strip().upper()


def secret(name: str) -> bool:
    annotation = Settings.model_fields[name].annotation
    return SecretStr in (annotation, *getattr(annotation, "__args__", ()))


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
@pytest.mark.parametrize("value", ["nonsense value", "-1", "0", "line\nbreak", "9" * 400])
def test_any_value_of_any_setting_is_accepted_or_one_line_per_problem_naming_it(name, value):
    try:
        Settings(_env_file=None, **{name: value})
    except ValidationError as exc:
        lines = describe(exc)
        assert lines, exc
        for line in lines:
            assert line.startswith((f"{name.upper()}=", f"{name.upper()}:")), line
            assert "\n" not in line and len(line) < 300, line
            if secret(name):
                assert value not in line, line
