"""Pushover through the real bot over HTTP: a SEV1 goes out at emergency priority, its receipt is
followed (never more often than Pushover allows), acknowledging in the Pushover app acknowledges
the incident, and acknowledging anywhere else stops the phone from ringing on."""

from __future__ import annotations

import pytest
from sqlmodel import Session, col, select

from bot.service import responders
from bot.store.tables import Timer
from tests.fakenotify import FakePushover
from tests.fakenotify.pushover import USER_KEY
from tests.harness import wait_until
from tests.notify_support import fire, notifications, start, timeline, wait_line

PEOPLE = f"""
people:
  alex:
    slack: U01ALEX
    pushover: {USER_KEY}
    notify: [{{after: 0m, via: [slack, pushover]}}]
  sarah: {{email: sarah@example.com}}
  mike:  {{slack: U03MIKE}}
"""


@pytest.fixture
def pushover():
    with FakePushover() as fake:
        yield fake


def receipt_timers(bot) -> list[Timer]:
    with Session(bot.ctx.engine) as session:
        return list(session.exec(select(Timer).where(col(Timer.kind) == "receipt")))


def boot(start_bot, tmp_path, pushover):
    return start(start_bot, tmp_path, people=PEOPLE, **pushover.settings())


def sent_receipt(bot, pushover) -> str:
    push = pushover.wait_for(1)[0]
    assert push.form["priority"] == "2" and push.form["retry"] == "60" and push.form["expire"] == "3600"
    assert push.receipt
    wait_until(lambda: receipt_timers(bot), 10, what="the receipt followed")
    return push.receipt


def test_acknowledging_the_emergency_page_in_pushover_acknowledges_the_incident(
    start_bot, fake_slack, pushover, tmp_path
):
    bot = boot(start_bot, tmp_path, pushover)
    incident = fire(bot, fake_slack)
    receipt = sent_receipt(bot, pushover)
    sent = next(n for n in notifications(bot) if n.method == "pushover")
    assert sent.status == "sent" and receipt in (sent.answer or "")
    timer = receipt_timers(bot)[0]
    assert sent.done_at is not None and (timer.due_at - sent.done_at).total_seconds() >= 5

    # Not acknowledged yet: asked, and asked again no sooner than 5 seconds later.
    bot.clock.advance(seconds=6)
    bot.tick()
    pushover.wait_until(lambda: len(pushover.receipts[receipt].polls) == 1, what="the first look")
    wait_until(lambda: receipt_timers(bot)[0].status == "pending", 10, what="the receipt followed on")
    checked_at = bot.clock()
    again = receipt_timers(bot)[0]
    assert (again.due_at - checked_at).total_seconds() > 4  # ~5 s after the look, never at once
    assert again.payload["every"] == 7.5  # and each time a little later, up to 30 s
    assert bot.tick() == 0  # not due yet: no second look now

    pushover.acknowledge(receipt, device="alex-iphone")
    bot.clock.advance(seconds=6)
    bot.tick()
    wait_until(lambda: timeline(bot, incident, "status"), 10, what="the incident acknowledged")
    status = timeline(bot, incident, "status")
    assert [e.text for e in status] == ["triggered -> acknowledged (via Pushover)"]
    assert status[0].actor == "slack:U01ALEX" and status[0].data["via"] == "pushover"
    wait_line(fake_slack, r"Acknowledged by <@U01ALEX> .*\(via Pushover\)")
    # Followed no more: acknowledged there, nothing to cancel, nothing more to ask.
    bot.clock.advance(minutes=5)
    bot.tick()
    assert len(pushover.receipts[receipt].polls) == 2 and not pushover.receipts[receipt].cancelled


def test_acknowledging_in_slack_cancels_the_pushover_receipt(start_bot, fake_slack, pushover, tmp_path):
    bot = boot(start_bot, tmp_path, pushover)
    incident = fire(bot, fake_slack)
    receipt = sent_receipt(bot, pushover)
    responders.acknowledge(bot.ctx, incident, "slack:U01ALEX")
    pushover.wait_until(lambda: pushover.receipts[receipt].cancelled, what="the receipt cancelled")
    assert [t.status for t in receipt_timers(bot)] == ["cancelled"]
    wait_until(lambda: timeline(bot, incident, "receipt"), 10, what="the cancellation on the timeline")
    assert timeline(bot, incident, "receipt")[0].text == (
        "Stopped the Pushover repeats to alex: the incident no longer waits"
    )
    bot.clock.advance(minutes=5)
    bot.tick()
    assert not pushover.receipts[receipt].polls  # never asked once acknowledged


def test_a_pushover_refusal_is_said_and_a_sev1_without_receipt_follows_nothing(
    start_bot, fake_slack, pushover, tmp_path
):
    people = PEOPLE.replace(USER_KEY, "uNotAKnownUserKeyAtPushover000")
    bot = start(start_bot, tmp_path, people=people, **pushover.settings())
    incident = fire(bot, fake_slack)
    line = wait_line(fake_slack, r"Could not reach <@U01ALEX> by pushover")[0]
    assert "HTTP 400: user identifier is not a valid user" in line
    assert timeline(bot, incident, "notify_failed")[0].data["method"] == "pushover"
    assert not receipt_timers(bot)


def test_an_emergency_page_that_expires_is_on_the_timeline_and_followed_no_more(
    start_bot, fake_slack, pushover, tmp_path
):
    bot = boot(start_bot, tmp_path, pushover)
    incident = fire(bot, fake_slack)
    receipt = sent_receipt(bot, pushover)
    pushover.expire(receipt)
    bot.clock.advance(seconds=6)
    bot.tick()
    wait_until(lambda: timeline(bot, incident, "receipt"), 10, what="the expiry on the timeline")
    assert timeline(bot, incident, "receipt")[0].text == (
        "Pushover page to alex: the emergency page expired unacknowledged"
    )
    assert [t.status for t in receipt_timers(bot)] == ["fired"]
    bot.clock.advance(minutes=1)
    bot.tick()
    assert len(pushover.receipts[receipt].polls) == 1 and not timeline(bot, incident, "status")
