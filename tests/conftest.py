"""Shared fixtures: databases (SQLite and the PostgreSQL server), the fake Slack, the bot."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import psycopg
import pytest
from hypothesis import HealthCheck, settings

# Tests run in parallel (pytest-xdist) beside subprocess bots: a busy machine must not turn
# "generation was slow" or one slow example into a failure; the properties themselves still hold.
settings.register_profile("incidentbot", suppress_health_check=[HealthCheck.too_slow], deadline=None)
settings.load_profile("incidentbot")

PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def _pg_admin() -> psycopg.Connection:
    try:
        return psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:  # never skip: CI must say loudly that it is missing
        pytest.fail(f"PostgreSQL is required at {PG_URL} for this test and is not reachable: {exc}")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty schema on the PostgreSQL server, as a DATABASE_URL."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with _pg_admin() as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    base = PG_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    yield f"{base}?options={quote(f'-csearch_path={schema}')}"
    with _pg_admin() as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bot.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def fake_slack():
    from tests.fakeslack import FakeSlackServer

    with FakeSlackServer() as server:
        yield server


PD_WEBHOOK_SECRETS = ("pd-webhook-secret-new", "pd-webhook-secret-old")  # two: a rotation in progress
PD_FROM_EMAIL = "incidentbot@example.com"


@pytest.fixture
def fake_pagerduty():
    from tests.fakepagerduty import FakePagerDutyServer

    with FakePagerDutyServer() as server:
        yield server


class RunningBot:
    """The real ASGI app served over HTTP from a thread, with a settable clock."""

    def __init__(self, server, clock, app) -> None:
        self.url = server.url
        self.clock = clock
        self.app = app
        self.ctx = app.state.ctx

    def tick(self) -> int:
        """Run one scheduler pass now (the APScheduler job does the same every second)."""
        from bot.service.timers import fire_due

        fired = fire_due(self.ctx).fired
        if fired:
            self.ctx.wake()
        return fired


@pytest.fixture
def start_bot(fake_slack, fake_pagerduty, database_url, tmp_path):
    """Factory: start_bot(**settings) -> RunningBot; stopped at teardown."""
    from bot.app import create_app
    from bot.settings import Settings
    from tests.fakepagerduty import DEFAULT_TOKEN
    from tests.harness import AM_TOKEN, BOT_TOKEN, ROOT, SIGNING_SECRET, Clock, ThreadServer, register

    running = []

    def start(clock: Clock | None = None, **overrides):
        values = {
            "slack_bot_token": BOT_TOKEN,
            "slack_signing_secret": SIGNING_SECRET,
            "slack_api_url": fake_slack.url,
            "database_url": database_url,
            "alertmanager_token": AM_TOKEN,
            "runbooks_dir": ROOT / "runbooks",
            "rotations_dir": ROOT / "rotations",
            "outbox_poll_seconds": 0.1,
            "scheduler_tick_seconds": 0.2,
            "storm_threshold": 100000,  # storm and pacing tests set realistic values themselves
            "slack_rate_scale": 1000,
            "pagerduty_api_token": DEFAULT_TOKEN,
            "pagerduty_from_email": PD_FROM_EMAIL,
            "pagerduty_api_url": fake_pagerduty.url,
            "pagerduty_events_url": fake_pagerduty.events_url,
            "pagerduty_webhook_secret": ",".join(PD_WEBHOOK_SECRETS),
            # Off unless a test turns them on: other tests' fake Slack calls stay as they were.
            "handoff_notices": False,
        }
        values.update(overrides)
        clock = clock or Clock()
        app = create_app(Settings(_env_file=None, **values), clock=clock)
        server = ThreadServer(app).__enter__()
        register(server.url, app.state.ctx.engine)
        running.append(server)
        return RunningBot(server, clock, app)

    yield start
    for server in running:
        server.__exit__(None, None, None)
