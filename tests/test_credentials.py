"""Issue 16.11: credentials that are wrong are not an outage.

With a token Slack refuses (invalid_auth, token_revoked, account_inactive...) the bot logged "Slack
looks down", probed Slack every second and retried every row with backoff. Now it logs the
credentials problem (never the token) at most once a minute, shows it in /metrics, holds the Slack
rows without calling Slack, asks again (auth.test) once a minute of its clock, and sends what waited
as soon as a valid token answers.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

from tests.harness import Clock, post_alertmanager, processed, wait_until
from tests.test_channel_faults import metric

FIXTURES = Path(__file__).parent / "fixtures"
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
WRONG = "xoxb-1111-2222-wrongtoken"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / "alertmanager-0.25" / name).read_text())


def looked(bot, times: int = 5) -> None:
    """A barrier: the worker has looked for work `times` more times (it polls every 0.1 s here)."""
    worker = bot.app.state.worker
    start = worker.looks
    wait_until(lambda: worker.looks >= start + times, 10, what="the worker looked again")


def credential_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "credentials" in r.getMessage()]


def test_a_refused_token_holds_the_rows_rechecks_once_a_minute_then_sends(start_bot, fake_slack, caplog):
    caplog.set_level(logging.INFO)
    fake = fake_slack.fake
    bot = start_bot(clock=Clock(T0), rotations_dir=FIXTURES / "rotations", slack_bot_token=WRONG)
    assert post_alertmanager(bot.url, fixture("firing-single-alert.json")).status_code == 202
    wait_until(lambda: metric(bot, "incidentbot_slack_credentials_ok") == 0, 10, what="credentials gauge")
    looked(bot)
    refused = len(fake.calls)
    assert refused and all(c.response["error"] == "invalid_auth" for c in fake.calls)

    # Half a minute later (the bot's clock): no row retried, Slack not probed.
    bot.clock.advance(seconds=30)
    looked(bot)
    assert len(fake.calls) == refused, [c.method for c in fake.calls[refused:]]

    # A minute after the refusal: one auth.test, still refused, and nothing else.
    bot.clock.advance(seconds=31)
    wait_until(lambda: len(fake.calls) > refused, 10, what="the re-check")
    looked(bot)
    assert [c.method for c in fake.calls[refused:]] == ["auth.test"]
    assert metric(bot, "incidentbot_slack_credentials_ok") == 0

    # The token is valid again (Slack accepts it): at the next re-check everything that waited goes.
    fake.add_token(WRONG)
    bot.clock.advance(seconds=61)
    wait_until(
        lambda: any(c.name.startswith("inc-") and c.pins for c in fake.channels.values()),
        15,
        what="the incident channel with its card",
    )
    wait_until(lambda: metric(bot, "incidentbot_slack_credentials_ok") == 1, 10, what="credentials ok")

    lines = credential_lines(caplog)
    refusals = [line for line in lines if "refused" in line]
    assert len(refusals) == 2, lines  # the first refusal and the re-check a minute later
    assert "invalid_auth" in refusals[0] and "SLACK_BOT_TOKEN" in refusals[0]
    assert any("accepts" in line for line in lines), lines
    assert not any("looks down" in r.getMessage() for r in caplog.records)
    assert not any(WRONG in r.getMessage() for r in caplog.records)


def test_without_a_token_the_bot_runs_and_says_the_credentials_are_missing(start_bot, fake_slack):
    fake = fake_slack.fake
    bot = start_bot(clock=Clock(T0), rotations_dir=FIXTURES / "rotations", slack_bot_token="")
    assert metric(bot, "incidentbot_slack_credentials_ok") == 0
    r = post_alertmanager(bot.url, fixture("firing-single-alert.json"))
    assert r.status_code == 202 and processed(bot, r)["incident"]
    wait_until(lambda: fake.calls, 10, what="a first refused call")
    looked(bot)
    calls = len(fake.calls)
    bot.clock.advance(seconds=30)
    looked(bot)
    assert len(fake.calls) == calls
    assert all(c.response["error"] == "invalid_auth" for c in fake.calls)
