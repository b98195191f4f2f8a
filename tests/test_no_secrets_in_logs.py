"""Secrets never appear in the logs, and every log line is JSON.

The full run starts `incidentbot serve` as a real subprocess (LOG_LEVEL=DEBUG, LOG_FORMAT=json) with
long, unique values for every secret, takes it through alerts firing and resolving, signed slash
commands, a button click, PagerDuty webhooks both ways, rejected requests (401s) that carry or
nearly carry the real secrets, and Slack and PagerDuty faults (500s, 429s) that make the bot log
errors and retry; then greps the whole log file for every secret value. The redaction filter
(`bot.observability._Redact`) is also exercised directly, on each part of a log record.
"""

from __future__ import annotations

import json
import secrets as random_secrets
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from tests.fakepagerduty import sign_webhook
from tests.harness import (
    ROOT,
    BotProcess,
    block_action_body,
    bot_env,
    join_channel,
    processed,
    slack_headers,
    slash_command_body,
    wait_until,
)

FIXTURES = Path(__file__).parent / "fixtures"
AM_FIXTURE = json.loads((FIXTURES / "alertmanager-0.25/firing-single-alert.json").read_text())
PD_TRIGGERED = json.loads((FIXTURES / "pagerduty-v3/events/incident.triggered.json").read_text())


def unique(prefix: str) -> str:
    return f"{prefix}{random_secrets.token_hex(16)}"


@pytest.fixture
def secret_values() -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": unique("xoxb-4242-4242-"),
        "SLACK_SIGNING_SECRET": unique("signing-"),
        "ALERTMANAGER_TOKEN": unique("am-token-"),
        "PAGERDUTY_API_TOKEN": unique("pd-api-"),
        "PD_WEBHOOK_NEW": unique("pd-whsec-new-"),
        "PD_WEBHOOK_OLD": unique("pd-whsec-old-"),
    }


def json_lines(text: str) -> list[dict]:
    records = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"log line {n} is not JSON: {line[:300]!r}") from None
        assert isinstance(record, dict) and {"time", "level", "logger", "msg"} <= record.keys(), line[:300]
        records.append(record)
    return records


@pytest.mark.e2e
@pytest.mark.parametrize(
    "database_url",
    ["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.slow])],
    indirect=True,
)
def test_a_full_run_logs_no_secret_and_only_json(
    fake_slack, fake_pagerduty, database_url, tmp_path, secret_values
):
    s = secret_values
    fake, pd = fake_slack.fake, fake_pagerduty.fake
    fake.add_token(s["SLACK_BOT_TOKEN"])
    pd.tokens.add(s["PAGERDUTY_API_TOKEN"])
    env = bot_env(
        fake_slack.url,
        database_url,
        SLACK_BOT_TOKEN=s["SLACK_BOT_TOKEN"],
        SLACK_SIGNING_SECRET=s["SLACK_SIGNING_SECRET"],
        ALERTMANAGER_TOKEN=s["ALERTMANAGER_TOKEN"],
        PAGERDUTY_API_TOKEN=s["PAGERDUTY_API_TOKEN"],
        PAGERDUTY_WEBHOOK_SECRET=f"{s['PD_WEBHOOK_NEW']},{s['PD_WEBHOOK_OLD']}",
        PAGERDUTY_FROM_EMAIL="incidentbot@example.com",
        PAGERDUTY_API_URL=fake_pagerduty.url,
        PAGERDUTY_EVENTS_URL=fake_pagerduty.events_url,
        POSTMORTEMS_DIR=str(tmp_path / "postmortems"),
        LOG_LEVEL="DEBUG",
        LOG_FORMAT="json",
    )
    log_path = tmp_path / "bot.log"
    bot = BotProcess(env, log_path).start()
    url = bot.url
    try:
        am_auth = {"Authorization": f"Bearer {s['ALERTMANAGER_TOKEN']}", "Content-Type": "application/json"}

        def slack(body: bytes, secret: str = s["SLACK_SIGNING_SECRET"], **kw) -> httpx.Response:
            return httpx.post(
                f"{url}/slack/events",
                content=body,
                headers=slack_headers(body, secret=secret, **kw),
                timeout=10,
            )

        # Slack misbehaves while the incident opens: 500s and a 429 the outbox must retry through.
        fake.add_fault(method="chat.postMessage", mode="error500", count=1)
        fake.add_fault(method="conversations.setTopic", mode="ratelimit", retry_after=1, count=1)

        # Alerts in.
        r = httpx.post(f"{url}/webhooks/alertmanager", json=AM_FIXTURE, headers=am_auth, timeout=10)
        assert r.status_code == 202, r.text
        incident = processed(database_url, r)["incident"]
        channel = wait_until(
            lambda: next((c for c in fake.channels.values() if c.name.startswith("inc-") and c.pins), None),
            30,
            what="incident channel with its card",
        )

        # Rejected requests, some carrying (almost) the real secrets where they do not belong.
        near_misses = [
            {"Authorization": f"Bearer {s['ALERTMANAGER_TOKEN']}x"},
            {"Authorization": f"Basic {s['ALERTMANAGER_TOKEN']}"},
            {"Authorization": "Bearer wrong"},
            {},
        ]
        for headers in near_misses:
            r = httpx.post(f"{url}/webhooks/alertmanager", json=AM_FIXTURE, headers=headers, timeout=10)
            assert r.status_code == 401
        r = httpx.post(
            f"{url}/webhooks/alertmanager",
            params={"token": s["ALERTMANAGER_TOKEN"]},
            json=AM_FIXTURE,
            timeout=10,
        )
        assert r.status_code == 401
        status = slash_command_body("/incident", "status", channel=channel.id)
        assert slack(status, secret="wrong-secret").status_code == 401
        assert slack(status, timestamp=1).status_code == 401

        # Signed slash commands (one quoting the bot token: a person pasting it must not leak it), by
        # someone in the incident channel.
        join_channel(bot, fake, channel.id, "U01ALEX", secret=s["SLACK_SIGNING_SECRET"])
        for text in (
            "status",
            "note rolled back the deploy",
            f"note token was {s['SLACK_BOT_TOKEN']}",
            "timeline",
        ):
            r = slack(slash_command_body("/incident", text, channel=channel.id))
            assert r.status_code == 200, r.text
        assert slack(slash_command_body("/oncall", "")).status_code == 200

        # A button click.
        click = block_action_body("incident_ack", str(incident), user="U01WEI", channel=channel.id)
        assert slack(click).status_code == 200

        # PagerDuty in: valid (old and new secret), forged, replayed; then out: acknowledging the
        # PagerDuty-backed incident in Slack calls PagerDuty's REST API with the token, through a 500.
        pd.add_incident(PD_TRIGGERED["event"]["data"]["id"], "triggered")
        pd.add_fault(method="PUT /incidents/*", mode="error500", count=1)
        body = json.dumps(PD_TRIGGERED).encode()
        pd_url = f"{url}/webhooks/pagerduty"
        ok = {
            "Content-Type": "application/json",
            "X-PagerDuty-Signature": sign_webhook(body, s["PD_WEBHOOK_OLD"]),
        }
        r = httpx.post(pd_url, content=body, headers=ok, timeout=10)
        assert r.status_code == 202 and processed(database_url, r)["decision"] == "opened", r.text
        pd_incident = processed(database_url, r)["incident"]
        assert httpx.post(pd_url, content=body, headers=ok, timeout=10).json() == {"status": "duplicate"}
        forged = {"Content-Type": "application/json", "X-PagerDuty-Signature": sign_webhook(body, "guess")}
        assert httpx.post(pd_url, content=body, headers=forged, timeout=10).status_code == 401
        assert httpx.post(pd_url, content=b"{", headers={}, timeout=10).status_code == 401
        pd_channel = wait_until(
            lambda: next(
                (
                    c
                    for c in fake.channels.values()
                    if c.name.startswith("inc-") and c.id != channel.id and c.pins
                ),
                None,
            ),
            30,
            what="PagerDuty incident channel",
        )
        join_channel(bot, fake, pd_channel.id, "U01ALEX", secret=s["SLACK_SIGNING_SECRET"])
        click = block_action_body("incident_ack", str(pd_incident), user="U01ALEX", channel=pd_channel.id)
        assert slack(click).status_code == 200
        wait_until(
            lambda: [c for c in pd.calls_to("PUT", "/incidents/") if c.status == 200],
            30,
            what="PagerDuty ack",
        )

        # Resolved.
        resolved = json.loads(json.dumps(AM_FIXTURE))
        resolved["status"] = "resolved"
        for alert in resolved["alerts"]:
            alert.update(status="resolved", endsAt="2026-11-23T00:05:00Z")
        r = httpx.post(f"{url}/webhooks/alertmanager", json=resolved, headers=am_auth, timeout=10)
        assert r.status_code == 202
        assert all(f["fired"] for f in fake.faults), fake.faults
        wait_until(
            lambda: any("resolved" in (m.get("text") or "").lower() for m in fake.messages(channel.id)),
            30,
            what="resolution posted",
        )
    finally:
        code = bot.stop()
    # uvicorn shuts down gracefully, then re-raises SIGTERM (exit status -15).
    assert code in (0, -15), log_path.read_text()[-3000:]

    log = log_path.read_text()
    records = json_lines(log)
    assert any(r["level"] == "debug" for r in records), "LOG_LEVEL=DEBUG produced no debug lines"
    assert any(r["level"] in ("warning", "error") for r in records), "the faults produced no warning"
    # The note quoting the bot token was logged (slack_sdk's DEBUG request log) and redacted.
    assert any("token was ***" in r["msg"] for r in records), "the redaction was never exercised"
    # A secret's distinctive second half is enough to count (a log that cut it in two still leaks it).
    values = {**s, "PAGERDUTY_WEBHOOK_SECRET": f"{s['PD_WEBHOOK_NEW']},{s['PD_WEBHOOK_OLD']}"}
    leaked = {
        name: [line[:300] for line in log.splitlines() if value in line or value[len(value) // 2 :] in line]
        for name, value in values.items()
    }
    assert not {k: v for k, v in leaked.items() if v}, leaked


# -- the redaction filter, part by part -----------------------------------------------------------------

SECRET = "xoxb-redact-me-0123456789abcdef"


def run_logging(snippet: str) -> str:
    """Run `snippet` after `setup_logging(...)` in a fresh interpreter; return what it logged."""
    code = textwrap.dedent(
        f"""
        import logging
        from bot.observability import setup_logging
        setup_logging("DEBUG", "json", [{SECRET!r}, "pd-a", "pd-secret-b"])
        log = logging.getLogger("bot.test")
        """
    ) + textwrap.dedent(snippet)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    json_lines(done.stderr)
    return done.stderr


def test_redaction_covers_the_message_and_its_arguments():
    out = run_logging(
        f"""
        log.info("token is {SECRET}")
        log.warning("token is %s, again %r", {SECRET!r}, {SECRET!r})
        log.debug("headers %s", {{"Authorization": "Bearer " + {SECRET!r}}})
        log.error("webhook secret %s", "pd-secret-b")
        """
    )
    assert SECRET not in out and "pd-secret-b" not in out
    assert out.count("***") >= 5
    assert "pd-a" not in out


def test_redaction_covers_exception_tracebacks():
    out = run_logging(
        f"""
        try:
            raise RuntimeError("Slack said invalid_auth for token " + {SECRET!r})
        except RuntimeError:
            log.exception("delivery failed")
        """
    )
    assert "invalid_auth" in out
    assert SECRET not in out, out


def test_redaction_covers_extra_fields():
    out = run_logging(f'log.info("calling Slack", extra={{"authorization": "Bearer " + {SECRET!r}}})')
    assert "calling Slack" in out
    assert SECRET not in out, out


def test_a_database_password_is_not_logged_when_the_database_is_unreachable(fake_slack, tmp_path):
    password = unique("db-pass-")
    env = bot_env(
        fake_slack.url,
        f"postgresql+psycopg://incidentbot:{password}@127.0.0.1:1/incidentbot?connect_timeout=2",
        LOG_LEVEL="DEBUG",
        LOG_FORMAT="json",
    )
    log_path = tmp_path / "bot.log"
    # It waits for the database, saying so (issue 17), rather than exiting.
    bot = BotProcess(env, log_path).launch()
    try:
        wait_until(lambda: "database unreachable" in log_path.read_text(), 30, 0.1, "the bot to say why")
    finally:
        bot.stop()
    log = log_path.read_text()
    assert password not in log, [line[:300] for line in log.splitlines() if password in line]
