"""Issue 16.2: channel-side Slack errors no longer fail silently.

A person removes the bot from the incident channel (not_in_channel: join and retry), archives it
(is_archived: unarchive and retry; Slack refuses that to bot tokens, so the call fails for good until
a person unarchives), an ephemeral answer cannot be shown (a DM instead). What still fails for good
is counted in /metrics by operation and Slack error and said in the announce channel, once, without
ever announcing the failure of its own announcement.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import Session, col, func, select

from tests.harness import Clock, post_alertmanager, processed, wait_until
from tests.test_flow_commands import slash
from tests.test_flow_paging import click

FIXTURES = Path(__file__).parent / "fixtures"
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / "alertmanager-0.25" / name).read_text())


def open_incident(bot, fake) -> tuple[int, object]:
    """An incident whose channel is settled: card pinned, topic set, the primary invited."""
    r = post_alertmanager(bot.url, fixture("firing-single-alert.json"))
    assert r.status_code == 202, r.text
    chan = wait_until(
        lambda: next(
            (
                c
                for c in fake.channels.values()
                if c.name.startswith("inc-") and c.pins and c.topic and "U01ALEX" in c.members
            ),
            None,
        ),
        15,
        what="incident channel with its card and the primary",
    )
    wait_until(lambda: settled(bot), 15, what="the outbox is drained")
    return processed(bot, r)["incident"], chan


def settled(bot) -> bool:
    from bot.store.tables import Outbox

    with Session(bot.ctx.engine) as session:
        return session.exec(select(func.count()).where(col(Outbox.status) == "pending")).one() == 0


def failed_rows(bot) -> list[tuple[str, str | None]]:
    from bot.store.tables import Outbox

    with Session(bot.ctx.engine) as session:
        rows = session.exec(select(Outbox).where(col(Outbox.status) == "failed").order_by(col(Outbox.id)))
        return [(row.op, row.last_error) for row in rows]


def metric(bot, name: str, **labels: str) -> float | None:
    text = httpx.get(f"{bot.url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


def texts(fake, channel_id: str) -> list[str]:
    return [m.get("text", "") for m in fake.messages(channel_id)]


def test_the_bot_removed_from_its_channel_joins_again_and_posts(start_bot, fake_slack):
    fake = fake_slack.fake
    bot = start_bot(clock=Clock(T0), rotations_dir=FIXTURES / "rotations")
    _, chan = open_incident(bot, fake)
    fake.remove_member(chan.id)  # a person removed the bot from the incident channel
    slash(bot, "note the database failed over", channel=chan.id)
    wait_until(lambda: any("failed over" in t for t in texts(fake, chan.id)), 15, what="the note posted")
    assert [c.ok for c in fake.calls_to("conversations.join")] == [True]
    assert failed_rows(bot) == []


def test_an_archived_channel_fails_for_good_is_counted_and_said_then_comes_back(start_bot, fake_slack):
    fake = fake_slack.fake
    announce = fake.create_channel("incidents")
    bot = start_bot(
        clock=Clock(T0), rotations_dir=FIXTURES / "rotations", incident_announce_channel=announce.id
    )
    incident, chan = open_incident(bot, fake)
    fake.archive_channel(chan.id)  # a person archived the incident channel
    slash(bot, "note first note", channel=chan.id)
    notice = wait_until(
        lambda: [t for t in texts(fake, announce.id) if "Could not" in t], 15, what="the failure said"
    )
    assert f"incident #{incident}" in notice[0] and "is_archived" in notice[0], notice
    # The bot tried to unarchive; Slack refuses that to bot tokens.
    assert [c.response["error"] for c in fake.calls_to("conversations.unarchive")] == ["not_in_channel"]
    assert ("say", "is_archived") in failed_rows(bot)
    assert metric(bot, "incidentbot_outbox_failed_total", op="say", error="is_archived") == 1

    # A person unarchives the channel: the next note joins it again and is posted.
    fake.unarchive_channel(chan.id)
    slash(bot, "note second note", channel=chan.id)
    wait_until(lambda: any("second note" in t for t in texts(fake, chan.id)), 15, what="posted again")
    assert not any("first note" in t for t in texts(fake, chan.id))
    wait_until(lambda: settled(bot), 15)
    assert len([t for t in texts(fake, announce.id) if "Could not" in t]) == 1


def test_a_failure_notice_that_fails_is_not_announced_again(start_bot, fake_slack):
    """The announce channel is archived too: the notice fails for good, and nothing announces that."""
    fake = fake_slack.fake
    announce = fake.create_channel("incidents")
    bot = start_bot(
        clock=Clock(T0), rotations_dir=FIXTURES / "rotations", incident_announce_channel=announce.id
    )
    _, chan = open_incident(bot, fake)
    fake.archive_channel(chan.id)
    fake.archive_channel(announce.id)
    slash(bot, "note lost", channel=chan.id)
    wait_until(lambda: len(failed_rows(bot)) >= 2 and settled(bot), 15, what="note and notice settled")
    assert failed_rows(bot) == [("say", "is_archived"), ("say", "is_archived")]
    posts = [c for c in fake.calls_to("chat.postMessage") if c.args.get("channel") == announce.id]
    assert len([c for c in posts if "Could not" in c.args.get("text", "")]) == 1


def test_an_answer_that_cannot_be_shown_in_the_channel_comes_as_a_dm(start_bot, fake_slack):
    fake = fake_slack.fake
    bot = start_bot(clock=Clock(T0), rotations_dir=FIXTURES / "rotations")
    fake.check_ephemeral_recipients()
    incident, chan = open_incident(bot, fake)
    # Someone who may acknowledge but is not in the channel (mike, the rotation's manager, not paged
    # yet: he saw the card in a preview) clicks Acknowledge.
    click(bot, "incident_ack", str(incident), "U03MIKE", channel=chan.id)
    dm = wait_until(
        lambda: [
            c
            for c in fake.calls_to("chat.postMessage")
            if c.ok and fake.channel(c.args["channel"]).user == "U03MIKE"
        ],
        15,
        what="the answer by DM",
    )
    assert "acknowledged incident" in dm[0].args["text"]
    assert [c.response["error"] for c in fake.calls_to("chat.postEphemeral")] == ["user_not_in_channel"]
