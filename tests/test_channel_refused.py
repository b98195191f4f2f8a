"""Issue 16.3: a channel that cannot be created for good.

Where only admins may create channels, Slack answers conversations.create with restricted_action.
The bot used to drop the card, the runbook and the invites and leave the announcement at "(channel
pending)". Now the incident goes on in a thread: under its announcement in the announce channel, or,
without one, under the page DM of the first person paged. Everything the incident posts goes to that
thread; what would act on the whole channel (topic, pins, invites, archive) is skipped.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session, select

from tests.harness import Clock, post_alertmanager, processed, wait_until
from tests.test_channel_faults import settled
from tests.test_flow_paging import click

FIXTURES = Path(__file__).parent / "fixtures"
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
WHY = "Slack refused to create a channel (restricted_action): this incident continues in this thread"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / "alertmanager-0.25" / name).read_text())


def refuse_channels(fake) -> None:
    fake.add_fault(method="conversations.create", mode="error", error="restricted_action")


def replies(fake, channel_id: str, thread_ts: str) -> list[dict]:
    return [m for m in fake.messages(channel_id) if m.get("thread_ts") == thread_ts and m["ts"] != thread_ts]


def is_card(message: dict) -> bool:
    return "incident_actions" in json.dumps(message.get("blocks"))


def incident_row(bot):
    from bot.store.tables import Incident

    with Session(bot.ctx.engine) as session:
        return session.exec(select(Incident)).one()


def test_refused_channel_goes_on_in_the_announcement_thread(start_bot, fake_slack):
    fake = fake_slack.fake
    refuse_channels(fake)
    announce = fake.create_channel("incidents")
    bot = start_bot(
        clock=Clock(T0),
        rotations_dir=FIXTURES / "rotations",
        incident_announce_channel=announce.id,
        archive_after="1h",
    )
    incident = processed(bot, post_alertmanager(bot.url, fixture("firing-single-alert.json")))["incident"]
    announcement = wait_until(
        lambda: next((m for m in fake.messages(announce.id) if WHY in m.get("text", "")), None),
        15,
        what="an announcement that says why",
    )
    thread = announcement["ts"]
    wait_until(lambda: any(is_card(m) for m in replies(fake, announce.id, thread)), 15, what="card")
    wait_until(
        lambda: any("Paged <@U01ALEX>" in m.get("text", "") for m in replies(fake, announce.id, thread)),
        15,
        what="the page said in the thread",
    )
    wait_until(
        lambda: any(m.get("text", "").startswith("Runbook") for m in replies(fake, announce.id, thread)),
        15,
        what="the runbook in the thread",
    )
    wait_until(lambda: settled(bot), 15)
    stored = incident_row(bot)
    assert (stored.channel_id, stored.thread_ts, stored.announce_ts) == (announce.id, thread, thread)
    # Nothing acted on the announce channel as a whole, and nothing was posted outside the thread.
    for method in ("conversations.setTopic", "pins.add", "conversations.invite", "conversations.join"):
        assert not fake.calls_to(method), method
    assert [m["ts"] for m in fake.messages(announce.id) if m.get("thread_ts") in (None, m["ts"])] == [thread]
    assert not [c for c in fake.channels.values() if c.name.startswith("inc-")]

    # The card's buttons work in the thread; the card and the announcement keep up, still saying why.
    card = next(m for m in replies(fake, announce.id, thread) if is_card(m))
    click(bot, "incident_resolve", str(incident), "U01ALEX", channel=announce.id)
    wait_until(lambda: any("Resolved" in m.get("text", "") for m in replies(fake, announce.id, thread)), 15)
    wait_until(lambda: "resolved" in json.dumps(fake_message(fake, announce.id, card["ts"])["blocks"]), 15)
    wait_until(lambda: "(resolved)" in fake_message(fake, announce.id, thread)["text"], 15)
    assert WHY in fake_message(fake, announce.id, thread)["text"]

    # Closing (a use case: /incident needs a channel of its own) uploads the post-mortem into the
    # thread and never archives the announce channel.
    from bot.service import lifecycle

    lifecycle.close(bot.ctx, incident, "slack:U01ALEX", timedelta(hours=1))
    upload = wait_until(
        lambda: [m for m in replies(fake, announce.id, thread) if m.get("files")], 15, what="post-mortem"
    )
    assert len(upload) == 1
    bot.clock.advance(hours=2)
    bot.tick()
    wait_until(lambda: settled(bot), 15)
    assert not fake.calls_to("conversations.archive") and not fake.channel(announce.id).archived
    links = [m for m in replies(fake, announce.id, thread) if "Post-mortem draft for incident" in m["text"]]
    assert not links, "the draft is already in the thread; no second link to it"


def test_refused_channel_without_announce_channel_goes_on_under_the_page_dm(start_bot, fake_slack):
    fake = fake_slack.fake
    refuse_channels(fake)
    bot = start_bot(clock=Clock(T0), rotations_dir=FIXTURES / "rotations")
    post_alertmanager(bot.url, fixture("firing-single-alert.json"))
    page = wait_until(
        lambda: next(
            (
                c
                for c in fake.calls_to("chat.postMessage")
                if c.ok and "You are paged" in c.args.get("text", "") and not c.args.get("thread_ts")
            ),
            None,
        ),
        15,
        what="the page DM",
    )
    dm, page_ts = page.args["channel"], page.response["ts"]
    wait_until(lambda: any(is_card(m) for m in replies(fake, dm, page_ts)), 15, what="card under the page")
    first = replies(fake, dm, page_ts)[0]
    assert WHY in first["text"]
    wait_until(lambda: settled(bot), 15)
    stored = incident_row(bot)
    assert (stored.channel_id, stored.thread_ts) == (dm, page_ts)
    assert not [m for m in fake.messages(dm) if m.get("thread_ts") in (None, m["ts"]) and m["ts"] != page_ts]
    for method in ("conversations.setTopic", "pins.add", "conversations.invite"):
        assert not fake.calls_to(method), method


def fake_message(fake, channel_id: str, ts: str) -> dict:
    return next(m for m in fake.messages(channel_id) if m["ts"] == ts)
