"""Issue 19 in the CLI: `incidentbot oncall` reads the overrides made from Slack, `--weeks N` prints
the schedule the calendar feeds export as a table, `--history` the audit of on-call changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.cli import main
from bot.service.oncall_calendar import rows
from bot.store.db import make_engine, transaction, upgrade
from bot.store.oncall import audit
from bot.store.tables import OncallOverride
from tests.test_cli_rotations import PEOPLE, ROTATION

NOW = datetime(2026, 11, 3, 13, 50, tzinfo=UTC)  # 07:50 CST: olga's night shift until 08:00


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    directory = tmp_path / "rotations"
    directory.mkdir()
    (directory / "people.yaml").write_text(PEOPLE)
    (directory / "team.yaml").write_text(ROTATION)
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ROTATIONS_DIR", str(directory))
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("RUNBOOKS_DIR", str(Path(__file__).resolve().parents[1] / "runbooks"))
    monkeypatch.delenv("PAGERDUTY_API_TOKEN", raising=False)
    engine = make_engine(url)
    upgrade(engine)
    with transaction(engine) as s:
        s.add(
            OncallOverride(
                rotation="data-platform",
                layer="primary",
                who="wei",
                starts_at=NOW,
                ends_at=NOW + timedelta(hours=4),
                created_by="U0WEI",
                created_at=NOW,
            )
        )
        audit(s, NOW, "slack:U0WEI", "override_added", "data-platform", "primary", "wei covers primary")
    engine.dispose()
    return url


def test_oncall_now_includes_overrides_made_from_slack(configured, capsys) -> None:
    assert main(["oncall", "--at", "2026-11-03T14:00:00+00:00"]) == 0
    out = capsys.readouterr().out
    assert "primary: wei (override) until" in out, out


def test_weeks_prints_the_calendar_s_shifts(configured, capsys) -> None:
    assert main(["oncall", "data-platform", "--at", NOW.isoformat(), "--weeks", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    table = [line for line in out if line.startswith("data-platform")]
    # The same shifts the calendar exports: the override, wei's day after it, olga's night, ...
    from bot.catalog.rotations import load_rotations
    from bot.core.rotations import Override
    from bot.core.schedule import layered

    catalog, _ = load_rotations(Path.cwd() / "rotations")
    assert catalog is not None
    effective, _ = layered(
        catalog.rotations["data-platform"],
        [Override("primary", "wei", NOW, NOW + timedelta(hours=4), "db:1")],
    )
    expected = list(rows({"data-platform": effective}, NOW, NOW + timedelta(weeks=1)))
    assert len(table) == len(expected) == 15, out
    assert "wei" in table[0] and "override" in table[0], table[:3]
    assert "Tue Nov 03 07:50 CST" in table[0] and "Tue Nov 03 11:50 CST" in table[0], table[0]
    assert "wei" in table[1] and "override" not in table[1] and "olga" in table[2], table[:3]


def test_history_prints_the_audit(configured, capsys) -> None:
    assert main(["oncall", "--history", "--at", (NOW + timedelta(days=1)).isoformat()]) == 0
    out = capsys.readouterr().out
    assert "override_added" in out and "wei covers primary" in out and "slack:U0WEI" in out, out
