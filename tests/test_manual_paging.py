"""Paging by hand is not noisy (issue 17, item 12).

Found by an on-call responder: `/incident page @sarah` and `/incident escalate` DMed people who had
been paged minutes before and had not answered yet, and the last escalation step posted two lines
in the channel ("<!channel> Paging VP Engineering ..." and ":pager: Paged @vp-eng ..."). Now a person
already paged for this incident (by any step, by key, mention or email; a page that failed does not
count) who has not acknowledged is not paged again: the answer says so, and escalating pages the
others of the step. A step that speaks in the channel says it in one line.
"""

from __future__ import annotations

import pytest
from sqlmodel import Session, col, select

from bot.store.tables import Outbox, Page
from tests.harness import Clock, post_alertmanager, processed, wait_until
from tests.test_display_names import T0, USERS, click, weaviate_down
from tests.test_flow_commands import FIXTURES, incident_channel, slash
from tests.test_flow_paging import dms_to

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
OLGA = "U01OLGA"  # the data-platform primary step 1 pages at T0


def pages_of(bot, slack_user: str) -> list[Page]:
    with Session(bot.ctx.engine) as session:
        return list(session.exec(select(Page).where(col(Page.slack_user) == slack_user)))


def drained(bot) -> None:
    def done() -> bool:
        with Session(bot.ctx.engine) as session:
            rows = session.exec(select(Outbox).where(col(Outbox.status) == "pending")).all()
            return not [r for r in rows if r.not_before <= bot.clock()]

    wait_until(done, 20, what="outbox drained")


@sqlite_only
def test_someone_paged_and_not_acknowledged_is_not_paged_again(start_bot, fake_slack):
    fake = fake_slack.fake
    fake.set_users({"sarah@example.com": "U02SARAH"})
    bot = start_bot(clock=Clock(T0), rotations_dir=FIXTURES / "rotations")
    incident = processed(bot, post_alertmanager(bot.url, weaviate_down()))["incident"]
    chan = incident_channel(fake)
    wait_until(lambda: dms_to(fake, "U01ALEX"), 10, what="alex paged by step 1")
    bot.clock.advance(minutes=3)

    answer = slash(bot, "page <@U01ALEX|alex>", channel=chan.id)
    assert answer == (
        "<@U01ALEX> was already paged 3m ago for this incident and has not acknowledged; not paging again."
    ), answer
    answer = slash(bot, "page platform", channel=chan.id)  # its first step is alex, by key
    assert "alex was already paged 3m ago" in answer and "not paging again" in answer, answer
    assert len(pages_of(bot, "U01ALEX")) == 1

    # sarah is in people.yaml by email only: paged by step 2, she is the same person as her mention.
    assert "Escalated" in slash(bot, "escalate", channel=chan.id)
    wait_until(lambda: dms_to(fake, "U02SARAH"), 10, what="sarah paged by step 2")
    answer = slash(bot, "page <@U02SARAH>", channel=chan.id)
    assert answer.startswith("<@U02SARAH> was already paged") and "not paging again" in answer, answer

    # Once acknowledged, paging someone again is a new call for help.
    click(bot, "incident_ack", str(incident), "U01ALEX", chan.id)
    assert slash(bot, "page <@U02SARAH>", channel=chan.id).startswith("Paging <@U02SARAH>")
    wait_until(lambda: len(dms_to(fake, "U02SARAH")) == 2, 10, what="sarah paged again after the ack")
    drained(bot)
    assert len(dms_to(fake, "U01ALEX")) == 1 and len(pages_of(bot, "U01ALEX")) == 1


@sqlite_only
def test_a_failed_page_does_not_count(start_bot, fake_slack):
    fake = fake_slack.fake
    fake.set_users({"sarah@example.com": "U02SARAH"})
    fake.deactivate_user("U03MIKE")
    bot = start_bot(clock=Clock(T0), rotations_dir=FIXTURES / "rotations")
    slash(bot, "declare Disk full sev3")
    chan = incident_channel(fake)
    assert slash(bot, "page <@U03MIKE>", channel=chan.id).startswith("Paging <@U03MIKE>")
    wait_until(lambda: [p for p in pages_of(bot, "U03MIKE") if p.failed_at], 10, what="the page failed")
    fake.update_user("U03MIKE", deleted=False)  # reactivated: paging him again is worth it
    assert slash(bot, "page <@U03MIKE>", channel=chan.id).startswith("Paging <@U03MIKE>")
    wait_until(lambda: dms_to(fake, "U03MIKE"), 10, what="mike paged")


@sqlite_only
def test_escalating_pages_the_others_and_the_last_step_says_one_line(start_bot, fake_slack):
    fake = fake_slack.fake
    fake.set_users(USERS)
    bot = start_bot(clock=Clock(T0))  # data-platform: olga, then david, then mike and david, then vp-eng
    post_alertmanager(bot.url, weaviate_down())
    chan = incident_channel(fake)
    wait_until(lambda: dms_to(fake, "U01OLGA"), 10, what="olga paged")
    # Olga, paged by step 1, escalates (alex, outside the data-platform rotation, may not).
    refused = slash(bot, "escalate", channel=chan.id, user="U01ALEX")
    assert refused.startswith("Only the lead, people paged for this incident") and "escalate it" in refused
    assert "step 2" in slash(bot, "escalate", channel=chan.id, user=OLGA)
    wait_until(lambda: dms_to(fake, "U01DAVID"), 10, what="david paged by step 2")
    bot.clock.advance(minutes=2)

    answer = slash(bot, "escalate", channel=chan.id, user=OLGA)
    assert "step 3" in answer and "David Kim was already paged 2m ago" in answer, answer
    assert "not paging again" in answer, answer
    wait_until(lambda: dms_to(fake, "U01MIKE"), 10, what="mike paged by step 3")
    timeline = slash(bot, "timeline", channel=chan.id)
    assert "Paging Mike Rodriguez (step 3: escalated by hand)" in timeline, timeline

    assert "step 4" in slash(bot, "escalate", channel=chan.id, user=OLGA)
    wait_until(lambda: dms_to(fake, "U01VPENG"), 10, what="vp-eng paged by the last step")
    drained(bot)
    said = [m["text"] for m in fake.messages(chan.id) if "step 4" in m.get("text", "")]
    assert len(said) == 1, said
    assert "<!channel>" in said[0] and "<@U01VPENG>" in said[0], said
    assert len(dms_to(fake, "U01DAVID")) == 1 and len(dms_to(fake, "U01OLGA")) == 1
