"""Issue 16.4: "already posted" must be ours.

After a database reset (a lost volume, a restore, a second deployment on the same Slack app) the
outbox ids start again at 1, and the DM and channel histories still hold the older database's posts
with the same ids in their metadata. A post whose outcome is unknown is looked up before it is
repeated; that lookup must only take a message made by THIS database (its instance id, made at the
first migration) for THIS incident and THIS outbox row.
"""

import json
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import Session, select

from tests.fakeslack.model import BOT_USER_ID
from tests.harness import Clock, post_alertmanager, wait_until

FIXTURES = Path(__file__).parent / "fixtures"
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
OLD_INSTANCE = "0123456789abcdef0123456789abcdef"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / "alertmanager-0.25" / name).read_text())


def seed_older_database(fake, channel_id: str, ids: range) -> None:
    """The posts an older database of the same Slack app left: same outbox ids, other instance (and
    the format from before instance ids, which carried the outbox id alone)."""
    for outbox_id in ids:
        for payload in (
            {"outbox_id": outbox_id},
            {"instance": OLD_INSTANCE, "incident_id": 1, "outbox_id": outbox_id},
        ):
            fake.add_message(
                channel_id,
                f"older database, outbox {outbox_id}",
                user=BOT_USER_ID,
                metadata={"event_type": "incidentbot_outbox", "event_payload": payload},
            )


def ours(message: dict, instance: str) -> bool:
    return ((message.get("metadata") or {}).get("event_payload") or {}).get("instance") == instance


def test_an_older_databases_post_with_the_same_outbox_id_is_not_taken_for_ours(start_bot, fake_slack):
    fake = fake_slack.fake
    announce = fake.create_channel("incidents")
    dm = fake.api("conversations.open", users="U01ALEX")["channel"]["id"]
    seed_older_database(fake, dm, range(1, 60))
    seed_older_database(fake, announce.id, range(1, 60))
    # The first post into the DM and into the announce channel fails with a 500: Slack may have
    # posted it, so the retry looks in the history first, where the older database's posts are.
    fake.add_fault(method="chat.postMessage", mode="error500", count=1, channel=dm)
    fake.add_fault(method="chat.postMessage", mode="error500", count=1, channel=announce.id)
    bot = start_bot(
        clock=Clock(T0), rotations_dir=FIXTURES / "rotations", incident_announce_channel=announce.id
    )
    from bot.store.tables import Incident, Instance, Page

    with Session(bot.ctx.engine) as session:
        instance = session.exec(select(Instance)).one().id
    assert instance != OLD_INSTANCE

    assert post_alertmanager(bot.url, fixture("firing-single-alert.json")).status_code == 202
    page_dm = wait_until(
        lambda: [m for m in fake.messages(dm) if ours(m, instance)], 20, what="the page DM, really sent"
    )
    announcement = wait_until(
        lambda: [m for m in fake.messages(announce.id) if ours(m, instance)], 20, what="the announcement"
    )
    assert [c for c in fake.calls_to("conversations.history") if c.args.get("channel") == dm]
    assert len(page_dm) == 1 and len(announcement) == 1

    with Session(bot.ctx.engine) as session:
        page = session.exec(select(Page)).one()
        incident = session.exec(select(Incident)).one()
    wait_until(lambda: _dm_ts(bot) is not None, 10, what="page recorded")
    page_ts = _dm_ts(bot)
    assert page_ts == page_dm[0]["ts"], "the page recorded must be the one this database sent"
    payload = page_dm[0]["metadata"]["event_payload"]
    assert payload["incident_id"] == incident.id == page.incident_id
    wait_until(lambda: _announce_ts(bot) == announcement[0]["ts"], 10, what="announcement recorded")


def _dm_ts(bot) -> str | None:
    from bot.store.tables import Page

    with Session(bot.ctx.engine) as session:
        return session.exec(select(Page.dm_ts)).first()


def _announce_ts(bot) -> str | None:
    from bot.store.tables import Incident

    with Session(bot.ctx.engine) as session:
        return session.exec(select(Incident.announce_ts)).first()


def test_a_channel_of_the_same_name_from_an_older_database_is_not_adopted(start_bot, fake_slack):
    """A name taken by a channel our bot created with no incident here is adopted (our own create
    whose answer was lost); one that holds another database's marked posts is not ours."""
    from tests.test_flow_commands import slash

    fake = fake_slack.fake
    older = fake.create_channel("inc-20261123-checkout-down")  # created by the same bot user
    seed_older_database(fake, older.id, range(1, 3))
    bot = start_bot(clock=Clock(T0), rotations_dir=FIXTURES / "rotations")
    assert "declared" in slash(bot, "declare Checkout down sev2")
    card = wait_until(
        lambda: [
            (c.args["channel"], c.response["ts"])
            for c in fake.calls_to("chat.postMessage")
            if c.ok and "incident_actions" in json.dumps(c.args.get("blocks"))
        ],
        15,
        what="the incident card",
    )
    assert fake.channel(card[0][0]).name == "inc-20261123-checkout-down-2"
    assert all("older database" in m["text"] for m in fake.messages(older.id))
