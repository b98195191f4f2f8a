"""PagerDuty webhooks without PAGERDUTY_API_TOKEN (issue 16, 1.7).

Found on a running bot: with the webhook secret set but no API token, acknowledging a PagerDuty
incident in Slack answered "escalation stopped" while PagerDuty was never told (and kept paging).
The bot now says where it happens that only Slack changed, makes no PagerDuty call, and warns at start.
"""

from __future__ import annotations

import logging

import pytest
from sqlmodel import Session, col, select

from bot.store.tables import Outbox
from tests.harness import Clock, join_channel, wait_until
from tests.test_flow_commands import slash
from tests.test_flow_pagerduty import T0, click, idle, open_from_pagerduty, texts

HERE_ONLY = "PagerDuty is not updated (PAGERDUTY_API_TOKEN is not set)."
WARNING = "PAGERDUTY_API_TOKEN is not set"


def answers(fake, chan, user: str = "U01ALEX") -> list[str]:
    return [m["text"] for m in fake.channel(chan.id).ephemeral if m.get("ephemeral_user") == user]


def pagerduty_rows(bot) -> list[Outbox]:
    with Session(bot.ctx.engine) as session:
        return list(session.exec(select(Outbox).where(col(Outbox.lane).startswith("pagerduty"))))


def test_acknowledge_and_resolve_in_slack_say_pagerduty_is_not_updated(start_bot, fake_slack, fake_pagerduty):
    fake, pd = fake_slack.fake, fake_pagerduty
    bot = start_bot(clock=Clock(T0), pagerduty_api_token=None)
    incident, chan = open_from_pagerduty(bot, fake_slack)
    # PagerDuty runs the paging, so the incident channel's members command the incident.
    join_channel(bot, fake, chan.id, "U01ALEX")

    click(bot, "incident_ack", str(incident.id), "U01ALEX", chan.id)
    answer = wait_until(lambda: answers(fake, chan), 10, what="the answer")[0]
    assert answer == f"Acknowledged here only: {HERE_ONLY}"
    line = wait_until(
        lambda: [t for t in texts(fake, chan.id) if t.startswith(":eyes: Acknowledged by")], 10
    )[0]
    assert "<@U01ALEX>" in line and f"here only: {HERE_ONLY}" in line, line

    assert slash(bot, "resolve rolled back", channel=chan.id) == f"Resolved here only: {HERE_ONLY}"
    line = wait_until(
        lambda: [t for t in texts(fake, chan.id) if t.startswith(":white_check_mark: Resolved")], 10
    )[0]
    assert "<@U01ALEX>" in line and "rolled back" in line and f"here only: {HERE_ONLY}" in line, line
    idle(bot)
    assert pagerduty_rows(bot) == []
    assert pd.fake.calls == []


def test_with_a_token_acknowledging_still_says_escalation_stopped(start_bot, fake_slack, fake_pagerduty):
    fake = fake_slack.fake
    fake_pagerduty.fake.add_incident("Q2K3SB1VXYZ7AB", "triggered")
    bot = start_bot(clock=Clock(T0))
    incident, chan = open_from_pagerduty(bot, fake_slack)
    join_channel(bot, fake, chan.id, "U01ALEX")  # a member of the incident channel acknowledges
    click(bot, "incident_ack", str(incident.id), "U01ALEX", chan.id)
    answer = wait_until(lambda: answers(fake, chan), 10, what="the answer")[0]
    assert "escalation stopped" in answer and "here only" not in answer
    assert [r.op for r in pagerduty_rows(bot)] == ["pd_update"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("settings", "warned"),
    [
        ({"pagerduty_api_token": None}, 1),  # webhooks configured, no token: warn once
        ({}, 0),  # both
        ({"pagerduty_api_token": None, "pagerduty_webhook_secret": None}, 0),  # PagerDuty not used
    ],
)
def test_start_warns_when_webhooks_come_in_but_pagerduty_cannot_be_updated(
    start_bot, caplog, settings, warned
):
    caplog.set_level(logging.WARNING)
    start_bot(**settings)
    found = [r for r in caplog.records if WARNING in r.getMessage()]
    assert len(found) == warned, [r.getMessage() for r in found]
