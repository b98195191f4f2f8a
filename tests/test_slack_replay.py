"""A signed Slack request is applied once, and only for this installation (issue 16, sections 2-3).

Observed on a running bot: a byte-identical slash command or click replayed inside Slack's 5-minute
window was applied again (two notes, two action items, steps 2 and 3 both paged by one `escalate`,
two incidents from one `declare`). Each request is now recorded once, in the database (so across
replicas), by its `event_id`, `action_ts` or `trigger_id`, else its signature; a copy is answered
200 with an empty body. Requests from another workspace or app than `auth.test`/`bots.info` name
are refused.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, col, func, select

from bot.store import receipts
from bot.store.tables import Incident, Page, TimelineEntry, WebhookReceipt
from tests.harness import Clock, block_action_body, slack_headers, slash_command_body, wait_until
from tests.test_flow_commands import incident_channel, slash
from tests.test_flow_paging import dms_to

FIXTURES = Path(__file__).parent / "fixtures"
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def bot(start_bot, fake_slack):
    fake_slack.fake.set_users({"sarah@example.com": "U02SARAH"})
    return start_bot(clock=Clock(T0), rotations_dir=FIXTURES / "rotations")


def send(bot, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{bot.url}/slack/events", content=body, headers=headers, timeout=10)


def twice(bot, body: bytes, content_type: str = "application/x-www-form-urlencoded") -> httpx.Response:
    """The same signed bytes and headers sent twice, well inside the 5-minute window; the replay's answer."""
    headers = slack_headers(body, content_type=content_type)
    first = send(bot, body, headers)
    assert first.status_code == 200, first.text
    replay = send(bot, body, headers)
    assert replay.status_code == 200, replay.text
    return replay


def count(bot, query) -> int:
    with Session(bot.ctx.engine) as session:
        return session.exec(query).one()


def incidents(bot) -> int:
    return count(bot, select(func.count()).select_from(Incident))


def entries(bot, kind: str) -> int:
    return count(bot, select(func.count()).where(col(TimelineEntry.kind) == kind))


def test_a_replayed_declare_opens_one_incident(bot):
    replay = twice(bot, slash_command_body("/incident", "declare Replayed declaration sev3"))
    assert replay.content == b""
    assert incidents(bot) == 1


def test_replayed_notes_and_action_items_are_added_once(bot, fake_slack):
    slash(bot, "declare Checkout down sev2")
    chan = incident_channel(fake_slack.fake)
    for text in ("note rolled back", "action add an alert"):
        assert twice(bot, slash_command_body("/incident", text, channel=chan.id)).content == b""
    assert (entries(bot, "note"), entries(bot, "action")) == (1, 1)


def test_a_replayed_escalate_click_pages_one_step(bot, fake_slack):
    fake = fake_slack.fake
    slash(bot, "declare Checkout down sev2")
    chan = incident_channel(fake)
    incident_id = count(bot, select(Incident.id))
    wait_until(lambda: dms_to(fake, "U01ALEX"), 10, what="first page")
    twice(bot, block_action_body("incident_escalate", str(incident_id), user="U01ALEX", channel=chan.id))
    wait_until(lambda: dms_to(fake, "U02SARAH"), 10, what="step 2 paged")
    bot.tick()
    pages = count(bot, select(func.count()).select_from(Page))
    assert pages == 2  # step 1 (alex) and step 2 (sarah); step 3 (mike) was not paged by the replay
    assert not dms_to(fake, "U03MIKE")


def test_a_retried_event_is_handled_once(bot, fake_slack):
    """Slack re-sends an event it thinks we missed, with X-Slack-Retry-Num and the same event_id
    (a new timestamp, so a new signature): the listener runs once."""
    fake = fake_slack.fake
    slash(bot, "declare Latency sev3")
    chan = incident_channel(fake)
    message = fake.add_message(chan.id, "p99 is back", user="U01ALEX")
    event = {
        "token": "x",
        "team_id": "T0TEAM",
        "api_app_id": "A0APP",
        "type": "event_callback",
        "event_id": "Ev0RETRIED",
        "event_time": int(time.time()),
        "event": {
            "type": "reaction_added",
            "user": "U01ALEX",
            "reaction": "pushpin",
            "item": {"type": "message", "channel": chan.id, "ts": message["ts"]},
            "item_user": "U01ALEX",
        },
    }
    body = json.dumps(event).encode()
    assert send(bot, body, slack_headers(body, content_type="application/json")).status_code == 200
    wait_until(lambda: fake.calls_to("conversations.history"), 10, what="the reaction handled")
    retry = slack_headers(body, timestamp=int(time.time()) + 1, content_type="application/json")
    retried = send(bot, body, retry | {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert (retried.status_code, retried.content) == (200, b"")
    time.sleep(0.5)  # not an assertion: give a wrongly handled retry the time to show
    assert len(fake.calls_to("conversations.history")) == 1


def test_receipts_are_shared_by_replicas_and_pruned_after_the_window(start_bot, fake_slack):
    """Two replicas on one database: a request replayed to the other replica is still a replay."""
    clock = Clock(T0)
    first = start_bot(clock=clock, rotations_dir=FIXTURES / "rotations")
    second = start_bot(clock=clock, rotations_dir=FIXTURES / "rotations")
    body = slash_command_body("/incident", "declare Twice across replicas sev3")
    headers = slack_headers(body)
    assert "declared" in send(first, body, headers).json()["text"]
    assert send(second, body, headers).content == b""
    assert incidents(first) == 1
    # Hourly housekeeping forgets Slack receipts an hour old (PagerDuty's after three days).
    assert receipts.first_time(first.ctx.engine, "pagerduty", "event:1", clock())
    sources = select(WebhookReceipt.source).order_by(col(WebhookReceipt.source))
    clock.advance(minutes=59)
    asyncio.run(first.app.state.scheduler.housekeeping())
    with Session(first.ctx.engine) as session:
        assert session.exec(sources).all() == ["pagerduty", "slack"]
    clock.advance(minutes=2)
    asyncio.run(first.app.state.scheduler.housekeeping())
    with Session(first.ctx.engine) as session:
        assert session.exec(sources).all() == ["pagerduty"]


def other(body: bytes, team: str = "T0OTHER", app: str = "A0APP") -> bytes:
    return body.replace(b"T0TEAM", team.encode()).replace(b"A0APP", app.encode())


def learned(bot) -> None:
    wait_until(lambda: bot.app.state.installation.known, 10, what="auth.test and bots.info answered")


def test_requests_from_another_workspace_or_app_are_refused(bot, fake_slack):
    fake = fake_slack.fake
    learned(bot)
    assert [c.args.get("bot") for c in fake.calls_to("bots.info")] == ["B0BOT"]
    for team, app in (("T0OTHER", "A0APP"), ("T0TEAM", "A0OTHER")):
        body = other(slash_command_body("/incident", "declare From elsewhere sev1"), team, app)
        r = send(bot, body, slack_headers(body))
        assert r.status_code == 200
        assert r.json() == {
            "response_type": "ephemeral",
            "text": "This incidentbot serves another Slack workspace or app; nothing was done.",
        }
    assert incidents(bot) == 0
    slash(bot, "declare Ours sev3")
    chan = incident_channel(fake)
    incident_id = count(bot, select(Incident.id))
    click = other(block_action_body("incident_resolve", str(incident_id), user="U01ALEX", channel=chan.id))
    r = send(bot, click, slack_headers(click))
    assert (r.status_code, r.content) == (200, b"")
    with Session(bot.ctx.engine) as session:
        assert session.get(Incident, incident_id).status == "triggered"
    assert "declared" in slash(bot, "declare Ours again sev3")


def test_until_slack_says_which_team_it_is_requests_are_not_refused_for_it(start_bot, fake_slack):
    """Slack down at start: the signature still holds, so people can act; once auth.test answers
    (retried in the background) other teams are refused."""
    fake = fake_slack.fake
    fault = fake.add_fault(method="auth.test", mode="error500")
    bot = start_bot(clock=Clock(T0), rotations_dir=FIXTURES / "rotations")
    fake.wait_for_call("auth.test", timeout=10)
    body = other(slash_command_body("/incident", "help"))
    assert "/incident declare" in send(bot, body, slack_headers(body)).json()["text"]
    fake.remove_fault(fault["id"])
    learned(bot)
    body = other(slash_command_body("/incident", "help"))
    assert "another Slack workspace" in send(bot, body, slack_headers(body)).json()["text"]
