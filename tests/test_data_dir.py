"""DATA_DIR: relative SQLite and post-mortem paths resolve under it; absolute ones are kept."""

from pathlib import Path

import pytest

from bot.settings import Settings, under_data_dir


def settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///./incidentbot.db", "sqlite:////data/incidentbot.db"),
        ("sqlite:///incidentbot.db", "sqlite:////data/incidentbot.db"),
        ("sqlite:///db/bot.db?timeout=5", "sqlite:////data/db/bot.db?timeout=5"),
        ("sqlite+pysqlite:///bot.db", "sqlite+pysqlite:////data/bot.db"),
        ("sqlite:////var/lib/bot.db", "sqlite:////var/lib/bot.db"),  # absolute: as given
        ("sqlite://", "sqlite://"),  # in memory
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("postgresql://bot@db/incidents", "postgresql://bot@db/incidents"),
    ],
)
def test_relative_sqlite_paths_move_under_data_dir(url, expected):
    assert under_data_dir(url, Path("/data")) == expected


def test_env_example_values_land_in_the_images_data_dir():
    s = settings(data_dir="/data", database_url="sqlite:///./incidentbot.db", postmortems_dir="./postmortems")
    assert s.database_url == "sqlite:////data/incidentbot.db" and s.is_sqlite
    assert s.postmortems_dir == Path("/data/postmortems")
    # Configuration shipped with the app stays relative to the working directory (/app).
    assert s.runbooks_dir == Path("runbooks") and s.rotations_dir == Path("rotations")


def test_absolute_paths_and_postgres_are_taken_as_given():
    s = settings(data_dir="/data", database_url="postgresql://bot@db/x", postmortems_dir="/srv/pm")
    assert s.database_url == "postgresql://bot@db/x" and s.postmortems_dir == Path("/srv/pm")


def test_default_data_dir_changes_nothing(monkeypatch):
    monkeypatch.delenv("DATA_DIR", raising=False)
    s = settings()
    assert s.data_dir == Path(".")
    assert s.database_url == "sqlite:///./incidentbot.db" and s.postmortems_dir == Path("postmortems")


def test_data_dir_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("DATA_DIR", "/var/lib/incidentbot")
    monkeypatch.setenv("DATABASE_URL", "sqlite:///./incidentbot.db")
    s = settings()
    assert s.database_url == "sqlite:////var/lib/incidentbot/incidentbot.db"
