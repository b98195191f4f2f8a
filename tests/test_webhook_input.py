"""Bad input gets a clear error and loses nothing; the bot keeps serving."""

import json
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import PG_URL
from tests.harness import AM_TOKEN, post_alertmanager, processed, wait_until

FIXTURE = json.loads(
    (Path(__file__).parent / "fixtures/alertmanager-0.25/firing-single-alert.json").read_text()
)


@pytest.fixture
def bot(start_bot):
    return start_bot()


def test_missing_or_wrong_token_is_401(bot):
    assert post_alertmanager(bot.url, FIXTURE, token=None).status_code == 401
    assert post_alertmanager(bot.url, FIXTURE, token="wrong").status_code == 401
    assert post_alertmanager(bot.url, FIXTURE, token=AM_TOKEN + "x").status_code == 401


def test_malformed_json_is_400_with_a_message(bot):
    r = post_alertmanager(bot.url, b'{"version": "4", ')
    assert r.status_code == 400 and "malformed JSON" in r.json()["detail"]
    assert post_alertmanager(bot.url, b"").status_code == 400


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda p: p.pop("groupKey"), "groupKey"),
        (lambda p: p.update(version="3"), "version"),
        (lambda p: p["alerts"][0].pop("startsAt"), "alerts.0.startsAt"),
        (lambda p: p["alerts"][0].update(status="burning"), "alerts.0.status"),
        (lambda p: p["alerts"][0]["labels"].update(n=1), "alerts.0.labels.n"),
        (lambda p: p.update(alerts=[]), "alerts"),
        (lambda p: p.update(alerts="nope"), "alerts"),
        # Before year 1 once in UTC (found by schemathesis: it was a 503 from the database layer).
        (lambda p: p["alerts"][0].update(startsAt="0001-01-01T00:00:00+01:02"), "alerts.0.startsAt"),
        (lambda p: p["alerts"][0].update(endsAt="9999-12-31T23:59:59-01:00"), "alerts.0.endsAt"),
    ],
)
def test_wrong_shape_is_422_naming_the_field(bot, mutate, field):
    payload = json.loads(json.dumps(FIXTURE))
    mutate(payload)
    r = post_alertmanager(bot.url, payload)
    assert r.status_code == 422, r.text
    errors = r.json()["detail"]["errors"]
    assert any(e.startswith(f"{field}:") for e in errors), errors


def test_body_over_the_alertmanager_cap_is_413(bot):
    # ALERTMANAGER_MAX_BODY_BYTES, 16 MiB (not MAX_BODY_BYTES' 1 MiB: see test_large_groups.py).
    payload = json.loads(json.dumps(FIXTURE))
    payload["commonAnnotations"]["description"] = "x" * (16 * 1024 * 1024 + 10)
    assert post_alertmanager(bot.url, payload).status_code == 413

    # Chunked (no Content-Length) is capped too.
    def chunks():
        for _ in range(260):
            yield b"x" * 65536

    r = httpx.post(
        f"{bot.url}/webhooks/alertmanager",
        content=chunks(),
        headers={"Authorization": f"Bearer {AM_TOKEN}"},
        timeout=10,
    )
    assert r.status_code == 413


def test_bad_requests_store_nothing_and_the_bot_keeps_serving(bot, fake_slack):
    for body in (b"{", b"[]", b'{"version":"4"}', b"\xff\xfe"):
        assert post_alertmanager(bot.url, body).status_code in (400, 422)
    r = post_alertmanager(bot.url, FIXTURE)
    assert r.status_code == 202 and processed(bot, r)["incident"] == 1
    assert httpx.get(f"{bot.url}/healthz").status_code == 200


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_database_down_answers_503_so_alertmanager_retries(start_bot):
    name = f"down_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(PG_URL, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    try:
        bot = start_bot(database_url=url)
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        r = post_alertmanager(bot.url, FIXTURE)
        assert r.status_code == 503 and "retry" in r.json()["detail"]
        assert httpx.get(f"{bot.url}/readyz").status_code == 503
        assert httpx.get(f"{bot.url}/healthz").status_code == 200
        # The database comes back: the retry is accepted and the bot is ready again, by itself.
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
        wait_until(lambda: httpx.get(f"{bot.url}/readyz").status_code == 200, 15, 0.2, "ready again")
        r = post_alertmanager(bot.url, FIXTURE)
        assert r.status_code == 202 and processed(bot, r)["decision"] == "first notification"
    finally:
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()
